using System.Diagnostics;
using System.Text.Json;
using VastEmulator;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Maintenance;

/// <summary>
/// The fault guard in the real agent, driven by the fake NVML library: a lost GPU unlists the rig, its return relists it.
/// </summary>
public sealed class FaultGuardGpuLostTests : MaintenanceProcessTestBase
{
    [Fact]
    public async Task A_GPU_lost_in_the_fake_driver_unlists_after_the_hold_and_relists_after_the_clear()
    {
        var dir = TestEnvironment.NewTempDirectory("guard-gpu");
        var nvml = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "2" });
        var config = Config(dir, nvml, extra: [("VASTHOST_FAULTGUARD__ENABLED", "true"), ("VASTHOST_FAULTGUARD__HOLDFOR", "00:00:03"), ("VASTHOST_FAULTGUARD__CLEARFOR", "00:00:04")]);
        await using var agent = AgentProcess.Start(config);
        await Poll.UntilAsync(() => Applied(Endpoints.CreateBids) == 1, TimeSpan.FromSeconds(30), "in sync");

        nvml.Set("gpu.1.lost", "1");
        var lost = Stopwatch.StartNew();
        var degraded = await agent.ScrapeUntilAsync(e => e.Value("vasthost_guard_degraded") == 1, "the guard to trip", TimeSpan.FromSeconds(30));
        Assert.True(lost.Elapsed >= TimeSpan.FromSeconds(3), $"tripped after {lost.Elapsed}, before the 3 s hold");
        Assert.Equal(1, degraded.Value("vasthost_guard_condition_active", ("condition", "gpu_lost")));
        await Poll.UntilAsync(() => !Listed, TimeSpan.FromSeconds(10), "the machine to be unlisted");
        Assert.Contains("TRIPPED", (await Cli(config, "maint", "list")).Stdout, StringComparison.Ordinal);
        using (var status = JsonDocument.Parse(await agent.GetStringAsync("api/status")))
        {
            var guard = status.RootElement.GetProperty("maintenance").GetProperty("guard");
            Assert.True(guard.GetProperty("tripped").GetBoolean());
            Assert.Contains("gpu_lost: GPU 1 GPU_IS_LOST", guard.GetProperty("reason").GetString(), StringComparison.Ordinal);
        }


        nvml.Remove("gpu.1.lost");
        var back = Stopwatch.StartNew();
        await Poll.UntilAsync(() => Listed, TimeSpan.FromSeconds(30), "the machine to be relisted");
        Assert.True(back.Elapsed >= TimeSpan.FromSeconds(4), $"relisted after {back.Elapsed}, before the 4 s clear time");
        await agent.ScrapeUntilAsync(e => e.Value("vasthost_guard_degraded") == 0, "the guard to clear");
        await Poll.UntilAsync(() => (string?)Emulator.State.MachineJson(MachineId)!["bid_image"] == JobImage, TimeSpan.FromSeconds(10), "the default job to be back");
        Assert.Equal(1, Sent(Endpoints.Unlist));
        Assert.Equal(1, Sent(Endpoints.CreateAsks));
    }
}
