using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using VastHostAgent.Economics;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;
using VastHostAgent.Management;

namespace VastHostAgent.Tests.Economics;

/// <summary>What the economics source says in the log: nothing at an ordinary start, one warning when power is missing.</summary>
public sealed class EconomicsSourceTests
{
    private static (EconomicsSource Source, SnapshotStore Store, FakeLogger<EconomicsSource> Logger) Create()
    {
        var store = new SnapshotStore();
        var logger = new FakeLogger<EconomicsSource>();
        var source = new EconomicsSource(store,
            Options.Create(new EconomicsOptions { Enabled = true, TimeZone = "UTC", PricePerKwh = 0.2 }),
            Options.Create(new ManagementOptions()), Options.Create(new AgentOptions()),
            new FakeTimeProvider(DateTimeOffset.Parse("2026-12-01T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture)), logger);
        return (source, store, logger);
    }

    private static int Warnings(FakeLogger<EconomicsSource> logger) =>
        logger.Collector.GetSnapshot().Count(r => r.Level == LogLevel.Warning && r.Message.Contains("no GPU power reading", StringComparison.Ordinal));

    [Fact]
    public async Task Running_before_the_first_GPU_sample_is_not_a_warning_and_power_then_costs()
    {
        var (source, store, logger) = Create();
        (await source.CollectAsync(CancellationToken.None)).Apply(store.Current);
        Assert.Equal(0, Warnings(logger));

        store.Update(s => s.WithGpu(new GpuSample { NvmlUp = true, Gpus = [EconomicsMeterTests.Reading(0, 300)] }));
        var result = await source.CollectAsync(CancellationToken.None);
        Assert.NotNull(result.Apply(store.Current).Economics!.CostPerHour);
        Assert.Equal(0, Warnings(logger));
    }

    [Fact]
    public async Task NVML_down_is_one_warning_and_so_is_no_GPU_sample_for_three_steps()
    {
        var (source, store, logger) = Create();
        store.Update(s => s.WithGpu(GpuSample.Unavailable("NVML down")));
        for (var i = 0; i < 4; i++)
        {
            await source.CollectAsync(CancellationToken.None);
        }

        Assert.Equal(1, Warnings(logger));

        var (never, _, quiet) = Create();
        await never.CollectAsync(CancellationToken.None);
        await never.CollectAsync(CancellationToken.None);
        Assert.Equal(0, Warnings(quiet));
        await never.CollectAsync(CancellationToken.None);
        Assert.Equal(1, Warnings(quiet));
    }
}
