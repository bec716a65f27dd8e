using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using VastEmulator;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Packaging;

/// <summary>
/// Alerts that reach a person, with real parts only: real agents (fake NVML, the Vast emulator) scraped by a real
/// Prometheus that evaluates the shipped rules (<c>for:</c> set to 0, as in <see cref="PrometheusEndToEndTests"/>), firing
/// to a real Alertmanager started from the shipped packaging/alertmanager configuration and templates, whose Telegram,
/// Discord and webhook receivers point at a local listener (<see cref="AlertmanagerConfigTests.PrepareAsync"/> lists the
/// fields the test rewrites: secret file paths, Telegram's api_url, the templates path, group_wait and group_interval 3s).
/// Rigs: rig-01 healthy (standalone), rig-02 faulty (standalone: a lost GPU, a hot GPU, its Vast machine offline, the
/// fault guard holding in dry-run), and a fleet: rig-03's rig agent and the controller of its Vast account. What a
/// person would see is asserted: one message per rig and receiver naming the rig, its GPUs and its Vast machine; nothing
/// for the healthy rig; and when rig-03's agent stops, one message that it is down, not its other alerts.
/// </summary>
public sealed class AlertmanagerEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string GroupWait = "3s";
    private const string GroupInterval = "3s";
    private const string TelegramToken = "123456:TEST-token_from-file";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(90);
    private readonly List<IAsyncDisposable> _disposables = [];
    private AlertmanagerServer? _alertmanager;
    private PrometheusServer? _prometheus;
    private NotificationReceiver? _receiver;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        // What each part saw, for a failure's report; then every process is stopped whatever that printed.
        try
        {
            if (_alertmanager is not null)
            {
                output.WriteLine("alertmanager log (tail):\n" + _alertmanager.Log);
                output.WriteLine("alertmanager alerts: " + (await _alertmanager.AlertsAsync()).ToJsonString());
            }

            if (_prometheus is not null)
            {
                output.WriteLine("prometheus log (tail):\n" + _prometheus.Log);
                output.WriteLine("prometheus alerts: " + (await _prometheus.GetAsync("api/v1/alerts")).ToJsonString());
            }

            foreach (var n in _receiver?.Received ?? [])
            {
                output.WriteLine($"received at {n.At:HH:mm:ss.fff}: {n.Path} {n.Body.ToJsonString()}");
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or InvalidOperationException)
        {
            output.WriteLine("diagnostics incomplete: " + ex.Message);
        }

        foreach (var d in Enumerable.Reverse(_disposables))
        {
            await d.DisposeAsync();
        }
    }

    private async Task<AgentProcess> StartAsync(AgentConfig config)
    {
        var agent = AgentProcess.Start(config);
        _disposables.Add(agent);
        await agent.ScrapeUntilAsync(e => e.Named("vasthost_build_info").Any(), "agent serving");
        return agent;
    }

    private static string Target(AgentProcess a) => $"127.0.0.1:{a.Port}";

    [Fact]
    public async Task Each_faulty_rig_gets_one_message_per_receiver_naming_its_GPUs_and_machine_and_a_stopped_rig_agent_only_one_that_it_is_down()
    {
        var clock = Stopwatch.StartNew();

        // ---- Vast account A: rig-01 and rig-02 (2 GPUs each, listed); rig-02 offline.
        var vastA = await EmulatorApp.StartAsync(new EmulatorOptions { RateLimitScale = 0.02, OfferCount = 100, MachineHostnames = ["rig-01", "rig-02"], MachineGpuCounts = [2, 2] });
        _disposables.Add(vastA);
        var machine02 = vastA.State.OwnMachineIds[1];
        vastA.State.SetOnline(machine02, false);

        // ---- rig-01: healthy. rig-02: GPU 1 lost, GPU 0 at 95 °C (slowdown at 90), management in dry-run with the fault guard.
        var dir01 = TestEnvironment.NewTempDirectory("am-e2e-01");
        var env01 = PrometheusEndToEndTests.Vast(vastA, dir01, "rig-01", management: false);
        env01["VASTHOST_HOST__DISK"] = "false";
        var rig01 = await StartAsync(new AgentConfig
        {
            WorkDirectory = dir01,
            FakeNvmlState = new FakeNvmlState(dir01, new Dictionary<string, string> { ["gpus"] = "2" }).Path,
            SampleInterval = "00:00:02",
            Environment = env01,
        });
        var dir02 = TestEnvironment.NewTempDirectory("am-e2e-02");
        var env02 = PrometheusEndToEndTests.Vast(vastA, dir02, "rig-02", management: true);
        env02["VASTHOST_HOST__DISK"] = "false";
        var nvml02 = new FakeNvmlState(dir02, new Dictionary<string, string> { ["gpus"] = "2", ["gpu.1.lost"] = "1", ["gpu.0.temp"] = "95", ["gpu.0.temp_slowdown"] = "90" });
        var rig02 = await StartAsync(new AgentConfig { WorkDirectory = dir02, FakeNvmlState = nvml02.Path, SampleInterval = "00:00:02", Environment = env02 });

        // ---- Vast account B, a fleet: rig-03's rig agent (telemetry only) and the controller managing its machine
        // (fault guard on, with a hold longer than the test so it never unlists).
        var vastB = await EmulatorApp.StartAsync(new EmulatorOptions { RateLimitScale = 0.01, OfferCount = 100, MachineHostnames = ["rig-03"], MachineGpuCounts = [2] });
        _disposables.Add(vastB);
        var machine03 = vastB.State.OwnMachineIds[0].ToString(CultureInfo.InvariantCulture);
        var dir03 = TestEnvironment.NewTempDirectory("am-e2e-03");
        var rig03 = await StartAsync(new AgentConfig
        {
            WorkDirectory = dir03,
            FakeNvmlState = new FakeNvmlState(dir03, new Dictionary<string, string> { ["gpus"] = "2" }).Path,
            Environment = { ["VASTHOST_AGENT__ROLE"] = "rig", ["VASTHOST_AGENT__HOSTNAME"] = "rig-03", ["VASTHOST_AGENT__MACHINEID"] = machine03, ["VASTHOST_HOST__DISK"] = "false" },
        });
        var controllerPort = AgentProcess.FreePort();
        var (t01, t02, t03, tc) = (Target(rig01), Target(rig02), Target(rig03), $"127.0.0.1:{controllerPort}");

        // ---- Prometheus with the shipped rules (for: 0s), re-sending firing alerts every evaluation. Until Alertmanager
        // runs, it scrapes every rig but rig-02; then it scrapes rig-02 too and sends to Alertmanager. Alertmanager sends a
        // group's first message at once, without group_wait, for an alert that started longer than group_wait before it
        // arrived, as it would for alerts that fired while it was down: rig-02's alerts start when it first sees them.
        var promDir = TestEnvironment.NewTempDirectory("am-e2e-prometheus");
        var rules = PrometheusEndToEndTests.ForZero().Replace(
            await File.ReadAllTextAsync(Path.Combine(TestEnvironment.RepositoryRoot, "packaging", "prometheus", "vast-host-agent.rules.yml")), "${1}0s");
        await File.WriteAllTextAsync(Path.Combine(promDir, "rules.yml"), rules);
        string PrometheusConfig(int? alertmanagerPort) => $$"""
            global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
            rule_files: [rules.yml]
            scrape_configs:
              - job_name: vast-host-agent
                static_configs:
                  - targets: ["{{t01}}"]
                    labels: { rig: rig-01 }
                  - targets: ["{{t03}}"]
                  - targets: ["{{tc}}"]
                    labels: { role: controller }
            """ + (alertmanagerPort is null ? "" : $$"""

                  - targets: ["{{t02}}"]
                    labels: { rig: rig-02 }
            alerting:
              alertmanagers:
                - static_configs:
                    - targets: ["127.0.0.1:{{alertmanagerPort}}"]
            """);
        _prometheus = await PrometheusServer.StartAsync(promDir, PrometheusConfig(null), "--rules.alert.resend-delay=500ms");
        _disposables.Add(_prometheus);

        var controllerDir = TestEnvironment.NewTempDirectory("am-e2e-controller");
        var key = Path.Combine(controllerDir, "key");
        await File.WriteAllTextAsync(key, vastB.ApiKey + "\n");
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await StartAsync(new AgentConfig
        {
            WorkDirectory = controllerDir,
            Port = controllerPort,
            RawJson = $$"""
                {
                  "agent": { "role": "controller", "stateDirectory": "{workDir}/state" },
                  "metrics": { "listenAddress": "127.0.0.1:{port}" },
                  "gpu": { "enabled": false },
                  "host": { "hwmon": false, "disk": false },
                  "docker": { "enabled": false },
                  "vast": {
                    "enabled": true, "apiKeyFile": "{workDir}/key", "baseUrl": "{{vastB.BaseUrl.GetLeftPart(UriPartial.Authority)}}",
                    "spacingScale": 0.01, "pollInterval": "00:00:10", "requestTimeout": "00:00:02"
                  },
                  "management": { "enabled": true, "dryRun": false, "reconcileInterval": "00:00:01", "jitter": 0 },
                  "faultGuard": { "enabled": true, "holdFor": "01:00:00" },
                  "fleet": {
                    "lockDirectory": "{workDir}",
                    "prometheus": { "url": "{{_prometheus.BaseUrl}}", "timeout": "00:00:02", "maxAge": "00:00:30", "machineLabel": "hostname", "selector": "job=\"vast-host-agent\"" },
                    "machines": [ { "hostname": "rig-03" } ]
                  }
                }
                """,
        });

        // ---- steady state: no alert fires (the controller's target is up, rig-03's health known), and rig-02's agent
        // shows every fault: the lost and the hot GPU, its machine offline on Vast, the guard holding it (dry-run).
        await WaitFiringAsync([], "rig-01 and the fleet without an alert");
        await rig02.ScrapeUntilAsync(e => e.Value("vasthost_gpu_up", ("gpu", "1")) == 0 && e.Value("vasthost_gpu_temperature_celsius", ("gpu", "0")) == 95
            && e.Value("vasthost_vast_machine_online") == 0 && e.Value("vasthost_guard_degraded") == 1 && e.Value("vasthost_management_dry_run") == 1,
            "rig-02's faults", Deadline);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0}s: steady");

        // ---- Alertmanager from the shipped configuration; Prometheus now sends to it.
        var receiver = _receiver = await NotificationReceiver.StartAsync();
        _disposables.Add(receiver);
        var amDir = TestEnvironment.NewTempDirectory("am-e2e-alertmanager");
        var (_, amConfig) = await AlertmanagerConfigTests.PrepareAsync(amDir,
            new AlertmanagerConfigTests.Endpoints(
                WebhookUrl: new Uri(receiver.BaseUrl, "webhook?token=s3cret").ToString(),
                TelegramApiUrl: new Uri(receiver.BaseUrl, "telegram").ToString(),
                DiscordWebhookUrl: new Uri(receiver.BaseUrl, "discord/webhooks/42/from-file").ToString(),
                TelegramToken: TelegramToken),
            GroupWait, GroupInterval);
        _alertmanager = await AlertmanagerServer.StartAsync(amDir, amConfig);
        _disposables.Add(_alertmanager);
        await _prometheus.ReloadAsync(PrometheusConfig(_alertmanager.Port));
        await Poll.UntilAsync(async () => (await _prometheus.GetAsync("api/v1/alertmanagers"))["activeAlertmanagers"]!.AsArray().Count,
            n => n == 1, Deadline, "Prometheus sending to the Alertmanager");
        string[] steady =
        [
            $"VastHostGpuLost {t02} gpu=1", $"VastHostGpuMissing {t02}", $"VastHostGpuTemperatureHigh {t02} gpu=0", $"VastHostVastMachineOffline {t02} hostname=rig-02 machine_id={machine02}",
            $"VastHostFaultGuardHolding {t02}", $"VastHostFaultGuardCondition {t02} condition=gpu_lost", $"VastHostManagementDryRunLong {t02}",
        ];
        await WaitFiringAsync(steady, "rig-02's alerts, and no other");

        // One message per receiver, about rig-02.
        await Poll.UntilAsync(() => Task.FromResult(Counts(receiver)), c => c is (1, 1, 1), Deadline, "rig-02's webhook, Telegram and Discord messages");
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0}s: rig-02 notified");
        var hook = Assert.Single(receiver.Webhook);
        Assert.Equal("/webhook?token=s3cret", hook.Path);
        Assert.Equal(("webhook", "firing"), ((string?)hook.Body["receiver"], (string?)hook.Body["status"]));
        Assert.Equal(new JsonObject { ["instance"] = t02 }.ToJsonString(), hook.Body["groupLabels"]!.ToJsonString());
        // Every alert of rig-02 once, but the fault guard's conditions: a critical alert of the rig already says it.
        Assert.Equal(steady.Where(s => !s.StartsWith("VastHostFaultGuardCondition ", StringComparison.Ordinal)).Order(StringComparer.Ordinal),
            hook.Body["alerts"]!.AsArray().Select(Describe).Order(StringComparer.Ordinal));
        Assert.All(hook.Body["alerts"]!.AsArray(), a => Assert.Equal("firing", (string?)a!["status"]));
        var lost = hook.Body["alerts"]!.AsArray().Single(a => (string?)a!["labels"]!["alertname"] == "VastHostGpuLost")!;
        // The target's rig label (some rules aggregate it away: one alert carrying it names the group, below).
        Assert.Equal(("critical", "rig-02"), ((string?)lost["labels"]!["severity"], (string?)lost["labels"]!["rig"]));
        Assert.Equal($"GPU 1 lost on {t02}", (string?)lost["annotations"]!["summary"]);

        // Telegram: the bot token and chat from the configuration, the critical alerts only, named by rig, GPU and machine.
        var telegram = Assert.Single(receiver.Telegram);
        Assert.Equal($"/telegram/bot{TelegramToken}/sendMessage", telegram.Path);
        Assert.Equal("-1001234567890", telegram.Body["chat_id"]!.ToString());
        var text = (string)telegram.Body["text"]!;
        output.WriteLine("Telegram:\n" + text);
        Assert.StartsWith($"🔥 3 firing on rig-02 ({t02})\n", text, StringComparison.Ordinal);
        Assert.Contains($"🔴 VastHostGpuLost: GPU 1 lost on {t02}\n    GPU 1\n", text, StringComparison.Ordinal);
        Assert.Contains($"🔴 VastHostVastMachineOffline: Vast sees machine {machine02} ({t02}) offline\n    Vast machine {machine02} (rig-02)\n", text, StringComparison.Ordinal);
        Assert.Contains($"🔴 VastHostGpuMissing: GPUs missing on {t02}", text, StringComparison.Ordinal);
        Assert.DoesNotContain("🟠", text, StringComparison.Ordinal);
        Assert.Contains($"Alertmanager: {_alertmanager.BaseUrl.ToString().TrimEnd('/')}", text, StringComparison.Ordinal);

        // Discord: critical and warning, not info.
        var discord = Assert.Single(receiver.Discord);
        Assert.Equal("/discord/webhooks/42/from-file", discord.Path);
        var embed = discord.Body["embeds"]![0]!;
        output.WriteLine($"Discord: {(string?)embed["title"]}\n{(string?)embed["description"]}");
        Assert.Equal($"🔥 5 firing on rig-02 ({t02})", (string?)embed["title"]);
        var description = (string)embed["description"]!;
        Assert.Contains($"🟠 VastHostGpuTemperatureHigh: GPU 0 on {t02} at 95 °C\n    GPU 0 (", description, StringComparison.Ordinal);
        Assert.Contains("🟠 VastHostFaultGuardHolding: ", description, StringComparison.Ordinal);
        Assert.Contains("🔴 VastHostVastMachineOffline: ", description, StringComparison.Ordinal);
        Assert.DoesNotContain("🔵", description, StringComparison.Ordinal);

        // ---- rig-03's agent stops: its target is down while the controller shows its machine listed.
        await rig03.StopAsync();
        string[] down =
        [
            $"VastHostAgentDown {t03}", $"VastHostRigAgentDown {t03} hostname=rig-03 machine_id={machine03}", $"VastHostFaultGuardCondition {tc} condition=agent_down hostname=rig-03 machine_id={machine03}",
        ];
        await WaitFiringAsync([.. steady, .. down], "rig-03 down, and the controller's guard condition for its machine");
        await Poll.UntilAsync(() => Task.FromResult(Counts(receiver)), c => c is (2, 2, 2), Deadline, "the messages that rig-03 is down");
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0}s: rig-03 notified");

        // Alertmanager holds all three; the agent-down and the controller's condition are muted by VastHostRigAgentDown
        // (as rig-02's guard condition is by rig-02's critical alerts).
        var mutedAgentDown = $"VastHostAgentDown {t03}";
        var mutedCondition = $"VastHostFaultGuardCondition {tc} condition=agent_down hostname=rig-03 machine_id={machine03}";
        var held = await Poll.UntilAsync(_alertmanager.AlertsAsync, a => a.Select(Describe).Contains(mutedCondition), Deadline, "the controller's condition in Alertmanager");
        var muted = held.Where(a => (string?)a!["status"]!["state"] == "suppressed").ToList();
        Assert.Equal(new[] { mutedAgentDown, mutedCondition, $"VastHostFaultGuardCondition {t02} condition=gpu_lost" }.Order(StringComparer.Ordinal),
            muted.Select(Describe).Order(StringComparer.Ordinal));
        var source = (await _alertmanager.AlertsAsync()).Single(a => (string?)a!["labels"]!["alertname"] == "VastHostRigAgentDown")!;
        Assert.All(muted.Where(m => Describe(m) is var d && (d == mutedAgentDown || d == mutedCondition)),
            m => Assert.Equal([(string?)source["fingerprint"]], m!["status"]!["inhibitedBy"]!.AsArray().Select(f => (string?)f)));

        var hook03 = receiver.Webhook[1];
        Assert.Equal(new JsonObject { ["instance"] = t03 }.ToJsonString(), hook03.Body["groupLabels"]!.ToJsonString());
        Assert.Equal([$"VastHostRigAgentDown {t03} hostname=rig-03 machine_id={machine03}"], hook03.Body["alerts"]!.AsArray().Select(Describe));
        var text03 = (string)receiver.Telegram[1].Body["text"]!;
        output.WriteLine("Telegram:\n" + text03);
        Assert.StartsWith($"🔥 1 firing on rig-03 ({t03})\n\n🔴 VastHostRigAgentDown: Rig agent on rig-03 ({t03}) down while its machine is listed\n    Vast machine {machine03} (rig-03)\n\nPrometheus has failed to scrape the rig agent on rig-03",
            text03, StringComparison.Ordinal);
        Assert.Equal($"🔥 1 firing on rig-03 ({t03})", (string?)receiver.Discord[1].Body["embeds"]![0]!["title"]);

        // ---- and nothing more: three group intervals after the last muted alert reached Alertmanager, every group has
        // flushed again, and no receiver got another message (no repeat, no muted alert, no second message for a group).
        var quiet = TimeSpan.FromSeconds(3 * 3 + 3);
        for (var watch = Stopwatch.StartNew(); watch.Elapsed < quiet; await Task.Delay(100))
        {
            Assert.True(receiver.Received.Count == 6,
                $"another message after {watch.Elapsed.TotalSeconds:0.0}s: {string.Join("\n", receiver.Received.Skip(6).Select(n => n.Path + " " + n.Body.ToJsonString()))}");
        }

        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0}s: quiet for {quiet.TotalSeconds:0}s");
    }

    private static (int Webhook, int Telegram, int Discord) Counts(NotificationReceiver r) => (r.Webhook.Count, r.Telegram.Count, r.Discord.Count);

    /// <summary>"alertname instance" and the labels that tell its alerts apart (gpu, machine_id, condition, hostname), sorted.</summary>
    private static string Describe(JsonNode? alert)
    {
        var labels = alert!["labels"]!.AsObject();
        var extra = labels.Where(l => l.Key is "gpu" or "machine_id" or "condition" or "hostname" && (string?)l.Value != "")
            .OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $" {l.Key}={(string?)l.Value}");
        return $"{(string?)labels["alertname"]} {(string?)labels["instance"]}{string.Concat(extra)}";
    }

    /// <summary>Waits until Prometheus fires exactly <paramref name="expected"/> (as <see cref="Describe"/> writes them).</summary>
    private async Task WaitFiringAsync(string[] expected, string what)
    {
        async Task<List<string>> FiringAsync() =>
            [.. (await _prometheus!.GetAsync("api/v1/alerts"))["alerts"]!.AsArray().Where(a => (string?)a!["state"] == "firing").Select(Describe).Order(StringComparer.Ordinal)];
        var want = expected.Order(StringComparer.Ordinal).ToList();
        try
        {
            await Poll.UntilAsync(FiringAsync, f => f.SequenceEqual(want), Deadline, what);
        }
        catch (TimeoutException)
        {
            var firing = await FiringAsync();
            Assert.Fail($"{what}: missing {string.Join(", ", want.Except(firing))}; unexpected {string.Join(", ", firing.Except(want))}");
        }
    }
}
