using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using VastHostAgent.Hosting;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Hosting;

/// <summary>
/// The daemon's life: one daemon per state directory, and a background loop that dies makes the process
/// exit 1 so systemd restarts it.
/// </summary>
public sealed class DaemonLifecycleTests
{
    private static async Task<HttpResponseMessage> GetAsync(int port, string path)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        return await http.GetAsync(new Uri($"http://127.0.0.1:{port}/{path}"));
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
