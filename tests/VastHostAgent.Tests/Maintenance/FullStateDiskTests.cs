using System.Net;
using VastEmulator;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Maintenance;

/// <summary>
/// A state directory on a full filesystem: /healthz reports the failing reconcile while telemetry flows.
/// </summary>
public sealed class FullStateDiskTests : MaintenanceProcessTestBase
{
    [Fact]
    public async Task A_full_disk_under_the_state_directory_makes_healthz_report_the_failing_reconcile_while_telemetry_flows()
    {
        // Defect 12.7: every reconcile failed on a full disk and /healthz stayed 200.
        var dir = TestEnvironment.NewTempDirectory("full-state");
        var state = Path.Combine(dir, "state");
        Directory.CreateDirectory(state);
        var mounted = await RunAsync("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", state);
        Assert.True(mounted.ExitCode == 0, $"this test needs to mount a 1 MiB tmpfs (root, as for the private dockerd): {mounted.Output}");
        try
        {
            var config = Config(dir);
            await using var agent = AgentProcess.Start(config);
            await Poll.UntilAsync(() => Applied(Endpoints.CreateBids) == 1, TimeSpan.FromSeconds(30), "in sync");
            Assert.Equal(HttpStatusCode.OK, (await agent.GetAsync("healthz")).StatusCode);

            // Fill the file system: every state write now fails with ENOSPC.
            var filler = Path.Combine(state, "filler.bin");
            await using (var fill = new FileStream(filler, FileMode.Create))
            {
                var block = new byte[64 * 1024];
                try
                {
                    while (true)
                    {
                        await fill.WriteAsync(block);
                        await fill.FlushAsync();
                    }
                }
                catch (IOException)
                {
                    // full
                }
            }

            var unhealthy = await Poll.UntilAsync(async () => await (await agent.GetAsync("healthz")).Content.ReadAsStringAsync(),
                text => text.Contains("loop management: failing", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "healthz to report the failing reconcile");
            Assert.Contains("No space left on device", unhealthy, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await agent.GetAsync("healthz")).StatusCode);
            var metrics = await agent.ScrapeAsync();
            Assert.Equal(1, metrics.Value("vasthost_loop_failing", ("loop", "management")));
            Assert.Equal(1, metrics.Value("vasthost_collector_up", ("collector", "gpu")));    // telemetry keeps flowing
            Assert.False(agent.HasExited);
            Assert.Single(agent.StandardOutput.Split('\n'), l => l.Contains("Loop management failed unexpectedly", StringComparison.Ordinal));

            // Space again: the next reconcile succeeds and health is back.
            File.Delete(filler);
            await Poll.UntilAsync(async () => (await agent.GetAsync("healthz")).StatusCode, status => status == HttpStatusCode.OK, TimeSpan.FromSeconds(60), "healthz to recover");
            Assert.Contains("Loop management running again", agent.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            await RunAsync("umount", "-l", state);
        }
    }
}
