using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using VastEmulator;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Packaging;

/// <summary>
/// The shipped dashboards and alert rules against a real Prometheus server scraping real agents (fake NVML,
/// a private dockerd with Vast instance containers, the Vast emulator): a healthy rig, a rig with every
/// hardware fault, rigs with NVML, the Vast API or the machine's identity missing, and a dead target.
/// Every panel query returns data; every alert fires exactly where the fault is (the rules are loaded as
/// shipped, with <c>for:</c> set to 0 so a test need not wait minutes).
/// </summary>
[Collection(DockerGroup.Name)]
public sealed partial class PrometheusEndToEndTests(DockerFixture docker, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly string Packaging = Path.Combine(TestEnvironment.RepositoryRoot, "packaging");
    private readonly List<string> _mounts = [];
    private readonly List<IAsyncDisposable> _disposables = [];
    private readonly List<string> _containers = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var d in Enumerable.Reverse(_disposables))
        {
            await d.DisposeAsync();
        }

        foreach (var c in _containers)
        {
            await docker.Daemon.TryDockerAsync("rm", "-f", c);
        }

        foreach (var m in _mounts)
        {
            await Tools.RunAsync("umount", "-l", m);
        }
    }

    /// <summary>A small tmpfs as Docker's data root, filled to <paramref name="usedRatio"/>: a disk-space reading nobody else influences.</summary>
    private async Task<string> TmpfsAsync(double usedRatio)
    {
        var dir = TestEnvironment.NewTempDirectory("tmpfs");
        var mount = await Tools.RunAsync("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir);
        Assert.True(mount.ExitCode == 0, "mount tmpfs (the tests run as root): " + mount.Stderr);
        _mounts.Add(dir);
        if (usedRatio > 0)
        {
            await File.WriteAllBytesAsync(Path.Combine(dir, "fill"), new byte[(int)(4 * 1024 * 1024 * usedRatio)]);
        }

        return dir;
    }

    private async Task<AgentProcess> StartAsync(AgentConfig config)
    {
        var agent = AgentProcess.Start(config);
        _disposables.Add(agent);
        await agent.ScrapeUntilAsync(e => e.Named("vasthost_build_info").Any(), "agent serving");
        return agent;
    }

    /// <summary>A standalone agent's Vast settings (fast polling, the emulator's pacing); with <paramref name="management"/>, listing management in dry-run and the fault guard without a hold.</summary>
    internal static Dictionary<string, string?> Vast(RunningEmulator emulator, string dir, string hostname, bool management, string? baseUrl = null)
    {
        var keyFile = Path.Combine(dir, "vast.key");
        File.WriteAllText(keyFile, emulator.ApiKey);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var env = new Dictionary<string, string?>
        {
            ["VASTHOST_VAST__ENABLED"] = "true",
            ["VASTHOST_VAST__BASEURL"] = baseUrl ?? emulator.BaseUrl.GetLeftPart(UriPartial.Authority),
            ["VASTHOST_VAST__APIKEYFILE"] = keyFile,
            ["VASTHOST_VAST__HOSTNAME"] = hostname,
            ["VASTHOST_VAST__POLLINTERVAL"] = "00:00:10",
            ["VASTHOST_VAST__SPACINGSCALE"] = "0.02",
            ["VASTHOST_VAST__DEFAULTSPACINGSECONDS"] = "1",
            ["VASTHOST_VAST__REQUESTTIMEOUT"] = "00:00:02",
            ["VASTHOST_VAST__READRETRIES"] = "0",
            ["VASTHOST_VAST__CIRCUITBREAKERFAILURES"] = "2",
            ["VASTHOST_VAST__CIRCUITBREAKDURATION"] = "00:05:00",
        };
        if (management)
        {
            env["VASTHOST_MANAGEMENT__ENABLED"] = "true";
            env["VASTHOST_MANAGEMENT__DRYRUN"] = "true";
            env["VASTHOST_MANAGEMENT__RECONCILEINTERVAL"] = "00:01:00";
            env["VASTHOST_FAULTGUARD__ENABLED"] = "true";
            env["VASTHOST_FAULTGUARD__HOLDFOR"] = "00:00:00";
        }

        return env;
    }

    [Fact]
    public async Task Every_panel_query_returns_data_and_every_alert_fires_exactly_on_the_faulty_rigs()
    {
        // ---- the Vast side: rig-01 listed (with rentals), rig-02 listed with its offer ending tomorrow,
        // rig-03 unlisted and offline; rig-99 exists nowhere.
        var emulator = await EmulatorApp.StartAsync(new EmulatorOptions { RateLimitScale = 0.02, OfferCount = 300, SeedRentals = true, MachineHostnames = ["rig-01"] });
        _disposables.Add(emulator);
        var rig02 = emulator.State.AddMachine("rig-02", numGpus: 4);
        var rig03 = emulator.State.AddMachine("rig-03", numGpus: 2);
        emulator.State.SetOnline(rig03, false);
        var rig04 = emulator.State.AddMachine("rig-04", numGpus: 1);
        emulator.State.SetRateLimits(false); // the setup's two back-to-back create_asks are not what is tested
        using (var http = new HttpClient())
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", emulator.ApiKey);
            foreach (var (machine, seconds) in new[] { (rig02, 86400), (rig04, 5) })
            {
                var body = $$"""{"machine": {{machine}}, "price_gpu": 0.30, "min_chunk": 1, "end_date": {{(long)emulator.State.Now + seconds}}}""";
                using var listed = await http.PutAsync(new Uri(emulator.ApiUrl, "machines/create_asks/"), new StringContent(body, Encoding.UTF8, "application/json"));
                Assert.True((bool?)JsonNode.Parse(await listed.Content.ReadAsStringAsync())!["success"], "create_asks for " + machine);
            }
        }

        emulator.State.SetRateLimits(true, 0.02);

        // ---- rig A: healthy. 4 GPUs, two Vast instances on them, market pricing in dry-run, a window in 10 days.
        var dirA = TestEnvironment.NewTempDirectory("e2e-a");
        _containers.AddRange(["C.51001", "C.51002"]);
        await docker.Daemon.DockerAsync("run", "-d", "--name", "C.51001", "-e", "NVIDIA_VISIBLE_DEVICES=0,1", "--memory", "256m", "--cpus", "1", DockerDaemon.Image, "sleep", "3600");
        await docker.Daemon.DockerAsync("run", "-d", "--name", "C.51002", "-e", "NVIDIA_VISIBLE_DEVICES=2", DockerDaemon.Image, "sleep", "3600");
        var pid = await docker.Daemon.PidOfAsync("C.51001");
        var nvmlA = new FakeNvmlState(dirA, new Dictionary<string, string>
        {
            ["gpus"] = "4",
            ["gpu.0.processes"] = $"{pid}:4294967296",
            ["gpu.0.mem_used"] = "5368709120",
            ["gpu.0.util_gpu"] = "93",
            ["gpu.0.ecc_mode"] = "1",
            ["gpu.0.temp_slowdown"] = "90",
        });
        var envA = Vast(emulator, dirA, "rig-01", management: true);
        envA["VASTHOST_MANAGEMENT__PRICING__STRATEGY"] = "market";
        envA["VASTHOST_MANAGEMENT__MINBID__MODE"] = "ratio";
        envA["VASTHOST_ECONOMICS__ENABLED"] = "true"; // cheap power: a healthy margin
        envA["VASTHOST_ECONOMICS__PRICEPERKWH"] = "0.01";
        envA["VASTHOST_ECONOMICS__TIMEZONE"] = "UTC";
        // Vast's rig-01 has 8 GPUs: NVML reads 4, the other 4 are bound to vfio-pci (a VM rental), so none is missing.
        var pciA = new PciFixture(dirA);
        for (var i = 1; i <= 8; i++)
        {
            var address = string.Create(CultureInfo.InvariantCulture, $"0000:{i:x2}:00.0");
            pciA.Gpu(address, i <= 4 ? "nvidia" : "vfio-pci").Aer(address, correctable: 1, nonfatal: 0, fatal: 0);
        }

        var configA = new AgentConfig
        {
            WorkDirectory = dirA,
            FakeNvmlState = nvmlA.Path,
            SysfsRoot = pciA.Root,
            DockerEndpoint = docker.Daemon.Endpoint,
            DockerDataRoot = await TmpfsAsync(0),
            SampleInterval = "00:00:02",
            Environment = envA,
        };
        var rigA = await StartAsync(configA);
        var at = DateTimeOffset.UtcNow.AddDays(10).ToString("yyyy-MM-ddTHH:00Z", CultureInfo.InvariantCulture);
        var maint = await AgentProcess.RunToExitAsync(["maint", "schedule", "--at", at, "--duration", "2h", "--category", "gpu", "--config", Path.Combine(dirA, "agent.json")], envA);
        Assert.True(maint.ExitCode == 0, maint.Stdout + maint.Stderr);

        // ---- rig B: every hardware fault. GPU 1 lost, GPU 2 hot, GPU 3 throttling with failed row remaps,
        // GPU 0 with XIDs and uncorrectable ECC errors (raised once Prometheus has a first sample); Docker
        // down; its disk 96 % full; the offer ends tomorrow.
        var dirB = TestEnvironment.NewTempDirectory("e2e-b");
        var nvmlB = new FakeNvmlState(dirB, new Dictionary<string, string>
        {
            ["gpus"] = "4",
            ["gpu.1.lost"] = "1",
            ["gpu.2.temp"] = "95",
            ["gpu.2.temp_slowdown"] = "90",
            ["gpu.3.clock_event_reasons"] = "64",
            ["gpu.3.remap_failure"] = "1",
            ["gpu.3.remap_pending"] = "1",
            ["gpu.0.ecc_mode"] = "1",
            ["gpu.0.ecc_vol_uncorr"] = "0",
        });
        // GPU 1 lost on the bus too (missing, nvml_lost); non-fatal AER errors on GPU 0 (raised with the ECC errors).
        var pciB = new PciFixture(dirB).Gpu("0000:01:00.0", "nvidia").Gpu("0000:02:00.0", "nvidia").Gpu("0000:03:00.0", "nvidia").Gpu("0000:04:00.0", "nvidia")
            .Aer("0000:01:00.0", correctable: 0, nonfatal: 0, fatal: 0);
        var rigB = await StartAsync(new AgentConfig
        {
            WorkDirectory = dirB,
            FakeNvmlState = nvmlB.Path,
            SysfsRoot = pciB.Root,
            DockerEndpoint = "unix://" + Path.Combine(dirB, "no-docker.sock"),
            DockerDataRoot = await TmpfsAsync(0.96),
            SampleInterval = "00:00:02",
            Environment = new Dictionary<string, string?>(Vast(emulator, dirB, "rig-02", management: true))
            {
                // Power at 4 $/kWh: a rented GPU-hour at the listed 0.30 $ and a day's earnings both lose money.
                ["VASTHOST_ECONOMICS__ENABLED"] = "true",
                ["VASTHOST_ECONOMICS__PRICEPERKWH"] = "4",
                ["VASTHOST_ECONOMICS__TIMEZONE"] = "UTC",
            },
        });

        // ---- rig C: no NVML (no driver); its machine unlisted and offline on Vast.
        var dirC = TestEnvironment.NewTempDirectory("e2e-c");
        var envC = Vast(emulator, dirC, "rig-03", management: false);
        envC["VASTHOST_HOST__DISK"] = "false";
        var rigC = await StartAsync(new AgentConfig { WorkDirectory = dirC, NvmlLibrary = Path.Combine(dirC, "libnvidia-ml.so.1"), SampleInterval = "00:00:02", Environment = envC });

        // ---- rig D: the Vast API unreachable. Rig E: no machine with its name on the account.
        var dirD = TestEnvironment.NewTempDirectory("e2e-d");
        var envD = Vast(emulator, dirD, "rig-01", management: false, baseUrl: "http://127.0.0.1:9");
        envD["VASTHOST_HOST__DISK"] = "false";
        var rigD = await StartAsync(new AgentConfig { WorkDirectory = dirD, FakeNvmlState = new FakeNvmlState(dirD, new Dictionary<string, string> { ["gpus"] = "1" }).Path, SampleInterval = "00:00:02", Environment = envD });
        var dirE = TestEnvironment.NewTempDirectory("e2e-e");
        var envE = Vast(emulator, dirE, "rig-99", management: false);
        envE["VASTHOST_HOST__DISK"] = "false";
        var rigE = await StartAsync(new AgentConfig { WorkDirectory = dirE, FakeNvmlState = new FakeNvmlState(dirE, new Dictionary<string, string> { ["gpus"] = "1" }).Path, SampleInterval = "00:00:02", Environment = envE });
        // Rig F: its offer ran out (end date 5 s after listing). No GPUs, no Docker: Vast only.
        var dirF = TestEnvironment.NewTempDirectory("e2e-f");
        var envF = Vast(emulator, dirF, "rig-04", management: false);
        envF["VASTHOST_HOST__DISK"] = "false";
        var rigF = await StartAsync(new AgentConfig { WorkDirectory = dirF, GpuEnabled = false, SampleInterval = "00:00:02", Environment = envF });
        var deadTarget = $"127.0.0.1:{AgentProcess.FreePort()}";

        // ---- Prometheus with the shipped rules (for: 0s).
        var promDir = TestEnvironment.NewTempDirectory("prometheus");
        var rules = ForZero().Replace(await File.ReadAllTextAsync(Path.Combine(Packaging, "prometheus", "vast-host-agent.rules.yml")), "${1}0s");
        await File.WriteAllTextAsync(Path.Combine(promDir, "rules.yml"), rules);
        string Target(AgentProcess a) => $"127.0.0.1:{a.Port}";
        var (a, b, c, d, e, f) = (Target(rigA), Target(rigB), Target(rigC), Target(rigD), Target(rigE), Target(rigF));
        var prometheus = await PrometheusServer.StartAsync(promDir, $$"""
            global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }
            rule_files: [rules.yml]
            scrape_configs:
              - job_name: vast-host-agent
                static_configs:
                  - targets: ["{{a}}", "{{b}}", "{{c}}", "{{d}}", "{{e}}", "{{f}}", "{{deadTarget}}"]
            """);
        _disposables.Add(prometheus);
        await Poll.UntilAsync(async () => (await prometheus.QueryAsync("count(up{job=\"vast-host-agent\"} == 1) == 6")).Count == 1,
            ok => ok, TimeSpan.FromSeconds(60), "six agents scraped");

        // Faults that are events: after Prometheus has seen the rig without them.
        await Poll.UntilAsync(async () => (await prometheus.QueryAsync($"count_over_time(vasthost_gpu_ecc_errors_volatile_total{{instance=\"{b}\",gpu=\"0\",error_type=\"uncorrected\"}}[1m]) >= 2")).Count == 1,
            ok => ok, TimeSpan.FromSeconds(60), "two ECC samples of rig B");
        nvmlB.Set("gpu.0.ecc_vol_uncorr", "3").InjectXid(0, 79).InjectXid(0, 94);
        // And an XID 79 only the kernel log reports, on a GPU NVML does not list (its own VastHostGpuXidCritical on rig B).
        File.AppendAllText(Path.Combine(dirB, "kmsg"), "4,9,9,-;NVRM: Xid (PCI:0000:c1:00): 79, pid=1, name=python, GPU has fallen off the bus.\n");
        pciB.Aer("0000:01:00.0", correctable: 4, nonfatal: 1, fatal: 0);

        // ---- every alert fires where its fault is, and nowhere else.
        var expected = new SortedSet<string>(StringComparer.Ordinal)
        {
            $"VastHostManagementDryRunLong {a}",
            $"VastHostGpuLost {b}", $"VastHostGpuMissing {b}", $"VastHostGpuPcieAerErrors {b}", $"VastHostGpuTemperatureHigh {b}", $"VastHostGpuThermalThrottling {b}", $"VastHostGpuXidCritical {b}",
            $"VastHostGpuXid {b}", $"VastHostGpuEccUncorrectable {b}", $"VastHostGpuRowRemapFailed {b}", $"VastHostGpuRowRemapPending {b}",
            $"VastHostDockerDown {b}", $"VastHostDockerDiskLow {b}", $"VastHostDockerDiskCritical {b}", $"VastHostListingEndingSoon {b}",
            $"VastHostFaultGuardHolding {b}", $"VastHostFaultGuardCondition {b}", $"VastHostManagementDryRunLong {b}",
            $"VastHostPriceBelowPowerCost {b}", $"VastHostNegativeMargin {b}",
            $"VastHostNvmlDown {c}", $"VastHostVastMachineOffline {c}", $"VastHostMachineUnlisted {c}",
            $"VastHostVastApiDown {d}", $"VastHostVastApiCircuitOpen {d}",
            $"VastHostVastMachineNotIdentified {e}",
            $"VastHostListingExpired {f}",
            $"VastHostAgentDown {deadTarget}",
        };
        async Task<SortedSet<string>> FiringAsync()
        {
            var alerts = (await prometheus.GetAsync("api/v1/alerts"))["alerts"]!.AsArray();
            return new SortedSet<string>(
                alerts.Where(x => (string?)x!["state"] == "firing").Select(x => $"{(string?)x!["labels"]!["alertname"]} {(string?)x["labels"]!["instance"]}"),
                StringComparer.Ordinal);
        }

        SortedSet<string> firing = [];
        try
        {
            firing = await Poll.UntilAsync(FiringAsync, f => f.SetEquals(expected), TimeSpan.FromSeconds(150), "the expected alerts");
        }
        catch (TimeoutException)
        {
            firing = await FiringAsync();
        }

        output.WriteLine($"firing ({firing.Count}):\n  " + string.Join("\n  ", firing));
        Assert.True(firing.SetEquals(expected),
            $"missing: {string.Join(", ", expected.Except(firing))}\nunexpected: {string.Join(", ", firing.Except(expected))}");
        var alertNames = AlertName().Matches(rules).Select(m => m.Groups[1].Value).ToHashSet();
        var fired = firing.Select(f => f.Split(' ')[0]).ToHashSet();
        // Two alerts cannot be brought about from outside a running agent, so promtool's unit tests cover them:
        // a stale collector needs 15 minutes without a run, and the collectors they watch (hwmon, disk,
        // containers) do not fail on missing sensors or paths (disk measures the nearest existing parent).
        // The fleet alerts need a controller (agent.role controller), which this fleet of standalone agents
        // does not run: promtool's unit tests cover them.
        Assert.Equal(["VastHostCollectorFailing", "VastHostCollectorStale"], alertNames.Except(fired).Except(FleetAlerts).Order());
        var health = (await prometheus.GetAsync("api/v1/rules"))["groups"]![0]!["rules"]!.AsArray().Select(r => (string?)r!["health"]).ToList();
        Assert.Equal(alertNames.Count, health.Count);
        Assert.All(health, h => Assert.Equal("ok", h));

        // ---- every panel query of the standalone dashboards returns data (the fleet controller's needs a controller).
        var queries = new List<(string Dashboard, string Panel, string Expr)>();
        foreach (var file in Directory.GetFiles(Path.Combine(Packaging, "grafana", "dashboards"), "*.json"))
        {
            var dashboard = JsonNode.Parse(await File.ReadAllTextAsync(file))!;
            if (dashboard["uid"]!.GetValue<string>() == "vasthost-fleet-controller")
            {
                continue;
            }

            var host = dashboard["uid"]!.GetValue<string>() == "vasthost-rig" ? a : ".+";
            foreach (var (panel, expr) in Targets(dashboard["panels"]!.AsArray()))
            {
                var query = expr.Replace("$hostname", ".+", StringComparison.Ordinal).Replace("$host", host, StringComparison.Ordinal).Replace("$gpu", ".+", StringComparison.Ordinal)
                    .Replace("$__rate_interval", "1m", StringComparison.Ordinal);
                Assert.DoesNotContain("$", query, StringComparison.Ordinal);
                queries.Add((Path.GetFileName(file), panel, query));
            }
        }

        Assert.True(queries.Count > 100, $"{queries.Count} queries");
        var empty = new List<string>();
        foreach (var (dashboard, panel, query) in queries)
        {
            try
            {
                await Poll.UntilAsync(async () => (await prometheus.QueryAsync(query)).Count > 0, ok => ok, TimeSpan.FromSeconds(empty.Count == 0 ? 90 : 5), panel);
            }
            catch (TimeoutException)
            {
                empty.Add($"{dashboard} / {panel}: {query}");
            }
        }

        output.WriteLine($"{queries.Count} panel queries evaluated, {empty.Count} without data");
        Assert.True(empty.Count == 0, "panel queries without data:\n" + string.Join('\n', empty));

        // ---- every metric name a panel or an alert uses is in the agents' real /metrics output.
        var families = new HashSet<string>(StringComparer.Ordinal);
        foreach (var rig in new[] { rigA, rigB, rigC, rigD, rigE, rigF })
        {
            foreach (var (name, type) in (await rig.ScrapeAsync()).Types)
            {
                families.Add(name);
                if (type is "histogram" or "summary")
                {
                    families.UnionWith([name + "_bucket", name + "_sum", name + "_count"]);
                }
            }
        }

        var used = MetricName().Matches(rules + string.Concat(queries.Select(q => q.Expr))).Select(m => m.Value).ToHashSet();
        // Fleet series come from a controller, and vasthost_rig_info from agents of the fleet release; the alerts
        // and the rig dashboard's fleet join use them (see FleetAlerts).
        var unknown = used.Where(n => !families.Contains(n) && !FleetOnly().IsMatch(n)).Order().ToList();
        output.WriteLine($"{used.Count} metric names used by panels and alerts, all in a real scrape");
        Assert.True(unknown.Count == 0, "not in any real /metrics output: " + string.Join(", ", unknown));
    }

    private static IEnumerable<(string Panel, string Expr)> Targets(JsonArray panels)
    {
        foreach (var panel in panels)
        {
            var title = (string?)panel!["title"] ?? "";
            if (panel["panels"] is JsonArray nested)
            {
                foreach (var t in Targets(nested))
                {
                    yield return t;
                }
            }

            if (panel["targets"] is JsonArray targets)
            {
                foreach (var target in targets)
                {
                    if ((string?)target!["expr"] is { Length: > 0 } expr)
                    {
                        yield return ($"{title} [{(string?)target["refId"]}]", expr);
                    }
                }
            }
        }
    }

    /// <summary>Alerts about a fleet (rig agents and a controller), checked by promtool's unit tests.</summary>
    private static readonly string[] FleetAlerts = ["VastHostRigAgentDown", "VastHostFleetRigHealthUnknown"];

    [GeneratedRegex(@"^vasthost_(fleet_[a-z0-9_]+|rig_info)$")]
    private static partial Regex FleetOnly();

    /// <summary>An alert rule's <c>for:</c> duration (replace with <c>${1}0s</c>).</summary>
    [GeneratedRegex(@"(\n\s+for:\s*)\S+")]
    internal static partial Regex ForZero();

    [GeneratedRegex(@"- alert:\s*(\w+)")]
    private static partial Regex AlertName();

    [GeneratedRegex(@"\bvasthost_[a-z0-9_]+")]
    private static partial Regex MetricName();
}
