using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using VastHostAgent.Gpu;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Gpu;

/// <summary>Tests that load the fake NVML into this process share one library and one environment.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class InProcessNvmlGroup
{
    public const string Name = "in-process NVML";
}

/// <summary>
/// The telemetry class against the fake library in-process, with a fake clock: NVML init retries back off
/// on the clock, and variable-length process lists grow as NVML asks.
/// </summary>
[Collection(InProcessNvmlGroup.Name)]
public sealed partial class NvmlTelemetryInProcessTests
{
    [Fact]
    public void A_GPU_lost_during_its_identity_reads_is_logged_and_counted_instead_of_failing_the_sample()
    {
        // Found by the telemetry split: a GPU that answers GPU_IS_LOST to its name read logged with an identity not
        // yet read (NullReferenceException out of Sample(), every cycle).
        var dir = TestEnvironment.NewTempDirectory("inproc-lost");
        var state = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "2", ["gpu.1.error.nvmlDeviceGetName"] = "15" });
        SetNativeEnvironment("FAKE_NVML_STATE", state.Path);
        SetNativeEnvironment("FAKE_NVML_STATS", Path.Combine(dir, "stats"));
        var logger = new FakeLogger<NvmlGpuTelemetry>();
        using var telemetry = new NvmlGpuTelemetry(Options.Create(new GpuOptions { NvmlLibrary = TestEnvironment.FakeNvml, XidEvents = false }), new FakeTimeProvider(), logger);

        var sample = telemetry.Sample();
        Assert.True(sample.NvmlUp);
        Assert.Equal([0, 1], sample.Gpus.Select(g => g.Identity.Index).Order());
        Assert.Contains(logger.Collector.GetSnapshot(), r => r.Message.Contains("GPU 1", StringComparison.Ordinal) && r.Message.Contains("GPU_IS_LOST", StringComparison.Ordinal));
        Assert.Contains(sample.Errors, e => e is { Function: "nvmlDeviceGetName", Code: "GPU_IS_LOST" });
        Assert.True(telemetry.Sample().NvmlUp);   // and the next sample too (no re-initialisation loop)
    }

    [Fact]
    public void A_failed_init_is_retried_only_after_the_backoff_has_elapsed_on_the_clock()
    {
        var dir = TestEnvironment.NewTempDirectory("inproc");
        var state = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "2", ["init"] = "9" });
        var stats = Path.Combine(dir, "stats");
        SetNativeEnvironment("FAKE_NVML_STATE", state.Path);
        SetNativeEnvironment("FAKE_NVML_STATS", stats);
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", CultureInfo.InvariantCulture));
        var logger = new FakeLogger<NvmlGpuTelemetry>();
        using var telemetry = new NvmlGpuTelemetry(Options.Create(new GpuOptions { NvmlLibrary = TestEnvironment.FakeNvml, XidEvents = false }), time, logger);

        var first = telemetry.Sample();
        Assert.False(first.NvmlUp);
        Assert.Contains("DRIVER_NOT_LOADED", first.Problem, StringComparison.Ordinal);
        var initCalls = InitCalls(stats);

        // Sampling again at once (the sampler's 5 s tick) does not hammer a broken driver.
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.False(telemetry.Sample().NvmlUp);
        Assert.Equal(initCalls, InitCalls(stats));

        // After the 10 s backoff it tries again; the driver is back.
        state.Set("init", "0");
        time.Advance(TimeSpan.FromSeconds(6));
        var recovered = telemetry.Sample();
        Assert.True(recovered.NvmlUp);
        Assert.Equal(2, recovered.Gpus.Count);
        Assert.Equal(initCalls + 1, InitCalls(stats));
        Assert.Single(logger.Collector.GetSnapshot(), r => r.Message.Contains("nvmlInit failed with DRIVER_NOT_LOADED", StringComparison.Ordinal));
    }

    [Fact]
    public void Process_lists_larger_than_the_first_buffer_are_read_whole()
    {
        var dir = TestEnvironment.NewTempDirectory("procs");
        var processes = string.Join(',', Enumerable.Range(1000, 40).Select(pid => $"{pid}:{pid * 1024}"));
        var state = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "1", ["gpu.0.processes"] = processes });
        SetNativeEnvironment("FAKE_NVML_STATE", state.Path);
        var time = new FakeTimeProvider();
        using var telemetry = new NvmlGpuTelemetry(Options.Create(new GpuOptions { NvmlLibrary = TestEnvironment.FakeNvml, XidEvents = false }), time, new FakeLogger<NvmlGpuTelemetry>());

        var sample = telemetry.Sample();
        var gpu = Assert.Single(sample.Gpus);
        Assert.Equal(40, gpu.Processes.Count);
        Assert.Equal(new GpuProcess(1039, 1039UL * 1024), gpu.Processes[^1]);
        Assert.Empty(sample.Errors);
    }

    private static long InitCalls(string stats) =>
        File.ReadAllLines(stats).Where(l => l.StartsWith("init_calls=", StringComparison.Ordinal))
            .Select(l => long.Parse(l["init_calls=".Length..], CultureInfo.InvariantCulture)).Single();

    // .NET keeps its own copy of the environment on Unix; the C library reads the native one.
    private static void SetNativeEnvironment(string name, string value) => Assert.Equal(0, setenv(name, value, 1));

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
