using System.Globalization;
using System.Text.Json.Nodes;
using VastEmulator;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Fleet;

/// <summary>
/// The fleet controller with real parts only: three real rig agents (fake NVML; host names rig-a, rig-b, rig-c and
/// their machine ids) scraped every second by a real Prometheus, a real controller process reading that Prometheus
/// and managing the three machines of an emulated Vast account (pricing off, so every mutation is one the guard,
/// a maintenance window or a relist asked for). What is asserted is what the host would see on Vast: which
/// machine is listed, which endpoints were called for which machine, and how often.
/// </summary>
public sealed class ControllerEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan HoldFor = TimeSpan.FromSeconds(3);
    private static readonly string[] Hostnames = ["rig-a", "rig-b", "rig-c"];

    private readonly List<IAsyncDisposable> _disposables = [];
    private readonly Dictionary<string, AgentProcess> _rigs = [];
    private readonly Dictionary<string, FakeNvmlState> _nvml = [];
    private readonly Dictionary<string, int> _ids = [];
    private RunningEmulator _emulator = null!;
    private PrometheusServer? _prometheus;
    private AgentProcess? _controller;
    private string _controllerDir = "";
    private int _controllerPort;

    private string ControllerConfig => Path.Combine(_controllerDir, "agent.json");

    public async Task InitializeAsync()
    {
        _emulator = await EmulatorApp.StartAsync(new EmulatorOptions { MachineHostnames = Hostnames, OfferCount = 100, RateLimitScale = 0.01 });
        _disposables.Add(_emulator);
        for (var i = 0; i < Hostnames.Length; i++)
        {
            _ids[Hostnames[i]] = _emulator.State.OwnMachineIds[i];
        }

        foreach (var host in Hostnames)
        {
            var nvml = new FakeNvmlState(TestEnvironment.NewTempDirectory("ctl-e2e-" + host), new Dictionary<string, string> { ["gpus"] = "2" });
            var rig = AgentProcess.Start(new AgentConfig
            {
                FakeNvmlState = nvml.Path,
                Environment =
                {
                    ["VASTHOST_AGENT__ROLE"] = "rig",
                    ["VASTHOST_AGENT__HOSTNAME"] = host,
                    ["VASTHOST_AGENT__MACHINEID"] = _ids[host].ToString(CultureInfo.InvariantCulture),
                },
            });
            _disposables.Add(rig);
            _rigs[host] = rig;
            _nvml[host] = nvml;
        }

        foreach (var rig in _rigs.Values)
        {
            await rig.WaitReadyAsync();
        }

        _prometheus = await PrometheusServer.StartAsync(TestEnvironment.NewTempDirectory("ctl-e2e-prometheus"), $$"""
            global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
            scrape_configs:
              - job_name: vast-host-agent
                static_configs:
                  - targets: [{{string.Join(", ", _rigs.Values.Select(r => $"\"127.0.0.1:{r.Port}\""))}}]
            """);
        _disposables.Add(new Stop(async () =>
        {
            if (_prometheus is not null)
            {
                await _prometheus.DisposeAsync();
            }
        }));

        _controllerDir = TestEnvironment.NewTempDirectory("ctl-e2e-controller");
        _controllerPort = AgentProcess.FreePort();
        var key = Path.Combine(_controllerDir, "key");
        await File.WriteAllTextAsync(key, _emulator.ApiKey + "\n");
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        _disposables.Add(new Stop(async () =>
        {
            if (_controller is not null)
            {
                await _controller.DisposeAsync();
            }
        }));
        await StartControllerAsync();
    }

    public async Task DisposeAsync()
    {
        if (_controller is not null)
        {
            output.WriteLine("controller stdout (tail):\n" + string.Join('\n', _controller.StandardOutput.Split('\n').TakeLast(60)));
            output.WriteLine("controller stderr (tail):\n" + string.Join('\n', _controller.StandardError.Split('\n').TakeLast(20)));
        }

        foreach (var d in Enumerable.Reverse(_disposables))
        {
            await d.DisposeAsync();
        }
    }

    /// <summary>Starts (or starts again, same state directory and port) the controller and waits until it has reconciled every machine with known rig health.</summary>
    private async Task StartControllerAsync()
    {
        var json = $$"""
            {
              "agent": { "role": "controller", "stateDirectory": "{workDir}/state" },
              "metrics": { "listenAddress": "127.0.0.1:{port}" },
              "gpu": { "enabled": false },
              "host": { "hwmon": false, "disk": false },
              "docker": { "enabled": false },
              "vast": {
                "enabled": true, "apiKeyFile": "{workDir}/key", "baseUrl": "{{_emulator.BaseUrl.GetLeftPart(UriPartial.Authority)}}",
                "spacingScale": 0.01, "pollInterval": "00:00:10", "requestTimeout": "00:00:02"
              },
              "management": { "enabled": true, "dryRun": false, "reconcileInterval": "00:00:01", "jitter": 0, "unknownOutcomeQuarantine": "00:00:01" },
              "faultGuard": { "enabled": true, "policy": "unlist", "holdFor": "00:00:0{{HoldFor.Seconds}}", "clearFor": "00:00:03" },
              "fleet": {
                "lockDirectory": "{workDir}",
                "prometheus": { "url": "{{_prometheus!.BaseUrl}}", "timeout": "00:00:02", "maxAge": "00:00:30", "machineLabel": "hostname", "selector": "job=\"vast-host-agent\"" },
                "machines": [ { "hostname": "rig-*" } ]
              }
            }
            """;
        _controller = AgentProcess.Start(new AgentConfig { RawJson = json, WorkDirectory = _controllerDir, Port = _controllerPort });
        var started = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        await _controller.ScrapeUntilAsync(
            e => Hostnames.All(h => e.Value("vasthost_fleet_rig_health_known", ("machine_id", Id(h)), ("hostname", h)) == 1
                && e.Value("vasthost_fleet_last_reconcile_timestamp_seconds", ("machine_id", Id(h)), ("hostname", h)) >= started),
            "the controller reconciling rig-a, rig-b and rig-c with their health known", Deadline);
    }

    private string Id(string host) => _ids[host].ToString(CultureInfo.InvariantCulture);

    private bool Listed(string host) => _emulator.State.MachineJson(_ids[host])!["listed"]!.GetValue<bool>();

    private Task WaitListedAsync(string host, bool listed, string why) =>
        UntilAsync(() => Listed(host) == listed, $"{host} {(listed ? "listed" : "unlisted")} on Vast ({why})");

    /// <summary>Polls <paramref name="condition"/>; on timeout the message lists the mutations the emulator had seen by then.</summary>
    private async Task UntilAsync(Func<bool> condition, string what) =>
        await Poll.UntilAsync(() => Task.FromResult((Done: condition(), Seen: Mutations())), r => r.Done, Deadline, what);

    /// <summary>Mutation requests the emulator received for one machine (path /machines/{id}/...), optionally of one endpoint.</summary>
    private List<RequestLogEntry> MutationsFor(string host, string? endpoint = null) =>
        [.. _emulator.State.Requests.Where(r => r.Mutation && r.Path.Contains($"/machines/{_ids[host]}/", StringComparison.Ordinal) && (endpoint is null || r.Endpoint == endpoint))];

    /// <summary>create_asks carries its machine in the body: with pricing off every one is a relist or an end-date clamp.</summary>
    private List<RequestLogEntry> CreateAsks() => [.. _emulator.State.Requests.Where(r => r.Endpoint == Endpoints.CreateAsks)];

    private string Mutations() =>
        "mutations: " + string.Join(", ", _emulator.State.Requests.Where(r => r.Mutation).Select(r => $"{r.Method} {r.Path} {r.Status}{(r.Applied ? " applied" : "")}"));

    /// <summary>Waits until the controller has reconciled every machine at a time at or after <paramref name="after"/> (unix seconds).</summary>
    private Task<Exposition> WaitReconciledAfterAsync(double after, string what) =>
        _controller!.ScrapeUntilAsync(
            e => Hostnames.All(h => e.Value("vasthost_fleet_last_reconcile_timestamp_seconds", ("machine_id", Id(h)), ("hostname", h)) >= after),
            what, Deadline);

    private static double Now => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

    [Fact]
    public async Task A_lost_GPU_unlists_exactly_that_machine_and_relists_it_after_recovery_and_a_dead_rig_agent_unlists_its_machine_after_the_hold()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.DoesNotContain(_emulator.State.Requests, r => r.Mutation);   // pricing off, listings in sync: nothing to change
        Assert.True(Hostnames.All(Listed));

        // ---- rig-b loses a GPU: after the hold, exactly machine b is unlisted.
        _nvml["rig-b"].Set("gpu.1.lost", "1");
        await WaitListedAsync("rig-b", false, "GPU 1 lost on rig-b");
        var unlistB = Assert.Single(MutationsFor("rig-b"));
        Assert.Equal((Endpoints.Unlist, true), (unlistB.Endpoint, unlistB.Applied));
        var guard = await _controller!.ScrapeAsync();
        Assert.Equal(1, guard.Value("vasthost_guard_degraded", ("machine_id", Id("rig-b"))));
        Assert.Equal(1, guard.Value("vasthost_guard_condition_active", ("machine_id", Id("rig-b")), ("condition", "gpu_lost")));
        Assert.True(Listed("rig-a") && Listed("rig-c"));
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0}s: rig-b unlisted");

        // ---- the GPU comes back: after clearFor, machine b is listed again (one create_asks), nothing else.
        _nvml["rig-b"].Remove("gpu.1.lost");
        await WaitListedAsync("rig-b", true, "GPU back on rig-b");
        var relist = Assert.Single(CreateAsks());
        Assert.True(relist.Applied);
        Assert.Single(MutationsFor("rig-b"));
        await _controller.ScrapeUntilAsync(e => e.Value("vasthost_guard_degraded", ("machine_id", Id("rig-b"))) is null or 0, "the guard no longer holding rig-b");
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0}s: rig-b relisted");

        // ---- rig-c's agent dies: its machine is unlisted, but only after the hold.
        var killedAt = Now;
        await _rigs["rig-c"].KillAsync();
        await WaitListedAsync("rig-c", false, "rig-c's agent killed");
        var unlistC = Assert.Single(MutationsFor("rig-c"));
        Assert.Equal((Endpoints.Unlist, true), (unlistC.Endpoint, unlistC.Applied));
        Assert.True(unlistC.Time - killedAt >= HoldFor.TotalSeconds, $"rig-c unlisted {unlistC.Time - killedAt:0.0}s after its agent was killed (holdFor {HoldFor.TotalSeconds}s)");
        var down = await _controller.ScrapeAsync();
        Assert.Equal(1, down.Value("vasthost_guard_condition_active", ("machine_id", Id("rig-c")), ("condition", "agent_down")));
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0}s: rig-c unlisted {unlistC.Time - killedAt:0.0}s after its agent died");

        // ---- the rest of the fleet was never touched.
        await WaitReconciledAfterAsync(Now, "one more cycle over every machine");
        Assert.Empty(MutationsFor("rig-a"));
        Assert.Single(CreateAsks());
        Assert.Single(MutationsFor("rig-b"));
        Assert.Single(MutationsFor("rig-c"));
        Assert.True(Listed("rig-a") && Listed("rig-b") && !Listed("rig-c"));
    }

    [Fact]
    public async Task Two_maintenance_windows_on_two_machines_are_notified_for_those_machines_and_a_stopped_Prometheus_holds_every_machine_visibly_without_a_mutation()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.DoesNotContain(_emulator.State.Requests, r => r.Mutation);

        // ---- two windows at once, one by host name and one by machine id, from the controller's host.
        var start = DateTimeOffset.UtcNow.AddHours(3);
        var at = start.ToString("yyyy-MM-ddTHH:00:00Z", CultureInfo.InvariantCulture);
        var windowStart = DateTimeOffset.Parse(at, CultureInfo.InvariantCulture).ToUnixTimeSeconds();
        foreach (var (machine, id) in new[] { ("rig-a", "psu-a"), (Id("rig-c"), "disk-c") })
        {
            var schedule = await AgentProcess.RunToExitAsync(["maint", "schedule", "--config", ControllerConfig, "--machine", machine, "--at", at, "--duration", "2h", "--category", "power", "--id", id]);
            Assert.True(schedule.ExitCode == 0, schedule.Stderr + schedule.Stdout);
        }

        await UntilAsync(() => MutationsFor("rig-a", Endpoints.Dnotify).Any(r => r.Applied) && MutationsFor("rig-c", Endpoints.Dnotify).Any(r => r.Applied),
            "dnotify for machines a and c");
        foreach (var host in new[] { "rig-a", "rig-c" })
        {
            var window = Assert.Single(_emulator.State.MachineJson(_ids[host])!["machine_maintenance"]!.AsArray());
            Assert.Equal(windowStart, window!["start_time"]!.GetValue<double>(), 0);
        }

        // The offers of a and c are clamped to end at the window's start (create_asks), so no contract outlives it.
        await UntilAsync(() => new[] { "rig-a", "rig-c" }.All(h => _emulator.State.MachineJson(_ids[h])!["end_date"]!.GetValue<double>() <= windowStart),
            "the offers of a and c ending at the window's start");
        await WaitReconciledAfterAsync(Now, "one more cycle over every machine");
        Assert.Single(MutationsFor("rig-a", Endpoints.Dnotify));
        Assert.Single(MutationsFor("rig-c", Endpoints.Dnotify));
        Assert.Empty(MutationsFor("rig-b"));
        Assert.Null(_emulator.State.MachineJson(_ids["rig-b"])!["machine_maintenance"]);
        Assert.Equal(2, CreateAsks().Count);
        Assert.True(Hostnames.All(Listed));
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0}s: both windows notified");

        // ---- Prometheus stops: rig health is unknown, the guard holds every machine and says so; no mutation.
        var before = _emulator.State.Requests.Count(r => r.Mutation);
        await _prometheus!.DisposeAsync();
        _prometheus = null;
        var stoppedAt = Now;
        _nvml["rig-b"].Set("gpu.1.lost", "1");   // a fault nobody can see now
        await _controller!.ScrapeUntilAsync(
            e => e.Value("vasthost_fleet_rig_health_up") == 0
                && Hostnames.All(h => e.Value("vasthost_fleet_rig_health_known", ("machine_id", Id(h)), ("hostname", h)) == 0),
            "rig health unknown for every machine", Deadline);
        await WaitReconciledAfterAsync(stoppedAt + (2 * HoldFor.TotalSeconds) + 1, "cycles past twice the hold with Prometheus stopped");
        Assert.Equal(before, _emulator.State.Requests.Count(r => r.Mutation));
        Assert.True(Hostnames.All(Listed));
        var log = _controller.StandardOutput + _controller.StandardError;
        Assert.Contains("Rig health from Prometheus unavailable (the fault guard holds)", log, StringComparison.Ordinal);
        Assert.All(Hostnames, h => Assert.Contains($"Fault guard holds machine {Id(h)} (no trip, no clear)", log, StringComparison.Ordinal));

        // ... and `status` on the controller host says so, naming the held machines.
        var status = await AgentProcess.RunToExitAsync(["status", "--config", _controller.ConfigPath], timeout: TimeSpan.FromSeconds(60));
        Assert.True(status.ExitCode == 0, status.Stderr);
        Assert.Contains("Rig health (fleet.prometheus): UNAVAILABLE", status.Stdout, StringComparison.Ordinal);
        Assert.Contains("the fault guard holds (no unlist, no relist)", status.Stdout, StringComparison.Ordinal);
        Assert.Contains("Held (rig health unknown): 3 machine(s)", status.Stdout, StringComparison.Ordinal);
        Assert.All(Hostnames, h => Assert.Contains($"{Id(h)} ({h})", status.Stdout, StringComparison.Ordinal));
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0}s: held {Now - stoppedAt:0.0}s without Prometheus, no mutation");
    }

    [Fact]
    public async Task A_controller_killed_with_an_unlist_in_flight_never_sends_it_again_and_relists_after_recovery()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.DoesNotContain(_emulator.State.Requests, r => r.Mutation);

        // The emulator holds the next unlist for 5 s, then applies it whether or not the client is still there.
        _emulator.State.AddFault(new FaultSpec(Endpoints.Unlist, DelayMs: 5000, PassThrough: true));
        _nvml["rig-b"].Set("gpu.1.lost", "1");
        await UntilAsync(() => _emulator.State.Faults.Count == 0, "the unlist of rig-b reaching the emulator");
        await _controller!.KillAsync();
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0}s: controller killed with the unlist in flight");
        var stateFile = Path.Combine(_controllerDir, "state", "machines", Id("rig-b"), "management-state.json");
        var pending = JsonNode.Parse(await File.ReadAllTextAsync(stateFile))!["state"]!["pending"];
        Assert.True(pending is JsonObject, "the write-ahead note of the unlist in flight: " + pending?.ToJsonString());
        Assert.Equal("unlist", (string?)pending!["endpoint"]);

        // The held request is applied after the controller died: Vast has unlisted b, the controller never heard.
        await WaitListedAsync("rig-b", false, "the held unlist applied");
        await UntilAsync(() => MutationsFor("rig-b").Count(r => r.Applied) == 1, "the unlist logged as applied");

        // ---- restarted, the controller re-reads instead of sending the unlist again; then the GPU comes back.
        await StartControllerAsync();
        await Poll.UntilAsync(() => File.ReadAllText(Path.Combine(_controllerDir, "state", "journal.jsonl")).Contains("re_read_after_unknown_outcome", StringComparison.Ordinal),
            Deadline, "the restarted controller re-reading machine b after the unknown outcome");
        await WaitReconciledAfterAsync(Now, "one more cycle over every machine");
        Assert.Single(MutationsFor("rig-b"));
        Assert.False(Listed("rig-b"));

        _nvml["rig-b"].Remove("gpu.1.lost");
        await WaitListedAsync("rig-b", true, "GPU back on rig-b after the controller's restart");
        await WaitReconciledAfterAsync(Now, "one more cycle over every machine");
        var unlists = MutationsFor("rig-b", Endpoints.Unlist);
        Assert.Single(unlists);
        Assert.Single(CreateAsks());
        Assert.Empty(MutationsFor("rig-a"));
        Assert.Empty(MutationsFor("rig-c"));
        foreach (var group in _emulator.State.Requests.Where(r => r.Mutation).GroupBy(r => (r.Endpoint, r.Path)))
        {
            Assert.True(group.Count() == 1, $"{group.Key} sent {group.Count()} times; {Mutations()}");
        }

        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0}s: rig-b relisted after the restart; every mutation sent once");
    }

    private sealed class Stop(Func<Task> stop) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await stop();
    }
}
