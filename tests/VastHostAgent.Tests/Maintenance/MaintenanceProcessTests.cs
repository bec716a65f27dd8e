using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using VastEmulator;
using VastHostAgent.Maintenance;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Maintenance;

/// <summary>
/// The real agent process against the emulator: the <c>maint</c> commands, a window carried out while the
/// agent is killed (SIGKILL) at every transition, and the fault guard driven by the fake NVML library and
/// by a real, small filesystem filling up.
/// </summary>
public sealed class MaintenanceProcessTests : IAsyncLifetime
{
    private const string JobImage = "hostco/idle-miner:2";
    private RunningEmulator _emulator = null!;

    public async Task InitializeAsync() =>
        _emulator = await EmulatorApp.StartAsync(new EmulatorOptions { RateLimitScale = 0.02, OfferCount = 100 });

    public async Task DisposeAsync() => await _emulator.DisposeAsync();

    private int MachineId => _emulator.State.OwnMachineIds[0];

    private bool Listed => _emulator.State.MachineJson(MachineId)!["listed"]!.GetValue<bool>();

    private int Applied(string endpoint) => _emulator.State.Requests.Count(r => r.Endpoint == endpoint && r.Applied);

    private int Sent(string endpoint) => _emulator.State.Requests.Count(r => r.Endpoint == endpoint);

    private AgentConfig Config(string dir, FakeNvmlState? nvml = null, string? dockerDataRoot = null, bool disk = false, params (string Key, string Value)[] extra)
    {
        var keyFile = Path.Combine(dir, "vast.key");
        File.WriteAllText(keyFile, _emulator.ApiKey);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        nvml ??= new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "2" });
        var price = _emulator.State.MachineJson(MachineId)!["listed_gpu_cost"]!.GetValue<double>();
        var config = new AgentConfig
        {
            WorkDirectory = dir,
            Port = AgentProcess.FreePort(),
            FakeNvmlState = nvml.Path,
            DockerDataRoot = dockerDataRoot,
            Environment =
            {
                ["VASTHOST_HOST__DISK"] = disk ? "true" : "false",
                ["VASTHOST_HOST__HWMON"] = "false",
                ["VASTHOST_VAST__ENABLED"] = "true",
                ["VASTHOST_VAST__BASEURL"] = _emulator.BaseUrl.GetLeftPart(UriPartial.Authority),
                ["VASTHOST_VAST__APIKEYFILE"] = keyFile,
                ["VASTHOST_VAST__MACHINEID"] = MachineId.ToString(CultureInfo.InvariantCulture),
                ["VASTHOST_VAST__SPACINGSCALE"] = "0.02",
                ["VASTHOST_VAST__DEFAULTSPACINGSECONDS"] = "1",
                ["VASTHOST_VAST__REQUESTTIMEOUT"] = "00:00:05",
                ["VASTHOST_MANAGEMENT__ENABLED"] = "true",
                ["VASTHOST_MANAGEMENT__DRYRUN"] = "false",
                ["VASTHOST_MANAGEMENT__RECONCILEINTERVAL"] = "00:00:01",
                ["VASTHOST_MANAGEMENT__MUTATIONBUDGETPERHOUR"] = "100",
                ["VASTHOST_MANAGEMENT__UNKNOWNOUTCOMEQUARANTINE"] = "00:00:01", // 3 × the request timeout: 15 s
                ["VASTHOST_MANAGEMENT__PRICING__STRATEGY"] = "fixed",
                ["VASTHOST_MANAGEMENT__PRICING__FIXEDPRICE"] = price.ToString(CultureInfo.InvariantCulture),
                ["VASTHOST_MANAGEMENT__PRICING__COOLDOWN"] = "00:00:00",
                ["VASTHOST_MANAGEMENT__DEFAULTJOB__MODE"] = "present",
                ["VASTHOST_MANAGEMENT__DEFAULTJOB__IMAGE"] = JobImage,
            },
        };
        foreach (var (k, v) in extra)
        {
            config.Environment[k] = v;
        }

        // Written once so the maint commands can use the same configuration file as the daemon.
        File.WriteAllText(Path.Combine(dir, "agent.json"), config.ToJson(config.Port!.Value, dir));
        return config;
    }

    private static Task<(int ExitCode, string Stdout, string Stderr)> Cli(AgentConfig config, params string[] args) =>
        AgentProcess.RunToExitAsync([.. args, "--config", Path.Combine(config.WorkDirectory!, "agent.json")], config.Environment);

    private static string? WindowState(AgentConfig config, string id)
    {
        // Through the agent's own store: the file is written atomically, so a read never sees half of it.
        return new MaintenanceStore(Path.Combine(config.WorkDirectory!, "state")).Load().Windows.FirstOrDefault(w => w.Id == id)?.State.ToString();
    }

    [Fact]
    public async Task Maint_commands_schedule_list_and_cancel_windows_and_refuse_bad_input_with_exit_2()
    {
        var config = Config(TestEnvironment.NewTempDirectory("maint-cli"));
        var at = DateTimeOffset.UtcNow.AddDays(3).ToString("yyyy-MM-ddTHH:00Z", CultureInfo.InvariantCulture);

        var scheduled = await Cli(config, "maint", "schedule", "--at", at, "--duration", "90m", "--category", "gpu", "--id", "swap-gpu3");
        Assert.True(scheduled.ExitCode == 0, scheduled.Stderr);
        Assert.Contains("Window swap-gpu3:", scheduled.Stdout, StringComparison.Ordinal);
        Assert.Contains("(1h30m, gpu) added", scheduled.Stdout, StringComparison.Ordinal);

        var list = await Cli(config, "maint", "list");
        Assert.Equal(0, list.ExitCode);
        var row = list.Stdout.Split('\n').Single(l => l.StartsWith("swap-gpu3 ", StringComparison.Ordinal));
        Assert.Contains("planned", row, StringComparison.Ordinal);
        Assert.Contains("scheduled from the command line", row, StringComparison.Ordinal);
        Assert.Contains("Fault guard: off", list.Stdout, StringComparison.Ordinal);

        var json = await Cli(config, "maint", "list", "--json");
        using (var doc = JsonDocument.Parse(json.Stdout))
        {
            var window = doc.RootElement.GetProperty("windows").EnumerateArray().Single();
            Assert.Equal(("swap-gpu3", "cli", "planned", 5400.0), (window.GetProperty("id").GetString(), window.GetProperty("source").GetString(),
                window.GetProperty("state").GetString(), (window.GetProperty("end").GetDateTimeOffset() - window.GetProperty("start").GetDateTimeOffset()).TotalSeconds));
        }

        var duplicate = await Cli(config, "maint", "schedule", "--at", at, "--duration", "1h", "--id", "swap-gpu3");
        Assert.Equal(2, duplicate.ExitCode);
        Assert.Contains("a window 'swap-gpu3' already exists", duplicate.Stderr, StringComparison.Ordinal);
        foreach (var (args, message) in new (string[], string)[]
                 {
                     (["--at", "tomorrow", "--duration", "1h"], "--at: 'tomorrow' is not a date and time"),
                     (["--at", at, "--duration", "2m"], "--duration: '2m' must be between 5m and 14d"),
                     (["--at", at, "--duration", "1h", "--category", "aliens"], "--category: 'aliens' must be one of power, internet, disk, gpu, software, other"),
                     (["--at", "2020-01-01T00:00Z", "--duration", "1h"], "is already over"),
                 })
        {
            var bad = await Cli(config, ["maint", "schedule", .. args]);
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains(message, bad.Stderr, StringComparison.Ordinal);
        }

        var cancel = await Cli(config, "maint", "cancel", "swap-gpu3");
        Assert.Equal(0, cancel.ExitCode);
        Assert.Contains("Cancel requested for window swap-gpu3 (planned)", cancel.Stdout, StringComparison.Ordinal);
        Assert.Contains("planned (cancelling)", (await Cli(config, "maint", "list")).Stdout, StringComparison.Ordinal);
        Assert.Equal(2, (await Cli(config, "maint", "cancel", "nope")).ExitCode);

        var status = await Cli(config, "status");
        Assert.Equal(0, status.ExitCode);
        Assert.Contains("Maintenance: swap-gpu3 planned (cancelling)", status.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(_emulator.State.Requests, r => r.Mutation);   // the commands never call Vast
    }

    [Fact]
    public async Task Windows_need_management_and_a_bad_window_in_the_configuration_names_its_key_with_exit_2()
    {
        var config = Config(TestEnvironment.NewTempDirectory("maint-bad"), extra: [("VASTHOST_MANAGEMENT__ENABLED", "false")]);
        var off = await Cli(config, "maint", "schedule", "--at", "2030-01-01T00:00Z", "--duration", "1h");
        Assert.Equal(2, off.ExitCode);
        Assert.Contains("management.enabled is false", off.Stderr, StringComparison.Ordinal);

        var env = new Dictionary<string, string?>(config.Environment)
        {
            ["VASTHOST_MANAGEMENT__ENABLED"] = "true",
            ["VASTHOST_MAINTENANCE__WINDOWS__0__ID"] = "w 1",
            ["VASTHOST_MAINTENANCE__WINDOWS__0__START"] = "2030-01-01T00:00:00Z",
            ["VASTHOST_MAINTENANCE__WINDOWS__0__CATEGORY"] = "aliens",
            ["VASTHOST_MAINTENANCE__RECURRING__0__ID"] = "r",
            ["VASTHOST_MAINTENANCE__RECURRING__0__CRON"] = "0 25 * * *",
            ["VASTHOST_MAINTENANCE__RECURRING__0__TIMEZONE"] = "Mars/Olympus",
            ["VASTHOST_FAULTGUARD__POLICY"] = "panic",
        };
        var (exit, _, stderr) = await AgentProcess.RunToExitAsync(["run", "--config", Path.Combine(config.WorkDirectory!, "agent.json")], env);
        Assert.Equal(2, exit);
        Assert.Contains("maintenance.windows.0.id: must be 1-40 letters", stderr, StringComparison.Ordinal);
        Assert.Contains("maintenance.windows.0.category: must be power, internet, disk, gpu, software or other (got 'aliens')", stderr, StringComparison.Ordinal);
        Assert.Contains("maintenance.recurring.0.cron: '0 25 * * *' is not a 5-field cron expression", stderr, StringComparison.Ordinal);
        Assert.Contains("maintenance.recurring.0.timeZone: 'Mars/Olympus' is not a known IANA time zone", stderr, StringComparison.Ordinal);
        Assert.Contains("faultGuard.policy: must be unlist or defaultJob (got 'panic')", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(_emulator.State.Requests, r => r.Mutation);
    }

    [Fact]
    public async Task Killed_at_every_transition_the_agent_resumes_and_Vast_sees_one_dnotify_one_unlist_and_one_restore()
    {
        var config = Config(TestEnvironment.NewTempDirectory("maint-kill"));
        var agent = AgentProcess.Start(config);
        try
        {
            // In sync first: the configured default job is set once.
            await Poll.UntilAsync(() => Applied(Endpoints.CreateBids) == 1, TimeSpan.FromSeconds(30), "the default job to be set");
            var baseline = Endpoints.Names.Where(Endpoints.IsMutation).ToDictionary(e => e, Sent);

            // Scheduled from the command line while the daemon runs: started 4m40s ago (minimum length 5 min),
            // so it is due at once and ends 20 s from now.
            var start = DateTimeOffset.UtcNow.AddSeconds(-280);
            var added = await Cli(config, "maint", "schedule", "--at", start.ToString("o", CultureInfo.InvariantCulture), "--duration", "5m", "--category", "software", "--id", "kill-test");
            Assert.True(added.ExitCode == 0, added.Stderr);

            foreach (var state in new[] { "scheduled", "active", "done" })
            {
                await Poll.UntilAsync(() => WindowState(config, "kill-test") == state, TimeSpan.FromSeconds(60), $"the window to be {state}");
                await agent.KillAsync();
                await agent.DisposeAsync();
                agent = AgentProcess.Start(config);
            }

            // After the last restart: restored and in sync.
            await Poll.UntilAsync(() => Listed && Applied(Endpoints.CreateBids) == 2, TimeSpan.FromSeconds(30), "listing and default job restored");
            await agent.ScrapeUntilAsync(e => e.Value("vasthost_maintenance_in_maintenance") == 0 && e.Value("vasthost_management_last_reconcile_timestamp_seconds") > 0, "a reconcile after the restart");
            var settled = _emulator.State.Requests.Count(r => r.Mutation);
            var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            await agent.ScrapeUntilAsync(e => e.Value("vasthost_management_last_reconcile_timestamp_seconds") > now + 2, "more reconciles", TimeSpan.FromSeconds(30));
            Assert.Equal(settled, _emulator.State.Requests.Count(r => r.Mutation));

            int Delta(string endpoint) => Sent(endpoint) - baseline[endpoint];
            Assert.Equal(1, Delta(Endpoints.Dnotify));
            Assert.Equal(1, Delta(Endpoints.Unlist));
            Assert.Equal(1, Delta(Endpoints.RemoveDefjob));
            Assert.Equal(1, Delta(Endpoints.CreateAsks));      // the one relist
            Assert.Equal(1, Delta(Endpoints.CreateBids));      // the one default job restore
            Assert.Equal(0, Delta(Endpoints.CancelMaint));
            var list = await Cli(config, "maint", "list");
            Assert.Contains("planned -> scheduled", list.Stdout, StringComparison.Ordinal);
            Assert.Contains("scheduled -> active", list.Stdout, StringComparison.Ordinal);
            Assert.Contains("active -> done", list.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await agent.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_GPU_lost_in_the_fake_driver_unlists_after_the_hold_and_relists_after_the_clear()
    {
        var dir = TestEnvironment.NewTempDirectory("guard-gpu");
        var nvml = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "2" });
        var config = Config(dir, nvml, extra: [("VASTHOST_FAULTGUARD__ENABLED", "true"), ("VASTHOST_FAULTGUARD__HOLDFOR", "00:00:03"), ("VASTHOST_FAULTGUARD__CLEARFOR", "00:00:04")]);
        await using var agent = AgentProcess.Start(config);
        await Poll.UntilAsync(() => Applied(Endpoints.CreateBids) == 1, TimeSpan.FromSeconds(30), "in sync");

        nvml.Set("gpu.1.lost", "1");
        var lost = Stopwatch.StartNew();
        var degraded = await agent.ScrapeUntilAsync(e => e.Value("vasthost_guard_degraded") == 1, "the guard to trip", TimeSpan.FromSeconds(30));
        Assert.True(lost.Elapsed >= TimeSpan.FromSeconds(3), $"tripped after {lost.Elapsed}, before the 3 s hold");
        Assert.Equal(1, degraded.Value("vasthost_guard_condition_active", ("condition", "gpu_lost")));
        await Poll.UntilAsync(() => !Listed, TimeSpan.FromSeconds(10), "the machine to be unlisted");
        Assert.Contains("TRIPPED", (await Cli(config, "maint", "list")).Stdout, StringComparison.Ordinal);
        using (var status = JsonDocument.Parse(await agent.GetStringAsync("api/status")))
        {
            var guard = status.RootElement.GetProperty("maintenance").GetProperty("guard");
            Assert.True(guard.GetProperty("tripped").GetBoolean());
            Assert.Contains("gpu_lost: GPU 1 GPU_IS_LOST", guard.GetProperty("reason").GetString(), StringComparison.Ordinal);
        }


        nvml.Remove("gpu.1.lost");
        var back = Stopwatch.StartNew();
        await Poll.UntilAsync(() => Listed, TimeSpan.FromSeconds(30), "the machine to be relisted");
        Assert.True(back.Elapsed >= TimeSpan.FromSeconds(4), $"relisted after {back.Elapsed}, before the 4 s clear time");
        await agent.ScrapeUntilAsync(e => e.Value("vasthost_guard_degraded") == 0, "the guard to clear");
        await Poll.UntilAsync(() => (string?)_emulator.State.MachineJson(MachineId)!["bid_image"] == JobImage, TimeSpan.FromSeconds(10), "the default job to be back");
        Assert.Equal(1, Sent(Endpoints.Unlist));
        Assert.Equal(1, Sent(Endpoints.CreateAsks));
    }

    [Fact]
    public async Task Docker_disk_filling_up_on_a_real_filesystem_triggers_a_cleanup_first_then_unlists_until_space_is_freed()
    {
        var dir = TestEnvironment.NewTempDirectory("guard-disk");
        var mount = Path.Combine(dir, "docker-data");
        Directory.CreateDirectory(mount);
        var mounted = await RunAsync("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mount);
        Assert.True(mounted.ExitCode == 0, $"this test needs to mount a 4 MiB tmpfs (root, as for the private dockerd): {mounted.Output}");
        try
        {
            var config = Config(dir, dockerDataRoot: mount, disk: true, extra: [("VASTHOST_FAULTGUARD__ENABLED", "true"), ("VASTHOST_FAULTGUARD__HOLDFOR", "00:00:03"), ("VASTHOST_FAULTGUARD__CLEARFOR", "00:00:03")]);
            await using var agent = AgentProcess.Start(config);
            await Poll.UntilAsync(() => Applied(Endpoints.CreateBids) == 1, TimeSpan.FromSeconds(30), "in sync");

            var filler = Path.Combine(mount, "layers.bin");
            await File.WriteAllBytesAsync(filler, new byte[(4 * 1024 * 1024) - (64 * 1024)]);
            await Poll.UntilAsync(() => Applied(Endpoints.Cleanup) == 1, TimeSpan.FromSeconds(15), "a cleanup of expired storage contracts");
            Assert.True(Listed);
            await agent.ScrapeUntilAsync(e => e.Value("vasthost_guard_condition_active", ("condition", "disk_low")) == 1, "disk_low after the cleanup did not help");
            await Poll.UntilAsync(() => !Listed, TimeSpan.FromSeconds(15), "the machine to be unlisted");
            Assert.Equal(1, Sent(Endpoints.Cleanup));

            File.Delete(filler);
            await Poll.UntilAsync(() => Listed, TimeSpan.FromSeconds(30), "the machine to be relisted");
            Assert.Equal(1, Sent(Endpoints.Unlist));
            Assert.Equal(1, Sent(Endpoints.Cleanup));
        }
        finally
        {
            await RunAsync("umount", "-l", mount);
        }
    }

    [Fact]
    public async Task A_full_disk_under_the_state_directory_makes_healthz_report_the_failing_reconcile_while_telemetry_flows()
    {
        // Defect 12.7: every reconcile failed on a full disk and /healthz stayed 200.
        var dir = TestEnvironment.NewTempDirectory("full-state");
        var state = Path.Combine(dir, "state");
        Directory.CreateDirectory(state);
        var mounted = await RunAsync("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", state);
        Assert.True(mounted.ExitCode == 0, $"this test needs to mount a 1 MiB tmpfs (root, as for the private dockerd): {mounted.Output}");
        try
        {
            var config = Config(dir);
            await using var agent = AgentProcess.Start(config);
            await Poll.UntilAsync(() => Applied(Endpoints.CreateBids) == 1, TimeSpan.FromSeconds(30), "in sync");
            Assert.Equal(HttpStatusCode.OK, (await agent.GetAsync("healthz")).StatusCode);

            // Fill the file system: every state write now fails with ENOSPC.
            var filler = Path.Combine(state, "filler.bin");
            await using (var fill = new FileStream(filler, FileMode.Create))
            {
                var block = new byte[64 * 1024];
                try
                {
                    while (true)
                    {
                        await fill.WriteAsync(block);
                        await fill.FlushAsync();
                    }
                }
                catch (IOException)
                {
                    // full
                }
            }

            var unhealthy = await Poll.UntilAsync(async () => await (await agent.GetAsync("healthz")).Content.ReadAsStringAsync(),
                text => text.Contains("loop management: failing", StringComparison.Ordinal), TimeSpan.FromSeconds(60), "healthz to report the failing reconcile");
            Assert.Contains("No space left on device", unhealthy, StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await agent.GetAsync("healthz")).StatusCode);
            var metrics = await agent.ScrapeAsync();
            Assert.Equal(1, metrics.Value("vasthost_loop_failing", ("loop", "management")));
            Assert.Equal(1, metrics.Value("vasthost_collector_up", ("collector", "gpu")));    // telemetry keeps flowing
            Assert.False(agent.HasExited);
            Assert.Single(agent.StandardOutput.Split('\n'), l => l.Contains("Loop management failed unexpectedly", StringComparison.Ordinal));

            // Space again: the next reconcile succeeds and health is back.
            File.Delete(filler);
            await Poll.UntilAsync(async () => (await agent.GetAsync("healthz")).StatusCode, status => status == HttpStatusCode.OK, TimeSpan.FromSeconds(60), "healthz to recover");
            Assert.Contains("Loop management running again", agent.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            await RunAsync("umount", "-l", state);
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, output);
    }
}
