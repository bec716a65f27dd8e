using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Gpu;
using VastHostAgent.Host;
using VastHostAgent.Kernel;
using VastHostAgent.Vast;

namespace VastHostAgent.GpuCount;

/// <summary>
/// Scans the PCI bus every sample interval and combines it with the snapshot's latest NVML sample and the
/// expected count (the Vast machine's <c>num_gpus</c>, else <c>host.expectedGpus</c>). It remembers every NVIDIA
/// GPU it has seen on the bus while the process runs, so one that falls off the bus is counted missing.
/// </summary>
internal sealed class GpuCountSource(
    IPciGpuScanner scanner,
    SnapshotStore store,
    IOptions<HostSensorOptions> host,
    IOptions<AgentOptions> agent,
    TimeProvider time,
    ILogger<GpuCountSource> logger) : ISnapshotSource
{
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
    private HashSet<string> _missing = new(StringComparer.Ordinal);
    private HashSet<string> _passthrough = new(StringComparer.Ordinal);
    private bool _saidNoBus;

    public string Name => "pci";

    public bool Enabled => host.Value.PciScan;

    public TimeSpan Interval => agent.Value.SampleInterval;

    public ValueTask<SourceResult> CollectAsync(CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        var scan = scanner.Scan();
        var elapsed = time.GetElapsedTime(started);
        var snapshot = store.Current;
        var sample = GpuCountTruth.Compute(scan, snapshot.Gpu, Expected(snapshot.Vast, host.Value.ExpectedGpus), _seen) with { ScanDuration = elapsed };
        _seen.UnionWith(scan.Gpus.Select(g => g.Address));
        Report(scan, sample);
        return ValueTask.FromResult(SourceResult.Success(s => s.WithGpuCount(sample)));
    }

    public HostSnapshot Clear(HostSnapshot snapshot) => snapshot.WithGpuCount(null);

    /// <summary>The Vast machine's <c>num_gpus</c> when the agent has read it, else a configured count (0: unknown).</summary>
    internal static (int Count, string Source)? Expected(VastState? vast, int configured) =>
        vast?.Machine?.NumGpus is { } n and > 0 ? ((int)Math.Min(n, int.MaxValue), "Vast")
        : configured > 0 ? (configured, "config")
        : null;

    private void Report(PciScan scan, GpuCountSample sample)
    {
        if (!scan.BusPresent)
        {
            if (!_saidNoBus)
            {
                GpuCountLog.NoBus(logger, Path.Combine(host.Value.SysfsRoot, "bus", "pci", "devices"));
                _saidNoBus = true;
            }

            return;
        }

        _saidNoBus = false;
        var missing = sample.Missing.ToDictionary(m => m.Address, m => m.Reason, StringComparer.Ordinal);
        foreach (var (address, reason) in missing.Where(m => !_missing.Contains(m.Key)))
        {
            GpuCountLog.Missing(logger, address, reason);
        }

        foreach (var address in _missing.Where(a => !missing.ContainsKey(a)))
        {
            GpuCountLog.Found(logger, address);
        }

        var passthrough = sample.Passthrough.ToHashSet(StringComparer.Ordinal);
        foreach (var address in passthrough.Where(a => !_passthrough.Contains(a)))
        {
            GpuCountLog.PassedThrough(logger, address);
        }

        foreach (var address in _passthrough.Where(a => !passthrough.Contains(a)))
        {
            GpuCountLog.Returned(logger, address);
        }

        _missing = [.. missing.Keys];
        _passthrough = passthrough;
    }
}
