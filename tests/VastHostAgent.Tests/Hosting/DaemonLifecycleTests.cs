using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using VastEmulator;
using VastHostAgent.Hosting;
using VastHostAgent.Management;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Hosting;

/// <summary>
/// The daemon's life: SIGHUP reloads the configuration (or refuses an invalid one and keeps running), a Vast
/// change in flight drains on reload as on SIGTERM, one daemon per state directory, and a background loop
/// that dies makes the process exit 1 so systemd restarts it.
/// </summary>
public sealed class DaemonLifecycleTests
{
    private static async Task<HttpResponseMessage> GetAsync(int port, string path)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        return await http.GetAsync(new Uri($"http://127.0.0.1:{port}/{path}"));
    }

    [Fact]
    public async Task SIGHUP_with_a_changed_valid_configuration_serves_on_the_new_port_in_the_same_process_and_tells_systemd()
    {
        var dir = TestEnvironment.NewTempDirectory("reload");
        using var notify = new NotifySocketReceiver(Path.Combine(dir, "notify.sock"));
        var config = new AgentConfig { WorkDirectory = dir, FakeNvmlState = new FakeNvmlState(dir).Path, Environment = { ["NOTIFY_SOCKET"] = notify.Path } };
        await using var agent = AgentProcess.Start(config);
        await agent.WaitReadyAsync();
        await Poll.UntilAsync(() => notify.Datagrams.Contains("READY=1"), TimeSpan.FromSeconds(10), "READY=1");

        var newPort = AgentProcess.FreePort();
        await File.WriteAllTextAsync(agent.ConfigPath, config.ToJson(newPort, dir));
        agent.Hangup();

        var served = await Poll.UntilAsync(() => GetAsync(newPort, "metrics"), r => r.IsSuccessStatusCode, TimeSpan.FromSeconds(30),
            $"metrics on the new port {newPort} (agent exited: {agent.HasExited}; stdout: {agent.StandardOutput}; stderr: {agent.StandardError})");
        Assert.Contains("vasthost_", await served.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(agent.HasExited);
        Assert.Contains($"SIGHUP: configuration {agent.ConfigPath} is valid", agent.StandardOutput, StringComparison.Ordinal);
        Assert.Contains($"metrics at http://127.0.0.1:{newPort}/metrics", agent.StandardOutput, StringComparison.Ordinal);
        await Assert.ThrowsAsync<HttpRequestException>(() => GetAsync(agent.Port, "metrics"));    // the old port is closed

        // systemd: RELOADING=1 with the CLOCK_MONOTONIC time (the test's Stopwatch reads the same clock), then READY=1.
        await Poll.UntilAsync(() => notify.Datagrams.SkipWhile(d => !d.StartsWith("RELOADING=1", StringComparison.Ordinal)).Contains("READY=1"),
            TimeSpan.FromSeconds(10), $"RELOADING=1 then READY=1 (got: {string.Join(" | ", notify.Datagrams)})");
        var reloading = notify.Datagrams.First(d => d.StartsWith("RELOADING=1", StringComparison.Ordinal));
        var usec = long.Parse(reloading.Split('\n').Single(l => l.StartsWith("MONOTONIC_USEC=", StringComparison.Ordinal))["MONOTONIC_USEC=".Length..], CultureInfo.InvariantCulture);
        var now = Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency * 1e6;
        Assert.InRange(now - usec, 0, 60e6);

        Assert.Equal(0, await agent.StopAsync());
    }

    [Fact]
    public async Task Under_systemd_a_reload_reports_RELOADING_then_READY_and_never_STOPPING()
    {
        var dir = TestEnvironment.NewTempDirectory("reload-sd");
        using var notify = new NotifySocketReceiver(Path.Combine(dir, "notify.sock"));
        var config = new AgentConfig { WorkDirectory = dir, GpuEnabled = false };
        var port = AgentProcess.FreePort();
        var configPath = Path.Combine(dir, "agent.json");
        await File.WriteAllTextAsync(configPath, config.ToJson(port, dir));

        // The hosting library takes the process for a systemd service (its lifetime sends READY=1 and STOPPING=1)
        // when the parent process is called "systemd": start the agent from a shell by that name.
        var systemd = Path.Combine(dir, "systemd");
        File.Copy("/bin/bash", systemd);
        var (file, prefix) = TestEnvironment.AgentCommand;
        var psi = new ProcessStartInfo(systemd) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("\"$@\"; exit $?");   // not `exec`: the shell stays the parent
        psi.ArgumentList.Add("systemd");
        foreach (var a in (string[])[file, .. prefix, "run", "--config", configPath])
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("VASTHOST_", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(key);
        }

        psi.Environment["NOTIFY_SOCKET"] = notify.Path;
        using var shell = Process.Start(psi)!;
        var output = shell.StandardOutput.ReadToEndAsync();
        var errors = shell.StandardError.ReadToEndAsync();
        try
        {
            await Poll.UntilAsync(() => GetAsync(port, "metrics"), r => r.IsSuccessStatusCode, TimeSpan.FromSeconds(30), "metrics");
            await Poll.UntilAsync(() => notify.Datagrams.Contains("READY=1"), TimeSpan.FromSeconds(10), "READY=1 from the library's lifetime");
            // The agent's pid is in its lock file (cat, unlike .NET's readers, takes no flock).
            var pid = int.Parse((await Tools.RunAsync("cat", Path.Combine(dir, "state", "agent.lock"))).Stdout.Trim(), CultureInfo.InvariantCulture);
            Assert.NotEqual(shell.Id, pid);

            var newPort = AgentProcess.FreePort();
            await File.WriteAllTextAsync(configPath, config.ToJson(newPort, dir));
            Assert.Equal(0, Kill(pid, 1));
            await Poll.UntilAsync(() => GetAsync(newPort, "metrics"), r => r.IsSuccessStatusCode, TimeSpan.FromSeconds(30), "metrics on the new port");
            await Poll.UntilAsync(() => notify.Datagrams.Count(d => d == "READY=1") == 2, TimeSpan.FromSeconds(10), $"READY=1 after the reload (got: {string.Join(" | ", notify.Datagrams)})");

            var sequence = notify.Datagrams.Where(d => !d.StartsWith("STATUS=", StringComparison.Ordinal)).Select(d => d.Split('\n')[0]).ToList();
            Assert.Equal(["READY=1", "RELOADING=1", "READY=1"], sequence);

            Assert.Equal(0, Kill(pid, 15));
            await shell.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
            Assert.True(shell.ExitCode == 0, $"exit {shell.ExitCode}\n{await output}\n{await errors}");
            Assert.Equal("STOPPING=1", notify.Datagrams.Last(d => !d.StartsWith("STATUS=", StringComparison.Ordinal)));
        }
        finally
        {
            if (!shell.HasExited)
            {
                shell.Kill(entireProcessTree: true);
            }
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [Fact]
    public async Task SIGHUP_with_an_invalid_configuration_logs_one_error_and_keeps_running_unchanged()
    {
        var dir = TestEnvironment.NewTempDirectory("reload-bad");
        var config = new AgentConfig { WorkDirectory = dir, FakeNvmlState = new FakeNvmlState(dir).Path };
        await using var agent = AgentProcess.Start(config);
        await agent.WaitReadyAsync();

        var newPort = AgentProcess.FreePort();
        await File.WriteAllTextAsync(agent.ConfigPath, new AgentConfig { SampleInterval = "00:00:00" }.ToJson(newPort, dir));
        agent.Hangup();

        await Poll.UntilAsync(() => agent.StandardOutput.Contains("not reloaded", StringComparison.Ordinal), TimeSpan.FromSeconds(30),
            $"the reload to be refused (agent exited: {agent.HasExited}; stdout: {agent.StandardOutput}; stderr: {agent.StandardError})");
        var line = Assert.Single(agent.StandardOutput.Split('\n'), l => l.Contains("SIGHUP", StringComparison.Ordinal));
        Assert.Contains(" fail: ", line, StringComparison.Ordinal);
        Assert.Contains("agent.sampleInterval: must be between 00:00:01 and 00:05:00 (got '00:00:00')", line, StringComparison.Ordinal);

        Assert.False(agent.HasExited);
        Assert.True((await agent.GetAsync("metrics")).IsSuccessStatusCode);                  // still on the old port
        await Assert.ThrowsAsync<HttpRequestException>(() => GetAsync(newPort, "metrics"));  // never on the new one
        Assert.Equal(0, await agent.StopAsync());
        Assert.Contains("vast-host-agent stopped", agent.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SIGHUP_during_a_Vast_mutation_lets_the_call_finish_before_the_new_configuration_starts()
    {
        await using var emulator = await EmulatorApp.StartAsync(new EmulatorOptions { RateLimitScale = 0.02, OfferCount = 50 });
        var dir = TestEnvironment.NewTempDirectory("reload-mut");
        var keyFile = Path.Combine(dir, "vast.key");
        await File.WriteAllTextAsync(keyFile, emulator.ApiKey);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        emulator.State.AddFault(new FaultSpec(Endpoints.CreateAsks, DelayMs: 4000, PassThrough: true));
        var config = new AgentConfig
        {
            WorkDirectory = dir,
            GpuEnabled = false,
            Environment =
            {
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
        };
        await using var agent = AgentProcess.Start(config);

        // The write-ahead note appears just before the call goes out: reload while it is in flight.
        var state = Path.Combine(dir, "state", "management-state.json");
        await Poll.UntilAsync(() => File.Exists(state) && File.ReadAllText(state).Contains("\"pending\"", StringComparison.Ordinal), TimeSpan.FromSeconds(30), "a create_asks in flight");
        var newPort = AgentProcess.FreePort();
        await File.WriteAllTextAsync(agent.ConfigPath, config.ToJson(newPort, dir));
        agent.Hangup();

        await Poll.UntilAsync(() => GetAsync(newPort, "metrics"), r => r.IsSuccessStatusCode, TimeSpan.FromSeconds(30),
            $"metrics on the new port (agent exited: {agent.HasExited}; stdout: {agent.StandardOutput}; stderr: {agent.StandardError})");
        Assert.Contains("the reconcile in flight may finish", agent.StandardOutput, StringComparison.Ordinal);
        Assert.Single(emulator.State.Requests, r => r.Endpoint == Endpoints.CreateAsks && r.Applied);
        var persisted = new ManagementStateStore(Path.Combine(dir, "state")).Load();
        Assert.Null(persisted.Pending);                                                       // the answer was recorded
        Assert.Null(persisted.Unknown);
        Assert.Equal(0.444, persisted.LastApplied!.PriceGpu);

        Assert.Equal(0, await agent.StopAsync(TimeSpan.FromSeconds(30)));
        Assert.Single(emulator.State.Requests, r => r.Endpoint == Endpoints.CreateAsks && r.Applied);   // the new host found it in sync
    }

    [Fact]
    public async Task A_second_daemon_on_the_same_state_directory_refuses_to_start_but_one_shot_commands_run_next_to_it()
    {
        var dir = TestEnvironment.NewTempDirectory("lock");
        await using var first = AgentProcess.Start(new AgentConfig { WorkDirectory = dir, FakeNvmlState = new FakeNvmlState(dir).Path });
        await first.WaitReadyAsync();

        var secondPort = AgentProcess.FreePort();
        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(
            ["run", "--config", first.ConfigPath, "--listen", $"127.0.0.1:{secondPort}"], timeout: TimeSpan.FromSeconds(30));
        Assert.True(exit == 1, $"exit {exit}\nstdout: {stdout}\nstderr: {stderr}");
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(
            $"error: another vast-host-agent is running on the state directory {dir}/state (it holds {dir}/state/agent.lock): stop it first, or give this one its own agent.stateDirectory",
            line);
        Assert.DoesNotContain("started", stdout, StringComparison.Ordinal);                 // refused before listening
        await Assert.ThrowsAsync<HttpRequestException>(() => GetAsync(secondPort, "metrics"));

        var status = await AgentProcess.RunToExitAsync(["status", "--config", first.ConfigPath], timeout: TimeSpan.FromSeconds(30));
        Assert.True(status.ExitCode == 0, status.Stderr);
        Assert.False(first.HasExited);
        Assert.Equal(0, await first.StopAsync());
    }

    private sealed class DyingLoop : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            await Task.Yield();
            throw new InvalidOperationException("the loop broke");
        }
    }

    private sealed class SteadyLoop : BackgroundService
    {
        protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Delay(Timeout.Infinite, stoppingToken);
    }

    [Fact]
    public async Task A_background_loop_that_died_makes_the_exit_code_1_with_one_critical_line_naming_it()
    {
        var logger = new FakeLogger();
        using (var host = new HostBuilder().ConfigureServices(s => s.AddHostedService<SteadyLoop>().AddHostedService<DyingLoop>()).Build())
        {
            await host.StartAsync();
            await host.WaitForShutdownAsync().WaitAsync(TimeSpan.FromSeconds(30));   // .NET stops the host when a BackgroundService throws
            Assert.Equal(ExitCodes.Failure, AgentRuntime.ExitCodeAfterShutdown(host.Services.GetServices<IHostedService>(), logger));
        }

        var entry = Assert.Single(logger.Collector.GetSnapshot());
        Assert.Equal(LogLevel.Critical, entry.Level);
        Assert.Contains("DyingLoop stopped with an unhandled InvalidOperationException: the loop broke", entry.Message, StringComparison.Ordinal);

        // A host stopped by SIGTERM (its loops cancelled) exits 0 and says nothing more.
        using (var host = new HostBuilder().ConfigureServices(s => s.AddHostedService<SteadyLoop>()).Build())
        {
            await host.StartAsync();
            await host.StopAsync();
            Assert.Equal(ExitCodes.Ok, AgentRuntime.ExitCodeAfterShutdown(host.Services.GetServices<IHostedService>(), logger));
        }

        Assert.Single(logger.Collector.GetSnapshot());
    }
}
