using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Packaging;

/// <summary>
/// packaging/alertmanager against the real Alertmanager and amtool (Debian's prometheus-alertmanager): the shipped
/// configuration loads with its secrets read from files, every alert of the shipped rules reaches the receivers its
/// severity names, the inhibit rules mute exactly what they promise, and the templates name the rig, the GPU, the Vast
/// machine and the Vast instance.
/// </summary>
public sealed partial class AlertmanagerConfigTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly string Folder = Path.Combine(TestEnvironment.RepositoryRoot, "packaging", "alertmanager");
    private readonly List<IAsyncDisposable> _disposables = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var d in Enumerable.Reverse(_disposables))
        {
            await d.DisposeAsync();
        }
    }

    /// <summary>Where a test's copy of the configuration sends notifications and how fast it groups.</summary>
    public sealed record Endpoints(string WebhookUrl, string TelegramApiUrl, string DiscordWebhookUrl, string TelegramToken);

    /// <summary>
    /// A copy of the shipped alertmanager.yml that Alertmanager can load here, written to <paramref name="dir"/>; returns
    /// (the copy with the secrets still in files, the file Alertmanager loads). The copy differs from the shipped file in
    /// exactly these fields, each of which must occur as shipped:
    /// <list type="bullet">
    /// <item><c>templates</c>: packaging/alertmanager/vast-host-agent.tmpl instead of /etc/prometheus/alertmanager_templates/;</item>
    /// <item><c>url_file</c>, <c>bot_token_file</c>, <c>webhook_url_file</c>: files in <paramref name="dir"/> instead of
    /// /etc/prometheus/alertmanager-secrets/, holding <paramref name="endpoints"/>'s webhook URL, bot token and Discord URL;</item>
    /// <item>the Telegram receiver's <c>api_url</c>: <paramref name="endpoints"/>' instead of https://api.telegram.org;</item>
    /// <item>the root route's <c>group_wait</c> and <c>group_interval</c> (30s and 5m), when given.</item>
    /// </list>
    /// The file Alertmanager loads is the copy after the shipped inline-secrets.sh (Debian 12's Alertmanager 0.25 reads no
    /// secret from a file: see the README).
    /// </summary>
    internal static async Task<(string Source, string Loaded)> PrepareAsync(string dir, Endpoints endpoints, string? groupWait = null, string? groupInterval = null)
    {
        var secrets = Path.Combine(dir, "secrets");
        Directory.CreateDirectory(secrets);
        await File.WriteAllTextAsync(Path.Combine(secrets, "webhook-url"), endpoints.WebhookUrl + "\n");
        await File.WriteAllTextAsync(Path.Combine(secrets, "telegram-bot-token"), endpoints.TelegramToken + "\n");
        await File.WriteAllTextAsync(Path.Combine(secrets, "discord-webhook-url"), endpoints.DiscordWebhookUrl + "\n");

        var text = await File.ReadAllTextAsync(Path.Combine(Folder, "alertmanager.yml"));
        text = ReplaceExactly(text, "/etc/prometheus/alertmanager_templates/vast-host-agent.tmpl", Path.Combine(Folder, "vast-host-agent.tmpl"), 1);
        text = ReplaceExactly(text, "/etc/prometheus/alertmanager-secrets/", secrets + "/", 3);
        text = ReplaceExactly(text, "api_url: https://api.telegram.org\n", $"api_url: {endpoints.TelegramApiUrl}\n", 1);
        if (groupWait is not null)
        {
            text = ReplaceExactly(text, "\n  group_wait: 30s\n", $"\n  group_wait: {groupWait}\n", 1);
        }

        if (groupInterval is not null)
        {
            text = ReplaceExactly(text, "\n  group_interval: 5m\n", $"\n  group_interval: {groupInterval}\n", 1);
        }

        var source = Path.Combine(dir, "alertmanager.source.yml");
        var loaded = Path.Combine(dir, "alertmanager.yml");
        await File.WriteAllTextAsync(source, text);
        var (exit, stdout, stderr) = await Tools.RunAsync(Path.Combine(Folder, "inline-secrets.sh"), source, loaded);
        Assert.True(exit == 0, $"inline-secrets.sh: {stdout}{stderr}");
        return (source, loaded);
    }

    private static string ReplaceExactly(string text, string from, string to, int count)
    {
        var found = Regex.Count(text, Regex.Escape(from));
        Assert.True(found == count, $"the shipped alertmanager.yml has '{from.Trim()}' {found} times, the test rewrites it {count} times: update the test");
        return text.Replace(from, to, StringComparison.Ordinal);
    }

    private static Endpoints Dummy => new("https://hooks.example.net/vast?token=abc&x=1", "https://api.telegram.org", "https://discord.com/api/webhooks/123/abc-DEF", "123456:ABC-def_ghi");

    private static async Task<string> AmtoolVersionAsync()
    {
        var (_, stdout, stderr) = await Tools.RunAsync("amtool", "--version");
        return VersionRegex().Match(stdout + stderr).Groups[1].Value;
    }

    [Fact]
    public async Task The_shipped_configuration_reads_every_secret_from_a_file_and_passes_amtool_check_config()
    {
        var shipped = await File.ReadAllTextAsync(Path.Combine(Folder, "alertmanager.yml"));
        // No secret in the file: the bot token and both URLs come from files.
        Assert.DoesNotMatch(@"(?m)^\s*(- )?(bot_token|webhook_url|url|api_key|password|token):", shipped);
        Assert.Equal(["bot_token_file", "url_file", "webhook_url_file"], SecretFileKey().Matches(shipped).Select(m => m.Groups[1].Value).Order(StringComparer.Ordinal));

        var dir = TestEnvironment.NewTempDirectory("am-check");
        var (source, loaded) = await PrepareAsync(dir, Dummy);
        var check = await Tools.RunAsync("amtool", "check-config", loaded);
        output.WriteLine(check.Stdout + check.Stderr);
        Assert.True(check.ExitCode == 0, check.Stdout + check.Stderr);
        Assert.Contains(" - 4 inhibit rules", check.Stdout, StringComparison.Ordinal);
        Assert.Contains(" - 3 receivers", check.Stdout, StringComparison.Ordinal);
        Assert.Contains(" - 1 templates", check.Stdout, StringComparison.Ordinal);

        // The copy with the secrets in files: Alertmanager 0.28 loads it as it is; older ones know no more than that these
        // three keys are unknown, and nothing else in the file is.
        var version = await AmtoolVersionAsync();
        var asShipped = await Tools.RunAsync("amtool", "check-config", source);
        output.WriteLine($"amtool {version} on the copy with *_file secrets: exit {asShipped.ExitCode}\n{asShipped.Stdout}{asShipped.Stderr}");
        if (Version.Parse(version) >= new Version(0, 28))
        {
            Assert.True(asShipped.ExitCode == 0, asShipped.Stdout + asShipped.Stderr);
        }
        else
        {
            Assert.NotEqual(0, asShipped.ExitCode);
            var unknown = UnknownField().Matches(asShipped.Stdout + asShipped.Stderr).Select(m => m.Groups[1].Value).ToList();
            Assert.NotEmpty(unknown);
            Assert.All(unknown, f => Assert.Contains(f, new[] { "bot_token_file", "url_file", "webhook_url_file" }));
            Assert.DoesNotMatch(@"line \d+: (?!field (bot_token_file|url_file|webhook_url_file) not found)", asShipped.Stdout + asShipped.Stderr);
        }

        // inline-secrets.sh put each file's content in place of its key, quoted, and nothing else changed.
        var loadedText = await File.ReadAllTextAsync(loaded);
        Assert.Contains("\n      - url: \"https://hooks.example.net/vast?token=abc&x=1\"\n", loadedText, StringComparison.Ordinal);
        Assert.Contains("\n      - bot_token: \"123456:ABC-def_ghi\"\n", loadedText, StringComparison.Ordinal);
        Assert.Contains("\n      - webhook_url: \"https://discord.com/api/webhooks/123/abc-DEF\"\n", loadedText, StringComparison.Ordinal);
        var sourceLines = (await File.ReadAllTextAsync(source)).Split('\n');
        var loadedLines = loadedText.Split('\n');
        Assert.Equal(sourceLines.Length, loadedLines.Length);
        Assert.Equal(3, sourceLines.Zip(loadedLines).Count(p => p.First != p.Second));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(loaded));
    }

    [Fact]
    public async Task Inline_secrets_refuses_a_missing_or_empty_secret_file_and_leaves_the_destination_alone()
    {
        var dir = TestEnvironment.NewTempDirectory("am-inline");
        var script = Path.Combine(Folder, "inline-secrets.sh");
        var dest = Path.Combine(dir, "alertmanager.yml");
        await File.WriteAllTextAsync(dest, "previous\n");
        var empty = Path.Combine(dir, "empty");
        await File.WriteAllTextAsync(empty, " \n\n");
        foreach (var (line, error) in new[]
                 {
                     ($"      - bot_token_file: {dir}/missing", "bot_token_file " + dir + "/missing: no such file"),
                     ($"      - webhook_url_file: '{empty}'  # quoted", "webhook_url_file " + empty + " is empty"),
                 })
        {
            var source = Path.Combine(dir, "source.yml");
            await File.WriteAllTextAsync(source, "receivers:\n  - name: x\n    telegram_configs:\n" + line + "\n");
            var (exit, stdout, stderr) = await Tools.RunAsync(script, source, dest);
            Assert.True(exit == 1, $"exit {exit}: {stdout}{stderr}");
            Assert.Contains(error, stderr, StringComparison.Ordinal);
            Assert.Equal("previous\n", await File.ReadAllTextAsync(dest));
        }

        Assert.Equal(["alertmanager.yml", "empty", "source.yml"], Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var usage = await Tools.RunAsync(script);
        Assert.Equal(2, usage.ExitCode);
        Assert.Contains("inline-secrets.sh SOURCE DEST", usage.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_alert_of_the_shipped_rules_reaches_the_receivers_of_its_severity_and_other_alerts_only_the_webhook()
    {
        var dir = TestEnvironment.NewTempDirectory("am-routes");
        var (_, loaded) = await PrepareAsync(dir, Dummy);
        var rules = await File.ReadAllTextAsync(Path.Combine(TestEnvironment.RepositoryRoot, "packaging", "prometheus", "vast-host-agent.rules.yml"));
        var alerts = AlertSeverity().Matches(rules).Select(m => (Name: m.Groups[1].Value, Severity: m.Groups[2].Value)).ToList();
        Assert.Equal(31, alerts.Count);
        var expected = new Dictionary<string, string>
        {
            ["critical"] = "webhook,telegram,discord",
            ["warning"] = "webhook,discord",
            ["info"] = "webhook",
        };
        foreach (var (name, severity) in alerts.Append(("NodeDown", "critical")).Append(("SomethingElse", "warning")))
        {
            Assert.True(expected.ContainsKey(severity), $"{name}: severity {severity} has no route");
            var want = name.StartsWith("VastHost", StringComparison.Ordinal) ? expected[severity] : "webhook";
            // A standalone agent or a fleet's rig, and a fleet controller (its target labelled role="controller").
            foreach (var extra in new[] { "rig=rig-02", "role=controller" })
            {
                var (exit, stdout, stderr) = await Tools.RunAsync("amtool",
                    "config", "routes", "test", "--config.file=" + loaded, "--verify.receivers=" + want, "alertname=" + name, "severity=" + severity, "instance=10.0.0.2:9470", extra);
                Assert.True(exit == 0, $"{name} ({severity}, {extra}): expected {want}, amtool says {stdout.Trim()} {stderr.Trim()}");
            }
        }

        output.WriteLine($"{alerts.Count} alerts routed: {alerts.Count(a => a.Severity == "critical")} critical, {alerts.Count(a => a.Severity == "warning")} warning, {alerts.Count(a => a.Severity == "info")} info");
    }

    [Fact]
    public async Task The_inhibit_rules_mute_a_down_rigs_other_alerts_and_the_guards_condition_under_a_critical_alert_and_nothing_else()
    {
        var dir = TestEnvironment.NewTempDirectory("am-inhibit");
        var (_, loaded) = await PrepareAsync(dir, Dummy);
        var am = await AlertmanagerServer.StartAsync(dir, loaded);
        _disposables.Add(am);

        // (alert, muted?)
        var cases = new (JsonObject Alert, bool Muted)[]
        {
            // A standalone rig's agent down: its other alerts muted, another rig's not.
            (Alert("VastHostAgentDown", "critical", "rig-a:9470"), false),
            (Alert("VastHostGpuLost", "critical", "rig-a:9470"), true),
            (Alert("VastHostMachineUnlisted", "warning", "rig-a:9470"), true),
            (Alert("VastHostGpuLost", "critical", "rig-b:9470"), false),
            // Alerts from other rule files are not this file's business.
            (Alert("NodeFilesystemAlmostFull", "warning", "rig-a:9470"), false),
            // A fleet's rig agent down while its machine is listed: VastHostAgentDown for the same target muted, and the
            // controller's alerts about that machine (by host name); the controller's alerts about another machine not.
            (Alert("VastHostRigAgentDown", "critical", "rig-c:9470", "rig-c"), false),
            (Alert("VastHostAgentDown", "critical", "rig-c:9470"), true),
            (Alert("VastHostFaultGuardCondition", "info", "controller:9470", "rig-c"), true),
            (Alert("VastHostFaultGuardHolding", "warning", "controller:9470", "rig-c"), true),
            (Alert("VastHostFaultGuardHolding", "warning", "controller:9470", "rig-d"), false),
            // The guard's condition under a critical alert of the same rig muted; under a warning not.
            (Alert("VastHostDockerDown", "critical", "rig-e:9470"), false),
            (Alert("VastHostFaultGuardCondition", "info", "rig-e:9470"), true),
            (Alert("VastHostDockerDiskLow", "warning", "rig-f:9470"), false),
            (Alert("VastHostFaultGuardCondition", "info", "rig-f:9470"), false),
        };
        await am.PostAlertsAsync([.. cases.Select(c => (JsonNode)c.Alert.DeepClone())]);

        var want = cases.Where(c => c.Muted).Select(c => Key(c.Alert["labels"]!)).Order(StringComparer.Ordinal).ToList();
        var state = await Poll.UntilAsync(am.AlertsAsync, a => a.Count == cases.Length, TimeSpan.FromSeconds(30), "every alert in Alertmanager");
        var muted = state.Where(a => (string?)a!["status"]!["state"] == "suppressed").Select(a => Key(a!["labels"]!)).Order(StringComparer.Ordinal).ToList();
        output.WriteLine("muted: " + string.Join("; ", muted));
        Assert.Equal(want, muted);
        Assert.All(state.Where(a => (string?)a!["status"]!["state"] == "suppressed"), a => Assert.NotEmpty(a!["status"]!["inhibitedBy"]!.AsArray()));
        Assert.All(state, a => Assert.Empty(a!["status"]!["silencedBy"]!.AsArray()));
    }

    private static JsonObject Alert(string name, string severity, string instance, string? hostname = null, string? role = null)
    {
        var labels = new JsonObject { ["alertname"] = name, ["severity"] = severity, ["instance"] = instance, ["job"] = "vast-host-agent" };
        if (hostname is not null)
        {
            labels["hostname"] = hostname;
            labels["machine_id"] = "4" + hostname.Length;
        }

        if (role is not null)
        {
            labels["role"] = role;
        }

        return new JsonObject { ["labels"] = labels, ["annotations"] = new JsonObject { ["summary"] = name } };
    }

    private static string Key(JsonNode labels) => $"{(string?)labels["alertname"]} {(string?)labels["instance"]} {(string?)labels["hostname"]}".Trim();

    [Fact]
    public async Task Alerts_are_grouped_per_rig_and_a_labelled_fleet_controllers_per_machine()
    {
        var dir = TestEnvironment.NewTempDirectory("am-groups");
        var (_, loaded) = await PrepareAsync(dir, Dummy);
        var am = await AlertmanagerServer.StartAsync(dir, loaded);
        _disposables.Add(am);

        // Each inner list is one group.
        string[][] groups =
        [
            // A standalone rig: its GPU alerts (no host name) and its Vast alerts (with one) together.
            ["VastHostGpuLost rig-a:9470", "VastHostVastMachineOffline rig-a:9470 rig-a", "VastHostDockerDiskLow rig-a:9470"],
            ["VastHostGpuTemperatureHigh rig-b:9470"],
            // A fleet's rig agent down: with its target.
            ["VastHostRigAgentDown rig-c:9470 rig-c"],
            // A controller labelled role="controller": one group per machine, one for its own alerts.
            ["VastHostMachineUnlisted controller:9470 rig-d", "VastHostVastMachineOffline controller:9470 rig-d"],
            ["VastHostListingEndingSoon controller:9470 rig-e"],
            ["VastHostFleetRigHealthUnknown controller:9470"],
            // A controller without the label: one group.
            ["VastHostMachineUnlisted controller-2:9470 rig-f", "VastHostMachineUnlisted controller-2:9470 rig-g", "VastHostVastApiDown controller-2:9470"],
            // Not from these rules: the default route's grouping by name and target.
            ["NodeFilesystemAlmostFull rig-a:9470"],
        ];
        JsonObject Parse(string key)
        {
            var p = key.Split(' ');
            return Alert(p[0], p[0] is "VastHostGpuLost" or "VastHostVastMachineOffline" ? "critical" : "warning", p[1], p.Length > 2 ? p[2] : null,
                p[1] == "controller:9470" ? "controller" : null);
        }

        await am.PostAlertsAsync([.. groups.SelectMany(g => g).Select(k => (JsonNode)Parse(k))]);
        var found = await Poll.UntilAsync(am.GroupsAsync,
            g => g.Where(x => (string?)x!["receiver"]!["name"] == "webhook").Sum(x => x!["alerts"]!.AsArray().Count) == groups.Sum(g => g.Length),
            TimeSpan.FromSeconds(30), "every alert in a group");
        var webhookGroups = found.Where(x => (string?)x!["receiver"]!["name"] == "webhook")
            .Select(x => string.Join(" | ", x!["alerts"]!.AsArray().Select(a => Key(a!["labels"]!)).Order(StringComparer.Ordinal)))
            .Order(StringComparer.Ordinal).ToList();
        output.WriteLine(string.Join('\n', webhookGroups));
        Assert.Equal(groups.Select(g => string.Join(" | ", g.Order(StringComparer.Ordinal))).Order(StringComparer.Ordinal), webhookGroups);
    }

    [Fact]
    public async Task The_templates_name_the_rig_the_GPU_the_Vast_machine_and_the_Vast_instance()
    {
        var dir = TestEnvironment.NewTempDirectory("am-template");
        var data = Path.Combine(dir, "data.json");
        await File.WriteAllTextAsync(data, """
            {
              "receiver": "telegram", "status": "firing", "externalURL": "http://alertmanager.example.net:9093",
              "groupLabels": { "instance": "10.0.0.2:9470" },
              "commonLabels": { "instance": "10.0.0.2:9470", "job": "vast-host-agent" },
              "commonAnnotations": {},
              "alerts": [
                { "status": "firing", "labels": { "alertname": "VastHostGpuLost", "severity": "critical", "instance": "10.0.0.2:9470", "gpu": "1", "uuid": "GPU-1111" },
                  "annotations": { "summary": "GPU 1 lost on 10.0.0.2:9470", "description": "lost" } },
                { "status": "firing", "labels": { "alertname": "VastHostVastMachineOffline", "severity": "critical", "instance": "10.0.0.2:9470", "rig": "rig-02", "machine_id": "48212", "hostname": "rig-02" },
                  "annotations": { "summary": "Vast sees machine 48212 (10.0.0.2:9470) offline", "description": "offline" } },
                { "status": "firing", "labels": { "alertname": "RenterContainerOom", "severity": "warning", "instance": "10.0.0.2:9470", "rig": "rig-02", "gpu": "0", "uuid": "GPU-0000", "instance_id": "51001", "container": "C.51001" },
                  "annotations": { "summary": "OOM in a renter's container", "description": "oom" } },
                { "status": "resolved", "labels": { "alertname": "VastHostGpuXid", "severity": "warning", "instance": "10.0.0.2:9470", "rig": "rig-02", "pci_address": "0000:c1:00.0", "uuid": "" },
                  "annotations": { "summary": "XID 94 on GPU at PCI 0000:c1:00.0 of 10.0.0.2:9470", "description": "xid" } }
              ]
            }
            """);
        async Task<string> RenderAsync(string template, string dataFile)
        {
            var (exit, stdout, stderr) = await Tools.RunAsync("amtool", "template", "render", "--template.glob=" + Path.Combine(Folder, "vast-host-agent.tmpl"),
                "--template.data=" + dataFile, "--template.text={{ template \"" + template + "\" . }}");
            Assert.True(exit == 0, stdout + stderr);
            return stdout;
        }

        var telegram = await RenderAsync("vasthost.telegram.message", data);
        output.WriteLine(telegram);
        Assert.Equal(
            """
            🔥 3 firing, 1 resolved on rig-02 (10.0.0.2:9470)

            🔴 VastHostGpuLost: GPU 1 lost on 10.0.0.2:9470
                GPU 1 (GPU-1111)
            🔴 VastHostVastMachineOffline: Vast sees machine 48212 (10.0.0.2:9470) offline
                Vast machine 48212 (rig-02)
            🟠 RenterContainerOom: OOM in a renter's container
                GPU 0 (GPU-0000) · Vast instance 51001 · container C.51001
            Resolved:
            ✅ VastHostGpuXid: XID 94 on GPU at PCI 0000:c1:00.0 of 10.0.0.2:9470
                PCI 0000:c1:00.0

            Alertmanager: http://alertmanager.example.net:9093
            """, telegram.TrimEnd('\n'));
        Assert.Equal("🔥 3 firing, 1 resolved on rig-02 (10.0.0.2:9470)", (await RenderAsync("vasthost.discord.title", data)).TrimEnd('\n'));
        var discord = await RenderAsync("vasthost.discord.message", data);
        Assert.StartsWith("🔴 VastHostGpuLost: GPU 1 lost on 10.0.0.2:9470\n", discord, StringComparison.Ordinal);
        Assert.EndsWith("\n[Alertmanager](http://alertmanager.example.net:9093)", discord.TrimEnd('\n'), StringComparison.Ordinal);

        // A fleet controller's group for one machine: named by its host name; a lone firing alert comes with what to do.
        var fleet = Path.Combine(dir, "fleet.json");
        await File.WriteAllTextAsync(fleet, """
            {
              "receiver": "telegram", "status": "firing", "externalURL": "http://am:9093",
              "groupLabels": { "instance": "10.0.0.9:9470", "hostname": "rig-101" },
              "commonLabels": { "instance": "10.0.0.9:9470", "hostname": "rig-101", "machine_id": "48213", "alertname": "VastHostMachineUnlisted", "severity": "warning", "role": "controller" },
              "commonAnnotations": {},
              "alerts": [
                { "status": "firing", "labels": { "alertname": "VastHostMachineUnlisted", "severity": "warning", "instance": "10.0.0.9:9470", "hostname": "rig-101", "machine_id": "48213", "role": "controller" },
                  "annotations": { "summary": "Machine 48213 (10.0.0.9:9470) is not listed on Vast", "description": "List it again." } }
              ]
            }
            """);
        Assert.Equal(
            """
            🔥 1 firing on rig-101 (10.0.0.9:9470)

            🟠 VastHostMachineUnlisted: Machine 48213 (10.0.0.9:9470) is not listed on Vast
                Vast machine 48213 (rig-101)

            List it again.

            Alertmanager: http://am:9093
            """, (await RenderAsync("vasthost.telegram.message", fleet)).TrimEnd('\n'));

        // Everything resolved, no rig label: named by the target.
        var resolved = Path.Combine(dir, "resolved.json");
        await File.WriteAllTextAsync(resolved, """
            {
              "receiver": "discord", "status": "resolved", "externalURL": "http://am:9093",
              "groupLabels": { "instance": "10.0.0.3:9470" }, "commonLabels": { "instance": "10.0.0.3:9470" }, "commonAnnotations": {},
              "alerts": [
                { "status": "resolved", "labels": { "alertname": "VastHostDockerDown", "severity": "critical", "instance": "10.0.0.3:9470" },
                  "annotations": { "summary": "Docker unreachable on 10.0.0.3:9470", "description": "d" } }
              ]
            }
            """);
        Assert.Equal("✅ resolved on 10.0.0.3:9470", (await RenderAsync("vasthost.discord.title", resolved)).TrimEnd('\n'));
    }

    [GeneratedRegex(@"(?m)^\s*(?:- )?(\w+_file):")]
    private static partial Regex SecretFileKey();

    [GeneratedRegex(@"field (\w+) not found")]
    private static partial Regex UnknownField();

    [GeneratedRegex(@"version (\d+\.\d+)")]
    private static partial Regex VersionRegex();

    [GeneratedRegex(@"- alert: (\w+)[\s\S]*?severity: (\w+)")]
    private static partial Regex AlertSeverity();
}
