using System.Globalization;
using System.Text.Json.Nodes;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Packaging;

/// <summary>
/// NVIDIA's "DCGM Exporter Dashboard" (grafana.com 12239, <c>grafana/dcgm-exporter-dashboard.json</c> of
/// NVIDIA/dcgm-exporter) against a real Prometheus scraping agents with <c>metrics.dcgmCompatible</c>: every one of its
/// eight panel queries returns data in DCGM's units, with its variables as the dashboard's "All" sets them and with
/// concrete values; and the compatibility details its users' rules rely on (exact-equality on integer fields, XID
/// labels, <c>device</c>, the host-name label, no profiling series on a GPU without GPM) hold through PromQL.
/// </summary>
public sealed class DcgmDashboardEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    /// <summary>The dashboard's panels and their expressions, verbatim (variables <c>instance</c> and <c>gpu</c>).</summary>
    private static readonly (string Panel, string Expr)[] Panels =
    [
        ("GPU Temperature", "DCGM_FI_DEV_GPU_TEMP{instance=~\"$instance\", gpu=~\"$gpu\"}"),
        ("GPU Avg. Temp", "avg(DCGM_FI_DEV_GPU_TEMP{instance=~\"$instance\", gpu=~\"$gpu\"})"),
        ("GPU Power Usage", "DCGM_FI_DEV_POWER_USAGE{instance=~\"$instance\", gpu=~\"$gpu\"}"),
        ("GPU Power Total", "sum(DCGM_FI_DEV_POWER_USAGE{instance=~\"$instance\", gpu=~\"$gpu\"})"),
        ("GPU SM Clocks", "DCGM_FI_DEV_SM_CLOCK{instance=~\"$instance\", gpu=~\"$gpu\"} * 1000000"),
        ("GPU Utilization", "DCGM_FI_DEV_GPU_UTIL{instance=~\"$instance\", gpu=~\"$gpu\"}"),
        ("GPU Framebuffer Mem Used", "DCGM_FI_DEV_FB_USED{instance=~\"$instance\", gpu=~\"$gpu\"}"),
        ("Tensor Core Utilization", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{instance=~\"$instance\", gpu=~\"$gpu\"}"),
    ];

    private readonly List<IAsyncDisposable> _disposables = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var d in Enumerable.Reverse(_disposables))
        {
            await d.DisposeAsync();
        }
    }

    [Fact]
    public async Task Every_panel_of_NVIDIAs_dashboard_returns_data_in_DCGM_units()
    {
        // Rig A: an H100 with GPM (minor number 3) and two GPUs without GPM; released dcgm-exporter's Hostname label.
        var dirA = TestEnvironment.NewTempDirectory("dcgm-dash-a");
        var stateA = new FakeNvmlState(dirA, new Dictionary<string, string>
        {
            ["gpus"] = "3",
            ["gpu.0.name"] = "NVIDIA H100 80GB HBM3",
            ["gpu.0.minor"] = "3",
            ["gpu.1.minor"] = "0",
            ["gpu.2.minor"] = "1",
            ["gpu.0.util_gpu"] = "56",
            ["gpu.0.gpm"] = "1",
            ["gpu.0.gpm_tensor_util"] = "31",
        });
        var rigA = AgentProcess.Start(new AgentConfig { FakeNvmlState = stateA.Path, DcgmCompatible = true });
        _disposables.Add(rigA);
        // Rig B: one GPU, the newer dcgm-exporter's hostname label.
        var dirB = TestEnvironment.NewTempDirectory("dcgm-dash-b");
        var rigB = AgentProcess.Start(new AgentConfig
        {
            FakeNvmlState = new FakeNvmlState(dirB, new Dictionary<string, string> { ["gpus"] = "1" }).Path,
            DcgmCompatible = true,
            Environment = new() { ["VASTHOST_METRICS__DCGMHOSTNAMELABEL"] = "hostname" },
        });
        _disposables.Add(rigB);
        await rigA.ScrapeUntilAsync(e => e.Named("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE").Any(), "rig A's second GPM sample");
        await rigB.WaitReadyAsync();

        var (a, b) = ($"127.0.0.1:{rigA.Port}", $"127.0.0.1:{rigB.Port}");
        var promDir = TestEnvironment.NewTempDirectory("dcgm-prometheus");
        var prometheus = await PrometheusServer.StartAsync(promDir, $$"""
            global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
            scrape_configs:
              - job_name: dcgm
                static_configs:
                  - targets: ["{{a}}", "{{b}}"]
            """);
        _disposables.Add(prometheus);
        await Poll.UntilAsync(async () => (await prometheus.QueryAsync("count(DCGM_FI_PROF_PIPE_TENSOR_ACTIVE) == 1 and count(DCGM_FI_DEV_GPU_TEMP) == 4")).Count == 1,
            ok => ok, TimeSpan.FromSeconds(60), "both rigs scraped");

        // The dashboard's variables: instances and GPUs from label_values(DCGM_FI_DEV_GPU_TEMP, …).
        Assert.Equal(new[] { a, b }.Order(StringComparer.Ordinal), (await prometheus.QueryAsync("group by (instance) (DCGM_FI_DEV_GPU_TEMP)")).Select(r => Label(r, "instance")).Order(StringComparer.Ordinal));
        Assert.Equal(["0", "1", "2"], (await prometheus.QueryAsync($"group by (gpu) (DCGM_FI_DEV_GPU_TEMP{{instance=\"{a}\"}})")).Select(r => Label(r, "gpu")).Order(StringComparer.Ordinal));

        // Every panel with "All" (the dashboard's regex .*) and with one instance and GPU chosen.
        var results = new Dictionary<string, JsonArray>(StringComparer.Ordinal);
        foreach (var (panel, expr) in Panels)
        {
            foreach (var (instance, gpu) in new[] { (".*", ".*"), (a, "0") })
            {
                var query = expr.Replace("$instance", instance, StringComparison.Ordinal).Replace("$gpu", gpu, StringComparison.Ordinal);
                var result = await Poll.UntilAsync(() => prometheus.QueryAsync(query), r => r.Count > 0, TimeSpan.FromSeconds(30), $"{panel}: {query}");
                output.WriteLine($"{panel}: {query} -> {result.Count} series");
                if (instance == ".*")
                {
                    results[panel] = result;
                }
            }
        }

        // DCGM's units.
        var temps = Values(results["GPU Temperature"]);
        Assert.Equal([40.0, 40, 41, 42], temps.Order());                            // °C, GPUs 0–2 of A and 0 of B
        Assert.Equal(40.75, Values(results["GPU Avg. Temp"]).Single());
        Assert.Equal([150.0, 150, 151, 152], Values(results["GPU Power Usage"]).Order()); // W
        Assert.Equal(603, Values(results["GPU Power Total"]).Single());
        Assert.All(Values(results["GPU SM Clocks"]), hz => Assert.Equal(2520e6, hz)); // MHz × 1e6 = Hz
        Assert.Equal(56, Values(results["GPU Utilization"]).Max());               // %
        Assert.Equal([1024.0, 1024, 2048, 3072], Values(results["GPU Framebuffer Mem Used"]).Order()); // MiB
        var tensor = Assert.Single(results["Tensor Core Utilization"]);           // only the GPU with GPM
        Assert.Equal(0.31, Value(tensor));                                         // a ratio, 0–1
        Assert.Equal(("0", a), (Label(tensor, "gpu"), Label(tensor, "instance")));

        // Exact equality on an integer field (0.56 × 100 printed as 56.00000000000001 would not match).
        var exact = Assert.Single(await prometheus.QueryAsync("DCGM_FI_DEV_GPU_UTIL == 56"));
        Assert.Equal(("0", a), (Label(exact, "gpu"), Label(exact, "instance")));

        // No profiling series at all on a GPU without GPM (absent, not 0).
        Assert.Empty(await prometheus.QueryAsync($"{{__name__=~\"DCGM_FI_PROF_.*\", instance=\"{a}\", gpu=~\"1|2\"}}"));
        Assert.Empty(await prometheus.QueryAsync($"{{__name__=~\"DCGM_FI_PROF_.*\", instance=\"{b}\"}}"));

        // device is nvidia<gpu index>, not the minor number; the host-name label as each rig spells it.
        var devices = await prometheus.QueryAsync($"DCGM_FI_DEV_GPU_TEMP{{instance=\"{a}\"}}");
        Assert.All(devices, r => Assert.Equal("nvidia" + Label(r, "gpu"), Label(r, "device")));
        Assert.Equal(3, (await prometheus.QueryAsync($"DCGM_FI_DEV_GPU_TEMP{{instance=\"{a}\", Hostname=\"test-rig\", hostname=\"\"}}")).Count);
        Assert.Single(await prometheus.QueryAsync($"DCGM_FI_DEV_GPU_TEMP{{instance=\"{b}\", hostname=\"test-rig\", Hostname=\"\"}}"));

        // An XID: the last one's code and NVIDIA's text, as dcgm-exporter's users query it.
        Assert.Single(await prometheus.QueryAsync($"DCGM_FI_DEV_XID_ERRORS{{instance=\"{a}\", gpu=\"1\", err_code=\"0\", err_msg=\"No Error\"}} == 0"));
        stateA.InjectXid(1, 79);
        var xid = await Poll.UntilAsync(
            () => prometheus.QueryAsync($"DCGM_FI_DEV_XID_ERRORS{{instance=\"{a}\", device=\"nvidia1\", err_code=\"79\", err_msg=\"GPU has fallen off the bus\"}}"),
            r => r.Count == 1, TimeSpan.FromSeconds(30), "XID 79 in Prometheus");
        Assert.Equal(79, Value(xid[0]));
    }

    private static string Label(JsonNode? result, string name) => (string?)result!["metric"]![name] ?? "";

    private static double Value(JsonNode? result) => double.Parse((string)result!["value"]![1]!, CultureInfo.InvariantCulture);

    private static List<double> Values(JsonArray results) => [.. results.Select(Value)];
}
