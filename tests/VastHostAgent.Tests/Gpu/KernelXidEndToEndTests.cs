using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Gpu;

/// <summary>
/// The published agent reading XIDs from a kernel log file (the tests' stand-in for /dev/kmsg) while the fake NVML
/// library fails: the XIDs are still exported, and an unreadable kernel log leaves the rest of the agent working.
/// </summary>
public sealed class KernelXidEndToEndTests
{
    [Fact]
    public async Task With_NVML_failing_an_XID_79_appended_to_the_kernel_log_is_exported_by_PCI_address()
    {
        var dir = TestEnvironment.NewTempDirectory("kmsg-e2e");
        var kmsg = Path.Combine(dir, "kmsg");
        File.WriteAllText(kmsg, "4,1,1,-;NVRM: Xid (PCI:0000:01:00): 13, pid=1, name=old, before the agent started\n");
        var state = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "2", ["init"] = "9" });
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, KmsgPath = kmsg });
        await agent.ScrapeUntilAsync(e => e.Value("vasthost_nvml_up") == 0 && e.Value("vasthost_kernel_log_up") == 1, "NVML down, the kernel log read");

        File.AppendAllText(kmsg, "4,2,2,-;NVRM: Xid (PCI:0000:01:00): 79, pid=1234, name=python, GPU has fallen off the bus.\n");
        var m = await agent.ScrapeUntilAsync(e => e.Named("vasthost_gpu_kernel_xid_errors_total").Any(), "the kernel XID exported");
        var xid = Assert.Single(m.Named("vasthost_gpu_kernel_xid_errors_total"));
        Assert.Equal(("0000:01:00", "", "", "79", 1.0), (xid.Label("pci_address"), xid.Label("gpu"), xid.Label("uuid"), xid.Label("xid"), xid.Value));
        Assert.NotNull(m.Value("vasthost_gpu_kernel_xid_last_timestamp_seconds", ("pci_address", "0000:01:00"), ("xid", "79")));
        Assert.Contains("XID 79 on GPU unknown to NVML (PCI 0000:01:00) from the kernel log", agent.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreadable_kernel_log_is_reported_down_once_and_GPU_metrics_go_on()
    {
        var dir = TestEnvironment.NewTempDirectory("kmsg-missing-e2e");
        var state = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "2" });
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, KmsgPath = Path.Combine(dir, "no-such-kmsg") });
        var m = await agent.ScrapeUntilAsync(e => e.Value("vasthost_kernel_log_up") == 0 && e.Value("vasthost_gpus") == 2, "the kernel log down, GPUs read");
        Assert.Equal(1, m.Value("vasthost_nvml_up"));
        Assert.Equal(1, agent.StandardOutput.Split('\n').Count(l => l.Contains("cannot be read (not found)", StringComparison.Ordinal)));
        Assert.Equal(200, (int)(await agent.GetAsync("healthz")).StatusCode);
    }
}
