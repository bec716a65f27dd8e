using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using VastHostAgent.Gpu;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Gpu;

/// <summary>
/// NVML GPM through the sampler against the fake library in-process: figures from two samples one cycle apart, only on
/// GPUs that support GPM, in DCGM's units; samples kept per GPU and freed when a GPU is lost and at shutdown (the fake
/// counts live samples in its stats file).
/// </summary>
[Collection(InProcessNvmlGroup.Name)]
public sealed partial class NvmlGpmInProcessTests(ITestOutputHelper output)
{
    private const double MiB = 1024 * 1024;

    private static readonly Dictionary<string, string> HopperAndAda = new()
    {
        ["gpus"] = "2",
        ["gpu.0.name"] = "NVIDIA H100 80GB HBM3",
        ["gpu.0.gpm"] = "1",
        ["gpu.0.gpm_graphics_util"] = "80",
        ["gpu.0.gpm_tensor_util"] = "37.5",
        ["gpu.0.gpm_dram_util"] = "41",
        ["gpu.0.gpm_pcie_tx"] = "1500",
        ["gpu.0.gpm_pcie_rx"] = "250.5",
        ["gpu.0.gpm_nvlink_tx"] = "100",
        ["gpu.0.gpm_nvlink_rx"] = "200",
    };

    [Fact]
    public void Gpm_figures_come_from_two_samples_a_cycle_apart_in_DCGM_units_and_only_on_GPUs_with_GPM()
    {
        var (state, stats) = Setup("gpm", HopperAndAda);
        var live = LiveSamples(stats);
        using var telemetry = Telemetry();

        var first = telemetry.Sample();
        Assert.All(first.Gpus, g => Assert.Null(g.GraphicsEngineActiveRatio)); // one sample: nothing to compute yet
        Assert.Equal(live + 2, LiveSamples(stats));                            // two per GPU with GPM, none for the other

        var second = telemetry.Sample();
        var h100 = second.Gpus.Single(g => g.Identity.Index == 0);
        Assert.Equal(0.8, h100.GraphicsEngineActiveRatio);
        Assert.Equal(0.375, h100.TensorActiveRatio);
        Assert.Equal(0.41, h100.DramActiveRatio);
        Assert.Equal(1500 * MiB, h100.PcieTransmitBytesPerSecond);
        Assert.Equal(250.5 * MiB, h100.PcieReceiveBytesPerSecond);
        Assert.Equal(100 * MiB, h100.NvlinkTransmitBytesPerSecond);
        Assert.Equal(200 * MiB, h100.NvlinkReceiveBytesPerSecond);

        var ada = second.Gpus.Single(g => g.Identity.Index == 1);
        Assert.Null(ada.GraphicsEngineActiveRatio);
        Assert.Null(ada.TensorActiveRatio);
        Assert.Null(ada.PcieTransmitBytesPerSecond);
        Assert.Null(ada.NvlinkReceiveBytesPerSecond);
        Assert.Empty(second.Errors);
        Assert.Equal(live + 2, LiveSamples(stats)); // reused, not allocated per cycle

        // Figures follow the GPU (the fake averages the two samples), and NVLink is absent where NVML has none.
        state.Set("gpu.0.gpm_tensor_util", "12").Remove("gpu.0.gpm_nvlink_tx").Remove("gpu.0.gpm_nvlink_rx");
        telemetry.Sample();
        var third = telemetry.Sample().Gpus.Single(g => g.Identity.Index == 0);
        Assert.Equal(0.12, third.TensorActiveRatio);
        Assert.Null(third.NvlinkTransmitBytesPerSecond);
        Assert.Null(third.NvlinkReceiveBytesPerSecond);
        Assert.Equal(1500 * MiB, third.PcieTransmitBytesPerSecond);
    }

    [Fact]
    public void Gpm_samples_are_freed_when_a_GPU_is_lost_and_at_shutdown()
    {
        var (state, stats) = Setup("gpm-free", new Dictionary<string, string> { ["gpus"] = "2", ["gpu.0.gpm"] = "1", ["gpu.1.gpm"] = "1" });
        var live = LiveSamples(stats);
        var telemetry = Telemetry();
        try
        {
            telemetry.Sample();
            Assert.NotNull(telemetry.Sample().Gpus[1].TensorActiveRatio);
            Assert.Equal(live + 4, LiveSamples(stats));

            state.Set("gpu.1.lost", "1");
            var lost = telemetry.Sample();
            Assert.False(lost.Gpus.Single(g => g.Identity.Index == 1).Up);
            Assert.NotNull(lost.Gpus.Single(g => g.Identity.Index == 0).TensorActiveRatio);
            Assert.Equal(live + 2, LiveSamples(stats));

            // Back: it samples afresh (a first cycle without figures, then figures again).
            state.Set("gpu.1.lost", "0");
            Assert.Null(telemetry.Sample().Gpus.Single(g => g.Identity.Index == 1).TensorActiveRatio);
            Assert.NotNull(telemetry.Sample().Gpus.Single(g => g.Identity.Index == 1).TensorActiveRatio);
            Assert.Equal(live + 4, LiveSamples(stats));
        }
        finally
        {
            telemetry.Dispose();
        }

        Assert.Equal(live, LiveSamples(stats));
    }

    [Fact]
    public void A_failing_metrics_call_leaves_the_figures_absent_and_is_counted_under_its_own_name()
    {
        var (state, _) = Setup("gpm-error", new Dictionary<string, string>(HopperAndAda) { ["error.nvmlGpmMetricsGet"] = "999" });
        using var telemetry = Telemetry();
        telemetry.Sample();
        var sample = telemetry.Sample();
        Assert.All(sample.Gpus, g => Assert.Null(g.GraphicsEngineActiveRatio));
        Assert.Contains(sample.Errors, e => e is { Function: "nvmlGpmMetricsGet", Code: "UNKNOWN" });
        Assert.True(sample.Gpus.All(g => g.Up));

        state.Remove("error.nvmlGpmMetricsGet");
        Assert.Equal(0.8, telemetry.Sample().Gpus[0].GraphicsEngineActiveRatio);
    }

    [Fact]
    public void Gpm_sampling_allocates_nothing_per_cycle()
    {
        // The same two GPUs with and without GPM: a cycle costs the same managed allocations (the 13 KB metrics
        // buffer is allocated once per sampler, the samples are NVML's and reused).
        long PerCycle(string gpm)
        {
            Setup("gpm-alloc-" + gpm, new Dictionary<string, string>(HopperAndAda) { ["gpu.0.gpm"] = gpm, ["gpu.1.gpm"] = gpm });
            SetNativeEnvironment("FAKE_NVML_STATS", ""); // no stats file rewritten at every call: the timing is the sampler's and the fake's
            using var telemetry = Telemetry();
            for (var i = 0; i < 5; i++)
            {
                telemetry.Sample();
            }

            var least = long.MaxValue;
            for (var i = 0; i < 51; i++)
            {
                var before = GC.GetAllocatedBytesForCurrentThread();
                var sample = telemetry.Sample();
                least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
                Assert.Equal(gpm == "1", sample.Gpus[1].TensorActiveRatio is not null);
            }

            return least;
        }

        // Bytes, not time: the cycle's speed is a benchmark figure (scripts/bench.sh), never a unit test's.
        var without = PerCycle("0");
        var with = PerCycle("1");
        output.WriteLine($"2-GPU cycle against the fake: {without} B without GPM, {with} B with GPM (least of 51 cycles)");
        Assert.True(with <= without + 64, $"a cycle allocates {with} bytes with GPM, {without} without");
    }

    private static NvmlGpuTelemetry Telemetry() =>
        new(Options.Create(new GpuOptions { NvmlLibrary = TestEnvironment.FakeNvml, XidEvents = false, Processes = false }), new FakeTimeProvider(), new FakeLogger<NvmlGpuTelemetry>());

    private static (FakeNvmlState State, string Stats) Setup(string name, Dictionary<string, string> values)
    {
        var dir = TestEnvironment.NewTempDirectory(name);
        var state = new FakeNvmlState(dir, values);
        var stats = Path.Combine(dir, "stats");
        SetNativeEnvironment("FAKE_NVML_STATE", state.Path);
        SetNativeEnvironment("FAKE_NVML_STATS", stats);
        return (state, stats);
    }

    /// <summary>GPM samples the fake has allocated and not freed (in this process); 0 before the library's first call.</summary>
    private static long LiveSamples(string stats) => !File.Exists(stats) ? 0
        : File.ReadAllLines(stats).Where(l => l.StartsWith("gpm_samples=", StringComparison.Ordinal))
            .Select(l => long.Parse(l["gpm_samples=".Length..], CultureInfo.InvariantCulture)).Single();

    // .NET keeps its own copy of the environment on Unix; the C library reads the native one.
    private static void SetNativeEnvironment(string name, string value) => Assert.Equal(0, setenv(name, value, 1));

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
