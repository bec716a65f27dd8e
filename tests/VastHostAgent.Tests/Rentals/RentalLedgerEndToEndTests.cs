using System.Text.Json.Nodes;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Rentals;

/// <summary>
/// The real agent and the real private dockerd: short rentals are recorded from Docker's events, and an agent
/// restart loses no run (one started while it was down, one came and went, one ended).
/// </summary>
[Collection(DockerGroup.Name)]
public sealed class RentalLedgerEndToEndTests(DockerFixture fixture, ITestOutputHelper output)
{
    private readonly DockerDaemon _docker = fixture.Daemon;

    private static FakeNvmlState TwoGpus(string dir) => new(dir, new Dictionary<string, string>
    {
        ["gpus"] = "2",
        ["gpu.0.uuid"] = "GPU-bbbbbbbb-0000-4000-8000-000000000000",
        ["gpu.1.uuid"] = "GPU-bbbbbbbb-0000-4000-8000-000000000001",
    });

    /// <summary>The ledger as <c>vast-host-agent rentals --json</c> prints it (the command reads the file).</summary>
    private static async Task<JsonArray> RentalsAsync(string dir)
    {
        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(["rentals", "--json", "--config", Path.Combine(dir, "agent.json")]);
        Assert.True(exit == 0, stderr);
        return JsonNode.Parse(stdout)!.AsArray();
    }

    private static JsonNode? Run(JsonArray runs, long instance) => runs.LastOrDefault(r => (long)r!["instanceId"]! == instance);

    private static Task<JsonArray> RentalsUntilAsync(string dir, Func<JsonArray, bool> done, string what) =>
        Poll.UntilAsync(() => RentalsAsync(dir), done, TimeSpan.FromSeconds(30), what);

    [Fact]
    public async Task A_container_living_two_seconds_is_recorded_with_its_GPUs_times_and_exit_code()
    {
        var dir = TestEnvironment.NewTempDirectory("ledger-e2e");
        var state = TwoGpus(dir);
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, DockerEndpoint = _docker.Endpoint, WorkDirectory = dir, DockerResyncInterval = "01:00:00" });
        await agent.ScrapeUntilAsync(e => e.Value("vasthost_docker_up") == 1 && e.Value("vasthost_rentals_running") == 0, "docker up, ledger ready");
        try
        {
            var (exit, _) = await _docker.TryDockerAsync("run", "--name", "C.61001", "-e", "NVIDIA_VISIBLE_DEVICES=1", DockerDaemon.Image, "sh", "-c", "sleep 2; exit 3");
            Assert.Equal(3, exit);

            var runs = await RentalsUntilAsync(dir, r => Run(r, 61001)?["stoppedAt"] is not null, "C.61001 recorded as ended");
            var run = Run(runs, 61001)!;
            output.WriteLine(run.ToJsonString());
            var started = (DateTimeOffset)run["startedAt"]!;
            var stopped = (DateTimeOffset)run["stoppedAt"]!;
            Assert.InRange((stopped - started).TotalSeconds, 1.5, 10);
            Assert.Equal(3, (long)run["exitCode"]!);
            Assert.False((bool)run["oomKilled"]!);
            Assert.False((bool)run["stopEstimated"]!);
            Assert.Equal(["GPU-bbbbbbbb-0000-4000-8000-000000000001"], run["gpus"]!.AsArray().Select(g => (string)g!));
            Assert.Equal("tiny:latest", (string)run["image"]!);
            Assert.StartsWith("sha256:", (string)run["imageDigest"]!, StringComparison.Ordinal);
            Assert.InRange((double)run["gpuHours"]!, 1.5 / 3600, 10.0 / 3600);

            var m = await agent.ScrapeUntilAsync(e => e.Value("vasthost_rental_duration_seconds_count") >= 1, "the run's duration observed");
            Assert.True(m.Value("vasthost_rentals_started_total") >= 1);
            Assert.True(m.Value("vasthost_rental_gpu_seconds_total") > 0);
            Assert.Equal(0, m.Value("vasthost_rental_ledger_damaged_lines_total"));
            var docs = await File.ReadAllTextAsync(Path.Combine(TestEnvironment.RepositoryRoot, "docs", "metrics.md"));
            var ledgerFamilies = m.Types.Where(t => t.Key.StartsWith("vasthost_rental", StringComparison.Ordinal)).ToList();
            Assert.Equal(6, ledgerFamilies.Count);
            Assert.All(ledgerFamilies, t => Assert.Contains($"| `{t.Key}` | {t.Value} |", docs, StringComparison.Ordinal));

            var (tableExit, table, _) = await AgentProcess.RunToExitAsync(["rentals", "--config", Path.Combine(dir, "agent.json")]);
            Assert.Equal(0, tableExit);
            output.WriteLine(table);
            Assert.Matches(@"(?m)^61001\s+tiny:latest\s+1 \(bbbbbbbb\)\s+\S+ \S+\s+\S+ \S+\s+0m0[1-9]s\s+0\.00\s+\S+\s+3$", table);
        }
        finally
        {
            await _docker.TryDockerAsync("rm", "-f", "C.61001");
        }
    }

    [Fact]
    public async Task Runs_that_start_end_or_come_and_go_while_the_agent_is_down_are_all_recorded_after_it_restarts()
    {
        var dir = TestEnvironment.NewTempDirectory("ledger-restart");
        var state = TwoGpus(dir);
        var config = new AgentConfig { FakeNvmlState = state.Path, DockerEndpoint = _docker.Endpoint, WorkDirectory = dir };
        string[] names = ["C.62001", "C.62002", "C.62003"];
        try
        {
            await _docker.DockerAsync("run", "-d", "--name", "C.62001", "-e", "NVIDIA_VISIBLE_DEVICES=0", DockerDaemon.Image, "sleep", "3600");
            await using (var agent = AgentProcess.Start(config))
            {
                await RentalsUntilAsync(dir, r => Run(r, 62001) is { } run && run["stoppedAt"] is null, "C.62001 open in the ledger");
                await agent.KillAsync(); // a crash: no shutdown checkpoint
            }

            // While the agent is down: C.62001 ends; C.62002 starts (and runs); C.62003 comes and goes and is removed.
            await _docker.DockerAsync("kill", "C.62001");
            await _docker.DockerAsync("run", "-d", "--name", "C.62002", "-e", "NVIDIA_VISIBLE_DEVICES=1", DockerDaemon.Image, "sleep", "3600");
            var (exit, _) = await _docker.TryDockerAsync("run", "--name", "C.62003", DockerDaemon.Image, "sh", "-c", "sleep 1; exit 7");
            Assert.Equal(7, exit);
            await _docker.DockerAsync("rm", "C.62003");
            var c62002Started = DateTimeOffset.Parse(await _docker.DockerAsync("inspect", "-f", "{{.State.StartedAt}}", "C.62002"), System.Globalization.CultureInfo.InvariantCulture);

            await using (var agent = AgentProcess.Start(config))
            {
                var runs = await RentalsUntilAsync(dir,
                    r => Run(r, 62001)?["stoppedAt"] is not null && Run(r, 62002) is not null && Run(r, 62003)?["stoppedAt"] is not null,
                    "all three runs");
                output.WriteLine(runs.ToJsonString());

                var ended = Run(runs, 62001)!;
                Assert.Equal(137, (long)ended["exitCode"]!);
                Assert.False((bool)ended["stopEstimated"]!);

                var startedWhileDown = Run(runs, 62002)!;
                Assert.Null(startedWhileDown["stoppedAt"]);
                Assert.InRange(((DateTimeOffset)startedWhileDown["startedAt"]! - c62002Started).Duration().TotalSeconds, 0, 1.9);
                Assert.Equal(["GPU-bbbbbbbb-0000-4000-8000-000000000001"], startedWhileDown["gpus"]!.AsArray().Select(g => (string)g!));

                var cameAndWent = Run(runs, 62003)!;
                Assert.Equal("events", (string)cameAndWent["source"]!);
                Assert.Equal(7, (long)cameAndWent["exitCode"]!);
                Assert.InRange(((DateTimeOffset)cameAndWent["stoppedAt"]! - (DateTimeOffset)cameAndWent["startedAt"]!).TotalSeconds, 0.5, 10);

                // One record per run: nothing recorded twice across the restart.
                Assert.Equal(3, runs.Count(r => (long)r!["instanceId"]! is 62001 or 62002 or 62003));
                var m = await agent.ScrapeUntilAsync(e => e.Value("vasthost_rentals_running") == 1, "one rental running");
                Assert.True(m.Value("vasthost_rentals_started_total") >= 2); // C.62002 and C.62003 began while the agent was away
            }
        }
        finally
        {
            foreach (var name in names)
            {
                await _docker.TryDockerAsync("rm", "-f", name);
            }
        }
    }
}
