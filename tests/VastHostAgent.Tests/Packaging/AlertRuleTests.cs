using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Packaging;

/// <summary>
/// The alert rules pass promtool's checks and unit tests, and the example scrape configuration is valid.
/// Whether the alerts fire on real scrapes is PrometheusEndToEndTests' job.
/// </summary>
public sealed class AlertRuleTests(ITestOutputHelper output)
{
    private static readonly string Packaging = Path.Combine(TestEnvironment.RepositoryRoot, "packaging");

    /// <summary>The unit test files: the tests that simulate a week are evaluated hourly in their own file.</summary>
    private static readonly string[] UnitTestFiles = ["vast-host-agent.rules.test.yml", "vast-host-agent.rules.week.test.yml"];

    [Fact]
    public async Task The_alert_rules_pass_promtool_lint_and_their_unit_tests()
    {
        var dir = Path.Combine(Packaging, "prometheus");
        var check = await Tools.RunAsync("promtool", ["check", "rules", "--lint=all", "--lint-fatal", "vast-host-agent.rules.yml"], null, dir);
        Assert.True(check.ExitCode == 0, check.Stdout + check.Stderr);
        Assert.Contains("SUCCESS", check.Stdout, StringComparison.Ordinal);

        var test = await Tools.RunAsync("promtool", ["test", "rules", .. UnitTestFiles], null, dir, TimeSpan.FromMinutes(5));
        output.WriteLine(test.Stdout + test.Stderr);
        Assert.True(test.ExitCode == 0, test.Stdout + test.Stderr);
        Assert.All(UnitTestFiles, f => Assert.Contains($"Unit Testing:  {f}\n  SUCCESS", test.Stdout, StringComparison.Ordinal));

        // Every alert has at least one unit test that expects it to fire.
        var rules = await File.ReadAllTextAsync(Path.Combine(dir, "vast-host-agent.rules.yml"));
        var tests = string.Concat(await Task.WhenAll(UnitTestFiles.Select(f => File.ReadAllTextAsync(Path.Combine(dir, f)))));
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
