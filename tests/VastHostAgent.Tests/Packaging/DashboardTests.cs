using System.Text.Json.Nodes;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Packaging;

/// <summary>
/// The shipped Grafana dashboards type-check against @grafana/schema (npm, tsc --noEmit) and are provisionable.
/// Whether their queries return data is PrometheusEndToEndTests' job.
/// </summary>
public sealed class DashboardTests(ITestOutputHelper output)
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
    public async Task Every_dashboard_type_checks_against_grafana_schema_and_a_wrong_type_is_caught()
    {
        var (exit, text) = await CheckDashboardsAsync();
        output.WriteLine(text);
        Assert.True(exit == 0, text);
        Assert.Contains("every dashboard type-checks against @grafana/schema", text, StringComparison.Ordinal);
        Assert.Contains("from 3 dashboard(s)", text, StringComparison.Ordinal);

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
    public async Task No_two_panels_overlap_and_panel_ids_are_unique()
    {
        // Grafana pushes overlapping panels about on load and links panels by id: sections added in parallel collide here.
        foreach (var file in Directory.GetFiles(Path.Combine(Packaging, "grafana", "dashboards"), "*.json"))
        {
            var panels = JsonNode.Parse(await File.ReadAllTextAsync(file))!["panels"]!.AsArray()
                .Select(p => (Id: (int)p!["id"]!, Title: (string?)p["title"], X: (int)p["gridPos"]!["x"]!, Y: (int)p["gridPos"]!["y"]!, W: (int)p["gridPos"]!["w"]!, H: (int)p["gridPos"]!["h"]!))
                .ToList();
            var name = Path.GetFileName(file);
            Assert.True(panels.Select(p => p.Id).Distinct().Count() == panels.Count, $"{name}: duplicate panel ids");
            var overlaps = panels.SelectMany((a, i) => panels.Skip(i + 1).Where(b => a.X < b.X + b.W && b.X < a.X + a.W && a.Y < b.Y + b.H && b.Y < a.Y + a.H).Select(b => $"{a.Title} / {b.Title}")).ToList();
            Assert.True(overlaps.Count == 0, $"{name}: overlapping panels: {string.Join("; ", overlaps)}");
            Assert.All(panels, p => Assert.True(p.X >= 0 && p.X + p.W <= 24, $"{name}: {p.Title} is outside the 24-column grid"));
        }
    }
}
