using System.Text.Json;
using VastEmulator;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Maintenance;

/// <summary>The fault guard in the real agent, fed by the kernel log while the fake NVML library hangs.</summary>
public sealed class FaultGuardKernelXidTests : MaintenanceProcessTestBase
{
    [Fact]
    public async Task While_NVML_hangs_a_kernel_log_XID_79_is_counted_for_its_GPU_and_trips_the_guard()
    {
        var dir = TestEnvironment.NewTempDirectory("guard-kmsg");
        var nvml = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "2" });
        var config = Config(dir, nvml, extra:
        [
            ("VASTHOST_FAULTGUARD__ENABLED", "true"), ("VASTHOST_FAULTGUARD__HOLDFOR", "00:00:02"),
            // Only the XID may trip it: a hanging NVML also marks the GPUs down ("stale").
            ("VASTHOST_FAULTGUARD__GPULOST", "false"), ("VASTHOST_FAULTGUARD__NVMLUNAVAILABLE", "false"),
        ]);
        await using var agent = AgentProcess.Start(config);
        await agent.ScrapeUntilAsync(e => e.Value("vasthost_kernel_log_up") == 1 && e.Value("vasthost_gpus") == 2, "GPUs read, the kernel log open");
        await Poll.UntilAsync(() => Applied(Endpoints.CreateBids) == 1, TimeSpan.FromSeconds(30), "in sync");

        // NVML hangs (every device call takes a minute); the gpu collector is marked stale.
        nvml.Set("call_delay_ms", "60000");
        await agent.ScrapeUntilAsync(e => e.Value("vasthost_collector_stale", ("collector", "gpu")) == 1, "the gpu collector stale");

        // GPU 1 is at 00000000:02:00.0 in the fake library.
        File.AppendAllText(Path.Combine(dir, "kmsg"), "4,77,123456789,-;NVRM: Xid (PCI:0000:02:00): 79, pid=4242, name=python3, GPU has fallen off the bus.\n");
        var m = await agent.ScrapeUntilAsync(e => e.Value("vasthost_guard_degraded") == 1, "the guard to trip", TimeSpan.FromSeconds(30));
        Assert.Equal(1, m.Value("vasthost_guard_condition_active", ("condition", "critical_xid")));
        Assert.Equal(1, m.Value("vasthost_gpu_xid_errors_total", ("gpu", "1"), ("xid", "79")));
        Assert.Equal(1, m.Value("vasthost_gpu_kernel_xid_errors_total", ("pci_address", "0000:02:00"), ("gpu", "1"), ("xid", "79")));
        using var status = JsonDocument.Parse(await agent.GetStringAsync("api/status"));
        Assert.Contains("critical_xid: XID 79 on GPU 1", status.RootElement.GetProperty("maintenance").GetProperty("guard").GetProperty("reason").GetString(), StringComparison.Ordinal);
        await Poll.UntilAsync(() => !Listed, TimeSpan.FromSeconds(15), "the machine to be unlisted");
    }
}
