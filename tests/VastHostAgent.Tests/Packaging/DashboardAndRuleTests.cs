using System.Text.Json.Nodes;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Packaging;

/// <summary>
/// The shipped Grafana dashboards type-check against @grafana/schema (npm, tsc --noEmit), and the alert rules
/// pass promtool's checks and unit tests. Whether the queries return data is PrometheusEndToEndTests' job.
/// </summary>
public sealed class DashboardAndRuleTests(ITestOutputHelper output)
{
    private static readonly string Packaging = Path.Combine(TestEnvironment.RepositoryRoot, "packaging");
    private static readonly string Check = Path.Combine(TestEnvironment.RepositoryRoot, "tests", "grafana-schema", "check.sh");
    private static readonly SemaphoreSlim NpmGate = new(1, 1);

    private static async Task<(int ExitCode, string Output)> CheckDashboardsAsync(string? directory = null)
    {
        // One check at a time: both runs share node_modules and the generated file.
        await NpmGate.WaitAsync();
        try
        {
            var env = new Dictionary<string, string?> { ["VASTHOST_DASHBOARDS_DIR"] = directory };
            var (exit, stdout, stderr) = await Tools.RunAsync("bash", [Check], env, TestEnvironment.RepositoryRoot, TimeSpan.FromMinutes(10));
            return (exit, stdout + stderr);
        }
        finally
        {
            NpmGate.Release();
        }
    }

    [Fact]
    public async Task Both_dashboards_type_check_against_grafana_schema_and_a_wrong_type_is_caught()
    {
        var (exit, text) = await CheckDashboardsAsync();
        output.WriteLine(text);
        Assert.True(exit == 0, text);
        Assert.Contains("every dashboard type-checks against @grafana/schema", text, StringComparison.Ordinal);
        Assert.Contains("from 2 dashboard(s)", text, StringComparison.Ordinal);

        // The same check on a copy with one wrong type (graphTooltip is a number) fails and names it.
        var broken = TestEnvironment.NewTempDirectory("dashboards");
        foreach (var file in Directory.GetFiles(Path.Combine(Packaging, "grafana", "dashboards"), "*.json"))
        {
            var json = JsonNode.Parse(await File.ReadAllTextAsync(file))!;
            if (Path.GetFileName(file) == "vast-host-rig.json")
            {
                json["graphTooltip"] = "shared";
            }

            await File.WriteAllTextAsync(Path.Combine(broken, Path.GetFileName(file)), json.ToJsonString());
        }

        var (badExit, badText) = await CheckDashboardsAsync(broken);
        Assert.NotEqual(0, badExit);
        Assert.Contains("error TS", badText, StringComparison.Ordinal);
        Assert.Contains("vast-host-rig.json /graphTooltip", badText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_dashboards_are_provisionable_with_a_datasource_and_a_host_variable()
    {
        foreach (var file in Directory.GetFiles(Path.Combine(Packaging, "grafana", "dashboards"), "*.json"))
        {
            var json = JsonNode.Parse(await File.ReadAllTextAsync(file))!;
            var variables = json["templating"]!["list"]!.AsArray().ToDictionary(v => (string)v!["name"]!, v => (string)v!["type"]!);
            Assert.Equal("datasource", variables["datasource"]);
            Assert.Equal("query", variables["host"]);
            Assert.Null(json["__inputs"]); // provisioned, not imported
            Assert.False(string.IsNullOrEmpty((string?)json["uid"]));
        }

        var provider = await File.ReadAllTextAsync(Path.Combine(Packaging, "grafana", "provisioning", "dashboards", "vast-host-agent.yml"));
        Assert.Contains("apiVersion: 1", provider, StringComparison.Ordinal);
        Assert.Contains("/var/lib/grafana/dashboards/vast-host-agent", provider, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(Packaging, "grafana", "provisioning", "datasources", "prometheus.example.yml")));
    }

    [Fact]
    public async Task The_alert_rules_pass_promtool_lint_and_their_unit_tests()
    {
        var dir = Path.Combine(Packaging, "prometheus");
        var check = await Tools.RunAsync("promtool", ["check", "rules", "--lint=all", "--lint-fatal", "vast-host-agent.rules.yml"], null, dir);
        Assert.True(check.ExitCode == 0, check.Stdout + check.Stderr);
        Assert.Contains("SUCCESS", check.Stdout, StringComparison.Ordinal);

        var test = await Tools.RunAsync("promtool", ["test", "rules", "vast-host-agent.rules.test.yml"], null, dir, TimeSpan.FromMinutes(5));
        output.WriteLine(test.Stdout + test.Stderr);
        Assert.True(test.ExitCode == 0, test.Stdout + test.Stderr);

        // Every alert has at least one unit test that expects it to fire.
        var rules = await File.ReadAllTextAsync(Path.Combine(dir, "vast-host-agent.rules.yml"));
        var tests = await File.ReadAllTextAsync(Path.Combine(dir, "vast-host-agent.rules.test.yml"));
        var alerts = System.Text.RegularExpressions.Regex.Matches(rules, @"- alert:\s*(\w+)").Select(m => m.Groups[1].Value).ToList();
        Assert.True(alerts.Count >= 12, $"{alerts.Count} alerts");
        foreach (var alert in alerts)
        {
            Assert.Matches($@"alertname: {alert}\s+exp_alerts:\s+- exp_labels:", tests);
        }
    }

    [Fact]
    public async Task The_example_scrape_configuration_is_valid_for_prometheus()
    {
        var dir = TestEnvironment.NewTempDirectory("scrape");
        var example = await File.ReadAllTextAsync(Path.Combine(Packaging, "prometheus", "scrape-config.example.yml"));
        Assert.Contains("job_name: vast-host-agent", example, StringComparison.Ordinal);
        // The example points at where the rules are installed; check it against the repository's copy.
        var config = example.Replace("/etc/prometheus/rules/", Path.Combine(Packaging, "prometheus") + "/", StringComparison.Ordinal);
        await File.WriteAllTextAsync(Path.Combine(dir, "prometheus.yml"), config);
        var (exit, stdout, stderr) = await Tools.RunAsync("promtool", "check", "config", Path.Combine(dir, "prometheus.yml"));
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("1 rule files found", stdout, StringComparison.Ordinal);
    }
}
