using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;
using VastHostAgent.Management;
using VastHostAgent.Vast;

namespace VastHostAgent.Economics;

/// <summary>
/// Works out power cost, revenue and margin from the snapshot's latest GPU sample and Vast reads, every sample
/// interval. It reads only the snapshot (no NVML or Vast call of its own), so it costs microseconds.
/// </summary>
internal sealed class EconomicsSource(
    SnapshotStore store,
    IOptions<EconomicsOptions> economics,
    IOptions<ManagementOptions> management,
    IOptions<AgentOptions> agent,
    TimeProvider time,
    ILogger<EconomicsSource> logger) : ISnapshotSource
{
    private EconomicsMeter? _meter;
    private bool _saidNoPower;
    private int _stepsWithoutPower;

    public string Name => "economics";

    public bool Enabled => economics.Value.Enabled;

    public TimeSpan Interval => agent.Value.SampleInterval;

    public ValueTask<SourceResult> CollectAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_meter is null)
        {
            var o = economics.Value;
            _meter = new EconomicsMeter(o, management.Value.Pricing.Market.HostShare);
            var tariff = _meter.Tariff;
            EconomicsLog.Started(logger, tariff.DollarsPerKwhAt(now) / o.DollarsPerUnit, o.Currency, tariff.DollarsPerKwhAt(now), tariff.PeakDollarsPerKwh,
                tariff.TimeOfUse ? $", {o.Schedule.Count} time-of-use period(s)" : ", flat", tariff.Zone.Id, o.OverheadWatts, o.PowerUsageEffectiveness);
        }

        var snapshot = store.Current;
        var sample = _meter.Step(snapshot.Gpu, snapshot.Vast, now);
        // Said once the GPU sampler has reported without power (NVML down, no power reading), or after a few
        // steps with no GPU sample at all; not at every start, when this source can run before the first sample.
        _stepsWithoutPower = sample.CostPerHour is null ? _stepsWithoutPower + 1 : 0;
        if (sample.CostPerHour is null && !_saidNoPower && (snapshot.Gpu is not null || _stepsWithoutPower >= 3))
        {
            EconomicsLog.NoPower(logger);
            _saidNoPower = true;
        }
        else if (sample.CostPerHour is not null)
        {
            _saidNoPower = false;
        }

        return ValueTask.FromResult(SourceResult.Success(s => s.WithEconomics(sample)));
    }

    public HostSnapshot Clear(HostSnapshot snapshot) => snapshot.WithEconomics(null);
}
