using System.Globalization;
using VastEmulator;
using VastHostAgent.Management;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Hosting;

/// <summary>
/// <c>Type=notify</c> as systemd sees it: the test binds the <c>NOTIFY_SOCKET</c> datagram socket and reads
/// what the real agent process sends: READY=1 once it serves, STATUS, WATCHDOG=1 while the samplers run (and
/// not while one is wedged in the driver), STOPPING=1 on SIGTERM. And a SIGTERM during a Vast mutation lets
/// the call finish instead of cutting it off.
/// </summary>
public sealed class SystemdNotifyTests
{
    [Fact]
    public async Task The_agent_notifies_ready_status_watchdog_only_while_samplers_run_marks_a_wedged_driver_stale_and_stops_on_SIGTERM()
    {
        var dir = TestEnvironment.NewTempDirectory("notify");
        using var notify = new NotifySocketReceiver(Path.Combine(dir, "notify.sock"));
        var nvml = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "2" });
        var agent = AgentProcess.Start(new AgentConfig
        {
            FakeNvmlState = nvml.Path,
            Environment = { ["NOTIFY_SOCKET"] = notify.Path, ["WATCHDOG_USEC"] = "1500000" },
        });
        await using var running = agent;

        await Poll.UntilAsync(() => notify.Last("READY=1") is not null, TimeSpan.FromSeconds(30), "READY=1");
        Assert.True((await agent.GetAsync("metrics")).IsSuccessStatusCode);    // ready means serving
        Assert.Single(notify.Messages, m => m.Message == "READY=1");
        await Poll.UntilAsync(() => notify.Messages.Count(m => m.Message == "WATCHDOG=1") >= 4, TimeSpan.FromSeconds(10), "watchdog pings");
        await Poll.UntilAsync(() => notify.Messages.Any(m => m.Message.StartsWith("STATUS=2/2 GPUs up", StringComparison.Ordinal)), TimeSpan.FromSeconds(10), "a status line");

        // The driver wedges (every device call blocks 13 s, longer than the sampler's 11 s stale time): pings stop.
        nvml.Set("call_delay_ms", "13000");
        await Poll.UntilAsync(() => DateTime.UtcNow - notify.Last("WATCHDOG=1") > TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(40), "watchdog pings to stop");
        Assert.Contains(notify.Messages, m => m.Message.StartsWith("STATUS=a sampler is stalled", StringComparison.Ordinal));
        Assert.Contains("watchdog pings stop", agent.StandardOutput, StringComparison.Ordinal);
        Assert.True((await agent.GetAsync("metrics")).IsSuccessStatusCode); // scrapes never wait on the wedged driver

        // Defect 12.8: the frozen readings are not served as current: the collector is down and stale, every GPU
        // down, and a log line says so without systemd.
        var wedged = await agent.ScrapeUntilAsync(e => e.Value("vasthost_collector_stale", ("collector", "gpu")) == 1, "the gpu collector marked stale");
        Assert.Equal(0, wedged.Value("vasthost_collector_up", ("collector", "gpu")));
        Assert.Equal([0.0, 0.0], wedged.Named("vasthost_gpu_up").Select(s => s.Value));
        Assert.Empty(wedged.Named("vasthost_gpu_temperature_celsius"));
        Assert.Contains("Collector gpu stalled", agent.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, (await agent.GetAsync("healthz")).StatusCode);

        // The driver recovers: pings resume, the readings are current again.
        nvml.Remove("call_delay_ms");
        var recovered = DateTime.UtcNow;
        await Poll.UntilAsync(() => notify.Last("WATCHDOG=1") > recovered, TimeSpan.FromSeconds(60), "watchdog pings to resume");
        var back = await agent.ScrapeUntilAsync(e => e.Value("vasthost_collector_stale", ("collector", "gpu")) == 0 && e.Named("vasthost_gpu_up").All(s => s.Value == 1), "fresh GPU readings");
        Assert.Equal(1, back.Value("vasthost_collector_up", ("collector", "gpu")));

        Assert.Equal(0, await agent.StopAsync());
        await Poll.UntilAsync(() => notify.Last("STOPPING=1") is not null, TimeSpan.FromSeconds(5), "STOPPING=1");
    }

    [Fact]
    public async Task Without_a_driver_the_samplers_still_run_so_the_watchdog_keeps_the_agent_alive()
    {
        var dir = TestEnvironment.NewTempDirectory("notify-nodriver");
        using var notify = new NotifySocketReceiver(Path.Combine(dir, "notify.sock"));
        await using var agent = AgentProcess.Start(new AgentConfig
        {
            NvmlLibrary = Path.Combine(dir, "no-such-libnvidia-ml.so.1"),
            Environment = { ["NOTIFY_SOCKET"] = notify.Path, ["WATCHDOG_USEC"] = "1500000" },
        });
        await Poll.UntilAsync(() => notify.Messages.Count(m => m.Message == "WATCHDOG=1") >= 10, TimeSpan.FromSeconds(30), "steady watchdog pings without NVML");
        Assert.Contains(notify.Messages, m => m.Message.StartsWith("STATUS=NVML down", StringComparison.Ordinal));
        Assert.DoesNotContain(notify.Messages, m => m.Message.Contains("stalled", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SIGTERM_during_a_Vast_mutation_lets_the_call_finish_and_records_its_answer()
    {
        await using var emulator = await EmulatorApp.StartAsync(new EmulatorOptions { RateLimitScale = 0.02, OfferCount = 50 });
        var dir = TestEnvironment.NewTempDirectory("sigterm");
        var keyFile = Path.Combine(dir, "vast.key");
        File.WriteAllText(keyFile, emulator.ApiKey);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using var notify = new NotifySocketReceiver(Path.Combine(dir, "notify.sock"));
        emulator.State.AddFault(new FaultSpec(Endpoints.CreateAsks, DelayMs: 4000, PassThrough: true));
        var agent = AgentProcess.Start(new AgentConfig
        {
            WorkDirectory = dir,
            Environment =
            {
                ["NOTIFY_SOCKET"] = notify.Path,
                ["VASTHOST_VAST__ENABLED"] = "true",
                ["VASTHOST_VAST__BASEURL"] = emulator.BaseUrl.GetLeftPart(UriPartial.Authority),
                ["VASTHOST_VAST__APIKEYFILE"] = keyFile,
                ["VASTHOST_VAST__MACHINEID"] = emulator.State.OwnMachineIds[0].ToString(CultureInfo.InvariantCulture),
                ["VASTHOST_VAST__SPACINGSCALE"] = "0.02",
                ["VASTHOST_MANAGEMENT__ENABLED"] = "true",
                ["VASTHOST_MANAGEMENT__DRYRUN"] = "false",
                ["VASTHOST_MANAGEMENT__RECONCILEINTERVAL"] = "00:00:01",
                ["VASTHOST_MANAGEMENT__PRICING__STRATEGY"] = "fixed",
                ["VASTHOST_MANAGEMENT__PRICING__FIXEDPRICE"] = "0.444",
                ["VASTHOST_MANAGEMENT__PRICING__MAXCHANGEPERSTEP"] = "1",
            },
        });
        await using var running = agent;

        // The write-ahead note appears just before the call goes out: stop the agent while it is in flight.
        var state = Path.Combine(dir, "state", "management-state.json");
        await Poll.UntilAsync(() => File.Exists(state) && File.ReadAllText(state).Contains("\"pending\"", StringComparison.Ordinal), TimeSpan.FromSeconds(30), "a create_asks in flight");
        var exit = await agent.StopAsync(TimeSpan.FromSeconds(20));
        Assert.True(exit == 0, $"exit {exit}\n{agent.StandardOutput}\n{agent.StandardError}");

        Assert.Contains("the reconcile in flight may finish", agent.StandardOutput, StringComparison.Ordinal);
        Assert.Single(emulator.State.Requests, r => r.Endpoint == Endpoints.CreateAsks && r.Applied);
        Assert.Equal(0.444, emulator.State.MachineJson(emulator.State.OwnMachineIds[0])!["listed_gpu_cost"]!.GetValue<double>());
        var persisted = new ManagementStateStore(Path.Combine(dir, "state")).Load();
        Assert.Null(persisted.Pending);                                                       // the answer was recorded
        Assert.Null(persisted.Unknown);
        Assert.Equal(0.444, persisted.LastApplied!.PriceGpu);
        Assert.NotNull(notify.Last("STOPPING=1"));
    }
}
