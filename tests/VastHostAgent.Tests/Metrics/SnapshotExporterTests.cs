using System.Text;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using VastHostAgent.Gpu;
using VastHostAgent.Host;
using VastHostAgent.Kernel;
using VastHostAgent.Metrics;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Metrics;

/// <summary>Snapshots become series; what vanishes from the snapshot vanishes from /metrics.</summary>
public sealed class SnapshotExporterTests
{
    private static GpuReading Gpu(int index, double util, double energy = 100) => new()
    {
        Identity = new GpuIdentity(index, $"GPU-{index}", "NVIDIA RTX A6000", $"00000000:0{index}:00.0", index, null, "8.6"),
        UtilizationRatio = util,
        EnergyConsumedJoules = energy,
        TemperatureCelsius = 50 + index,
    };

    private static async Task<Exposition> Render(SnapshotExporter exporter) =>
        Exposition.Parse(Encoding.UTF8.GetString((await exporter.RenderAsync(default)).Span));

    [Fact]
    public async Task A_GPU_that_leaves_the_snapshot_loses_its_series()
    {
        using var exporter = new SnapshotExporter(Options.Create(new MetricsOptions()), new FakeTimeProvider());
        var store = new SnapshotStore();
        store.Published += exporter.Apply;

        store.Update(s => s.WithGpu(new GpuSample { NvmlUp = true, Gpus = [Gpu(0, 0.5), Gpu(1, 0.7)] }));
        var both = await Render(exporter);
        Assert.Equal(2, both.Named("vasthost_gpu_utilization_ratio").Count());
        Assert.Equal(2, both.Value("vasthost_gpus", ("state", "nvml")));

        store.Update(s => s.WithGpu(new GpuSample { NvmlUp = true, Gpus = [Gpu(0, 0.25)] }));
        var one = await Render(exporter);
        Assert.Equal(0.25, Assert.Single(one.Named("vasthost_gpu_utilization_ratio")).Value);
        Assert.Empty(one.Where("vasthost_gpu_info", ("uuid", "GPU-1")));
        Assert.Empty(one.Where("vasthost_gpu_temperature_celsius", ("uuid", "GPU-1")));

        store.Update(s => s.WithGpu(GpuSample.Unavailable("driver gone")));
        var none = await Render(exporter);
        Assert.Equal(0, none.Value("vasthost_nvml_up"));
        Assert.Empty(none.Named("vasthost_gpu_utilization_ratio"));

        // gpu.enabled = false: no GPU sample at all, which is not "NVML down" (no alert on a machine without GPUs).
        store.Update(s => s.WithGpu(null));
        var disabled = await Render(exporter);
        Assert.Empty(disabled.Named("vasthost_nvml_up"));
        Assert.Empty(disabled.Named("vasthost_gpus"));
    }

    [Fact]
    public async Task An_energy_counter_that_resets_with_the_driver_restarts_from_the_new_value()
    {
        using var exporter = new SnapshotExporter(Options.Create(new MetricsOptions()), new FakeTimeProvider());
        var store = new SnapshotStore();
        store.Published += exporter.Apply;

        store.Update(s => s.WithGpu(new GpuSample { NvmlUp = true, Gpus = [Gpu(0, 0.5, energy: 5000)] }));
        Assert.Equal(5000, (await Render(exporter)).Value("vasthost_gpu_energy_consumed_joules_total"));
        store.Update(s => s.WithGpu(new GpuSample { NvmlUp = true, Gpus = [Gpu(0, 0.5, energy: 12)] }));
        Assert.Equal(12, (await Render(exporter)).Value("vasthost_gpu_energy_consumed_joules_total"));
    }

    [Fact]
    public async Task A_lost_GPU_keeps_info_and_up_0_but_no_readings()
    {
        using var exporter = new SnapshotExporter(Options.Create(new MetricsOptions()), new FakeTimeProvider());
        var lost = Gpu(1, 0.9) with { Up = false, DownReason = "GPU_IS_LOST" };
        exporter.Apply(new HostSnapshot { Generation = 1 }.WithGpu(new GpuSample { NvmlUp = true, Gpus = [Gpu(0, 0.5), lost] }));
        var m = await Render(exporter);
        Assert.Equal(0, m.Value("vasthost_gpu_up", ("uuid", "GPU-1")));
        Assert.Single(m.Where("vasthost_gpu_info", ("uuid", "GPU-1")));
        Assert.Empty(m.Where("vasthost_gpu_utilization_ratio", ("uuid", "GPU-1")));
        Assert.Equal(1, m.Value("vasthost_gpus", ("state", "nvml")));
    }

    [Fact]
    public async Task Rendering_is_reused_until_a_new_snapshot_or_one_second_passes()
    {
        var time = new FakeTimeProvider();
        using var exporter = new SnapshotExporter(Options.Create(new MetricsOptions()), time);
        exporter.Apply(new HostSnapshot { Generation = 1 }.WithDisk(new DiskSpace("/var/lib/docker", "/var/lib/docker", 100, 50, 40)));
        var first = await exporter.RenderAsync(default);
        var again = await exporter.RenderAsync(default);
        Assert.True(first.Span == again.Span, "same generation should reuse the rendering");

        exporter.Apply(new HostSnapshot { Generation = 2 }.WithDisk(new DiskSpace("/var/lib/docker", "/var/lib/docker", 100, 30, 20)));
        var next = Exposition.Parse(Encoding.UTF8.GetString((await exporter.RenderAsync(default)).Span));
        Assert.Equal(30, next.Value("vasthost_disk_free_bytes", ("path", "/var/lib/docker")));

        // An older generation arriving late never overwrites a newer one.
        exporter.Apply(new HostSnapshot { Generation = 1 }.WithDisk(new DiskSpace("/var/lib/docker", "/var/lib/docker", 100, 99, 99)));
        time.Advance(TimeSpan.FromSeconds(2));
        var still = Exposition.Parse(Encoding.UTF8.GetString((await exporter.RenderAsync(default)).Span));
        Assert.Equal(30, still.Value("vasthost_disk_free_bytes", ("path", "/var/lib/docker")));
    }

    [Fact]
    public async Task Collector_status_becomes_up_duration_and_last_success_series()
    {
        var at = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        using var exporter = new SnapshotExporter(Options.Create(new MetricsOptions()), new FakeTimeProvider());
        var collectors = System.Collections.Immutable.ImmutableDictionary<string, CollectorStatus>.Empty
            .Add("gpu", new CollectorStatus("gpu", at, at, TimeSpan.FromMilliseconds(3), true, null, TimeSpan.FromSeconds(15)))
            .Add("hwmon", new CollectorStatus("hwmon", at, null, TimeSpan.FromMilliseconds(1), false, "boom", TimeSpan.FromSeconds(15)));
        exporter.Apply(new HostSnapshot { Generation = 1, Collectors = collectors });
        var m = await Render(exporter);
        Assert.Equal(1, m.Value("vasthost_collector_up", ("collector", "gpu")));
        Assert.Equal(0, m.Value("vasthost_collector_up", ("collector", "hwmon")));
        Assert.Equal(0.003, m.Value("vasthost_collector_duration_seconds", ("collector", "gpu")));
        Assert.Equal(1_800_000_000, m.Value("vasthost_collector_last_success_timestamp_seconds", ("collector", "gpu")));
        Assert.Empty(m.Where("vasthost_collector_last_success_timestamp_seconds", ("collector", "hwmon")));
    }
}
