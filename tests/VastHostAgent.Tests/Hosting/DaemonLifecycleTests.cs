using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using VastHostAgent.Hosting;

namespace VastHostAgent.Tests.Hosting;

/// <summary>The daemon's life: a background loop that dies makes the process exit 1 so systemd restarts it.</summary>
public sealed class DaemonLifecycleTests
{
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
