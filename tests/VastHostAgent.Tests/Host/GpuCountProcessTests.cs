using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Host;

/// <summary>The published agent with fake NVML and a sysfs PCI fixture: the GPU-count series and the status line.</summary>
public sealed class GpuCountProcessTests
{
    [Fact]
    public async Task Passthrough_missing_and_aer_reach_metrics_and_status_and_a_gpu_falling_off_the_bus_is_counted()
    {
        var dir = TestEnvironment.NewTempDirectory("gpucount-e2e");

        var nvml = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "4" });
        var pci = new PciFixture(dir)
            .Gpu("0000:01:00.0", "nvidia").Gpu("0000:02:00.0", "nvidia").Gpu("0000:03:00.0", "nvidia").Gpu("0000:04:00.0", "nvidia")
            .Gpu("0000:05:00.0", null)
            .Aer("0000:01:00.0", correctable: 12, nonfatal: 2, fatal: 0);
        await using var agent = AgentProcess.Start(new AgentConfig
        {
            FakeNvmlState = nvml.Path,
            SysfsRoot = pci.Root,
            Environment = new() { ["VASTHOST_HOST__EXPECTEDGPUS"] = "5" },
        });
        await agent.ScrapeUntilAsync(x => x.Value("vasthost_gpus", ("state", "nvml")) == 4 && x.Value("vasthost_gpus", ("state", "missing")) == 1, "four GPUs in NVML");

        // Vast hands GPUs 2 and 3 to a VM: unbound from nvidia, bound to vfio-pci; NVML, initialised before, holds them lost.
        pci.Bind("0000:03:00.0", "vfio-pci").Bind("0000:04:00.0", "vfio-pci");
        nvml.Set("gpu.2.lost", "1").Set("gpu.3.lost", "1");
        var m = await agent.ScrapeUntilAsync(x => x.Value("vasthost_gpus", ("state", "nvml")) == 2 && x.Value("vasthost_gpus", ("state", "passthrough")) == 2, "two GPUs passed through");
        Assert.Equal(2, m.Value("vasthost_gpus", ("state", "nvml")));
        Assert.Equal(2, m.Value("vasthost_gpus", ("state", "passthrough")));
        Assert.Equal(1, m.Value("vasthost_gpus", ("state", "missing")));
        Assert.Equal(5, m.Value("vasthost_gpus_expected"));
        Assert.Equal(
            ["0000:03:00.0 passthrough vfio-pci", "0000:04:00.0 passthrough vfio-pci", "0000:05:00.0 missing no_driver"],
            m.Named("vasthost_gpu_pci_state_info").Select(s => $"{s.Label("pci_address")} {s.Label("state")} {s.Label("reason")}").Order(StringComparer.Ordinal));
        Assert.Equal(["0", "1"], m.Named("vasthost_gpu_up").Select(s => s.Label("gpu")).Order(StringComparer.Ordinal)); // 2 and 3 are not "lost"
        Assert.Equal(12, m.Value("vasthost_gpu_pcie_aer_errors_total", ("pci_address", "0000:01:00.0"), ("kind", "correctable")));
        Assert.Equal(2, m.Value("vasthost_gpu_pcie_aer_errors_total", ("pci_address", "0000:01:00.0"), ("kind", "nonfatal")));
        Assert.Equal(0, m.Value("vasthost_gpu_pcie_aer_errors_total", ("pci_address", "0000:01:00.0"), ("kind", "fatal")));
        Assert.Empty(m.Where("vasthost_gpu_pcie_aer_errors_total", ("pci_address", "0000:02:00.0")));

        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(["status", "--config", agent.ConfigPath], new Dictionary<string, string?> { ["FAKE_NVML_STATE"] = nvml.Path });
        Assert.True(exit == 0, stderr);
        Assert.Contains("GPUs: 5 expected (config), 2 NVML, 2 passthrough (VM rental: 0000:03:00.0, 0000:04:00.0), 1 missing (0000:05:00.0 no_driver): 1 fewer than expected\n", stdout, StringComparison.Ordinal);

        // GPU 1 falls off the bus: NVML loses it and sysfs no longer lists it.
        pci.Remove("0000:02:00.0");
        nvml.Set("gpu.1.lost", "1");
        m = await agent.ScrapeUntilAsync(x => x.Value("vasthost_gpus", ("state", "missing")) == 2, "GPU 1 missing");
        Assert.Equal(1, m.Value("vasthost_gpu_pci_state_info", ("pci_address", "0000:02:00.0"), ("state", "missing"), ("reason", "gone")));
        Assert.Equal(1, m.Value("vasthost_gpus", ("state", "nvml")));
    }
}
