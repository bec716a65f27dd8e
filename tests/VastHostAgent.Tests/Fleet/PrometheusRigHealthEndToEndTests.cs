using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using VastHostAgent.Fleet;
using VastHostAgent.Kernel;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Fleet;

/// <summary>
/// The controller's rig health with real parts: two real agents (fake NVML, different host names and machine ids)
/// scraped every second by a real Prometheus, read through its HTTP API by the source the controller uses.
/// </summary>
public sealed class PrometheusRigHealthEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);
    private readonly List<IAsyncDisposable> _disposables = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var d in Enumerable.Reverse(_disposables))
        {
            await d.DisposeAsync();
        }
    }

    private async Task<(AgentProcess Agent, FakeNvmlState Nvml)> StartRigAsync(string hostname, long machineId)
    {
        var nvml = new FakeNvmlState(TestEnvironment.NewTempDirectory("fleet-" + hostname), new Dictionary<string, string> { ["gpus"] = "2" });
        var agent = AgentProcess.Start(new AgentConfig
        {
            FakeNvmlState = nvml.Path,
            Environment =
            {
                ["VASTHOST_AGENT__HOSTNAME"] = hostname,
                ["VASTHOST_AGENT__MACHINEID"] = machineId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            },
        });
        _disposables.Add(agent);
        await agent.WaitReadyAsync();
        return (agent, nvml);
    }

    private static PrometheusRigHealthSource Source(HttpClient http, PrometheusServer prometheus, string machineLabel) =>
        new(http,
            Options.Create(new FleetOptions
            {
                Prometheus = new PrometheusOptions
                {
                    Url = prometheus.BaseUrl.ToString(),
                    Timeout = TimeSpan.FromSeconds(5),
                    MaxAge = TimeSpan.FromSeconds(30),
                    MachineLabel = machineLabel,
                    Selector = "job=\"vast-host-agent\"",
                },
            }),
            TimeProvider.System,
            new FakeLogger<PrometheusRigHealthSource>());

    private static string Describe(RigHealthReport r) =>
        $"up={r.Up} problem={r.Problem} " + string.Join("; ", r.ByKey.Select(kv =>
            $"{kv.Key}: known={kv.Value.Known} problem={kv.Value.Problem} agentDown={kv.Value.AgentDown} nvmlDown={kv.Value.NvmlDown} lost=[{string.Join(",", kv.Value.LostGpus)}] xids=[{string.Join(",", kv.Value.Xids)}] disk={kv.Value.Disk}"));

    private static async Task<RigHealthReport> ReadUntilAsync(PrometheusRigHealthSource source, Func<RigHealthReport, bool> done, string what)
    {
        var report = await Poll.UntilAsync(() => source.ReadAsync(CancellationToken.None), done, Deadline, what);
        return report;
    }

    [Fact]
    public async Task A_lost_GPU_a_dead_agent_and_a_stopped_Prometheus_each_show_where_they_are()
    {
        var (rigA, nvmlA) = await StartRigAsync("rig-a", 101);
        var (rigB, _) = await StartRigAsync("rig-b", 102);
        nvmlA.Set("gpu.1.lost", "1");
        nvmlA.InjectXid(0, 79);
        await rigA.ScrapeUntilAsync(e => e.Value("vasthost_gpu_up", ("gpu", "1")) == 0 && e.Named("vasthost_gpu_xid_last_timestamp_seconds").Any(), "rig-a's lost GPU and XID");

        var prometheus = await PrometheusServer.StartAsync(TestEnvironment.NewTempDirectory("fleet-prometheus"), $$"""
            global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
            scrape_configs:
              - job_name: vast-host-agent
                static_configs:
                  - targets: ["127.0.0.1:{{rigA.Port}}", "127.0.0.1:{{rigB.Port}}"]
            """);
        var prometheusStopped = false;
        _disposables.Add(new Stop(async () =>
        {
            if (!prometheusStopped)
            {
                await prometheus.DisposeAsync();
            }
        }));
        using var http = new HttpClient();
        var byHost = Source(http, prometheus, "hostname");
        var byId = Source(http, prometheus, "machine_id");

        // ---- both rigs scraped: the lost GPU and the XID on rig-a only; rig-b healthy.
        var report = await ReadUntilAsync(byHost, r => r.Up && r.For(0, "rig-a").LostGpus.Count > 0 && r.For(0, "rig-a").Xids.Count > 0 && r.For(0, "rig-b").Known,
            "both rigs in Prometheus with rig-a's lost GPU");
        output.WriteLine(Describe(report));
        Assert.Equal(["rig-a", "rig-b"], report.ByKey.Keys.Order(StringComparer.Ordinal));
        var a = report.For(0, "rig-a");
        Assert.True(a.Known, a.Problem);
        Assert.Equal(["GPU 1 lost"], a.LostGpus);
        var xid = Assert.Single(a.Xids);
        Assert.Equal((79UL, 0), (xid.Xid, xid.GpuIndex));
        Assert.InRange(xid.LastSeen, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.Null(a.AgentDown);
        Assert.Null(a.NvmlDown);
        var b = report.For(0, "rig-b");
        Assert.True(b.Known, b.Problem);
        Assert.Empty(b.LostGpus);
        Assert.Empty(b.Xids);
        Assert.Null(b.AgentDown);
        Assert.Null(b.NvmlDown);
        Assert.Null(b.DockerDown); // Docker is not watched by these agents: no series, no fault
        Assert.NotNull(b.Disk);
        Assert.InRange(b.Disk.AvailableBytes, 1UL, b.Disk.TotalBytes);

        var ids = await byId.ReadAsync(CancellationToken.None);
        Assert.True(ids.Up, ids.Problem);
        Assert.Equal(["101", "102"], ids.ByKey.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["GPU 1 lost"], ids.For(101, null).LostGpus);
        Assert.Empty(ids.For(102, null).LostGpus);

        // ---- rig-b's agent dies: Prometheus keeps its up (0) while its rig info goes stale; the mapping holds.
        await rigB.KillAsync();
        report = await ReadUntilAsync(byHost, r => r.Up && r.For(0, "rig-b").AgentDown is not null, "rig-b's agent down");
        output.WriteLine(Describe(report));
        Assert.True(report.For(0, "rig-b").Known);
        Assert.Contains($"127.0.0.1:{rigB.Port}", report.For(0, "rig-b").AgentDown, StringComparison.Ordinal);
        Assert.Null(report.For(0, "rig-a").AgentDown);
        Assert.Equal(["GPU 1 lost"], report.For(0, "rig-a").LostGpus);
        Assert.NotNull((await byId.ReadAsync(CancellationToken.None)).For(102, null).AgentDown);

        // ---- Prometheus stops: nothing can be said about any rig.
        await prometheus.DisposeAsync();
        prometheusStopped = true;
        report = await byHost.ReadAsync(CancellationToken.None);
        output.WriteLine(Describe(report));
        Assert.False(report.Up);
        Assert.Contains("unreachable", report.Problem, StringComparison.Ordinal);
        Assert.False(report.For(0, "rig-a").Known);
        Assert.False(report.For(0, "rig-b").Known);
    }

    private sealed class Stop(Func<Task> stop) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await stop();
    }
}
