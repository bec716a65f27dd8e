using System.Globalization;
using VastEmulator;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Maintenance;

/// <summary>
/// A window carried out while the real agent is killed (SIGKILL) at every transition: Vast sees each change once.
/// </summary>
public sealed class MaintenanceKillTests : MaintenanceProcessTestBase
{
    [Fact]
    public async Task Killed_at_every_transition_the_agent_resumes_and_Vast_sees_one_dnotify_one_unlist_and_one_restore()
    {
        var config = Config(TestEnvironment.NewTempDirectory("maint-kill"));
        var agent = AgentProcess.Start(config);
        try
        {
            // In sync first: the configured default job is set once.
            await Poll.UntilAsync(() => Applied(Endpoints.CreateBids) == 1, TimeSpan.FromSeconds(30), "the default job to be set");
            var baseline = Endpoints.Names.Where(Endpoints.IsMutation).ToDictionary(e => e, Sent);

            // Scheduled from the command line while the daemon runs: started 4m40s ago (minimum length 5 min),
            // so it is due at once and ends 20 s from now.
            var start = DateTimeOffset.UtcNow.AddSeconds(-280);
            var added = await Cli(config, "maint", "schedule", "--at", start.ToString("o", CultureInfo.InvariantCulture), "--duration", "5m", "--category", "software", "--id", "kill-test");
            Assert.True(added.ExitCode == 0, added.Stderr);

            foreach (var state in new[] { "scheduled", "active", "done" })
            {
                await Poll.UntilAsync(() => WindowState(config, "kill-test") == state, TimeSpan.FromSeconds(60), $"the window to be {state}");
                await agent.KillAsync();
                await agent.DisposeAsync();
                agent = AgentProcess.Start(config);
            }

            // After the last restart: restored and in sync.
            await Poll.UntilAsync(() => Listed && Applied(Endpoints.CreateBids) == 2, TimeSpan.FromSeconds(30), "listing and default job restored");
            await agent.ScrapeUntilAsync(e => e.Value("vasthost_maintenance_in_maintenance") == 0 && e.Value("vasthost_management_last_reconcile_timestamp_seconds") > 0, "a reconcile after the restart");
            var settled = Emulator.State.Requests.Count(r => r.Mutation);
            var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            await agent.ScrapeUntilAsync(e => e.Value("vasthost_management_last_reconcile_timestamp_seconds") > now + 2, "more reconciles", TimeSpan.FromSeconds(30));
            Assert.Equal(settled, Emulator.State.Requests.Count(r => r.Mutation));

            int Delta(string endpoint) => Sent(endpoint) - baseline[endpoint];
            Assert.Equal(1, Delta(Endpoints.Dnotify));
            Assert.Equal(1, Delta(Endpoints.Unlist));
            Assert.Equal(1, Delta(Endpoints.RemoveDefjob));
            Assert.Equal(1, Delta(Endpoints.CreateAsks));      // the one relist
            Assert.Equal(1, Delta(Endpoints.CreateBids));      // the one default job restore
            Assert.Equal(0, Delta(Endpoints.CancelMaint));
            var list = await Cli(config, "maint", "list");
            Assert.Contains("planned -> scheduled", list.Stdout, StringComparison.Ordinal);
            Assert.Contains("scheduled -> active", list.Stdout, StringComparison.Ordinal);
            Assert.Contains("active -> done", list.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await agent.DisposeAsync();
        }
    }
}
