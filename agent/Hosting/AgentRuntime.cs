using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using VastHostAgent.Containers;
using VastHostAgent.Management;
using VastHostAgent.Metrics;
using VastHostAgent.Vast;

namespace VastHostAgent.Hosting;

/// <summary>Process exit codes.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int InvalidConfiguration = 2;
}

/// <summary>Builds the daemon (Generic Host + Kestrel) and the one-shot service graphs the CLI uses.</summary>
public static partial class AgentRuntime
{
    /// <summary>Runs the daemon until SIGTERM/SIGINT. Configuration must already be validated.</summary>
    public static async Task<int> RunDaemonAsync(IConfigurationRoot configuration, AgentConfiguration.Source source, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "vast-host-agent",
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddConfiguration(configuration);
        ConfigureLogging(builder.Logging, configuration, toStandardError: false);

        builder.Services.AddSystemd();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(15));
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.AddAgent(configuration);
        builder.Services.AddHostedService(sp => sp.GetRequiredService<SamplingService>());
        builder.Services.AddHostedService<SystemdNotifyService>();
        if (configuration.GetValue(DockerOptions.SectionName + ":enabled", true))
        {
            builder.Services.AddHostedService(sp => sp.GetRequiredService<DockerInventoryService>());
        }

        if (configuration.GetValue(ManagementOptions.SectionName + ":enabled", false) && configuration.GetValue(VastOptions.SectionName + ":enabled", false))
        {
            builder.Services.AddHostedService(sp => sp.GetRequiredService<ManagementService>());
        }


        var metricsOptions = configuration.GetSection(MetricsOptions.SectionName);
        var endpoint = IPEndPoint.Parse(metricsOptions["listenAddress"] ?? new MetricsOptions().ListenAddress);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(endpoint);
            k.Limits.MaxConcurrentConnections = 256;
            k.Limits.MaxRequestBodySize = 0;
        });

        await using var app = builder.Build();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("VastHostAgent");
        WireExporter(app.Services);
        app.MapAgentEndpoints();

        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException ex) when (ex.InnerException is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse } || ex.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
        {
            await Console.Error.WriteLineAsync(
                $"error: cannot listen on {endpoint}: address already in use (another agent running? choose another port with metrics.listenAddress or --listen)").ConfigureAwait(false);
            return ExitCodes.Failure;
        }
        catch (SocketException ex)
        {
            await Console.Error.WriteLineAsync($"error: cannot listen on {endpoint}: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }

        Log.Started(logger, BuildInfo.Display, source.Path ?? "built-in defaults", $"http://{endpoint}/metrics");
        await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        Log.Stopped(logger);
        return ExitCodes.Ok;
    }

    /// <summary>A service graph without the web server, for <c>metrics</c>, <c>doctor</c> and <c>status</c>.</summary>
    public static ServiceProvider BuildOneShot(IConfiguration configuration)
    {
        var services = new ServiceCollection();
        services.AddLogging(logging => ConfigureLogging(logging, configuration, toStandardError: true));
        services.AddAgent(configuration);
        var provider = services.BuildServiceProvider();
        WireExporter(provider);
        return provider;
    }

    /// <summary>One sample of everything (Docker inventory first: the container stats need it).</summary>
    public static async Task<HostSnapshot> SampleOnceAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var store = services.GetRequiredService<SnapshotStore>();
        if (services.GetRequiredService<Microsoft.Extensions.Options.IOptions<DockerOptions>>().Value.Enabled)
        {
            var docker = await services.GetRequiredService<IContainerInventory>().LoadOnceAsync(cancellationToken).ConfigureAwait(false);
            store.Update(s => s with { Docker = docker });
        }

        return await services.GetRequiredService<SamplingService>().CollectOnceAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Feeds every published snapshot to the exporter.</summary>
    public static void WireExporter(IServiceProvider services)
    {
        var exporter = services.GetRequiredService<SnapshotExporter>();
        services.GetRequiredService<SnapshotStore>().Published += exporter.Apply;
    }

    /// <summary>Validates configuration the way the daemon binds it. Returns the problems (empty when valid).</summary>
    public static IReadOnlyList<string> Validate(IConfiguration configuration)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddAgent(configuration);
        return AgentConfiguration.Validate(configuration, services);
    }

    private static void ConfigureLogging(ILoggingBuilder logging, IConfiguration configuration, bool toStandardError)
    {
        logging.ClearProviders();
        logging.SetMinimumLevel(LogLevel.Information);
        logging.AddFilter("Microsoft", LogLevel.Warning);
        logging.AddFilter("System", LogLevel.Warning);
        logging.AddConfiguration(configuration.GetSection("logging"));
        logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.ColorBehavior = LoggerColorBehavior.Disabled;
        });
        logging.Services.Configure<ConsoleLoggerOptions>(o =>
            o.LogToStandardErrorThreshold = toStandardError ? LogLevel.Trace : LogLevel.None);
        if (toStandardError)
        {
            logging.SetMinimumLevel(LogLevel.Warning);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "vast-host-agent {Version} started (configuration: {Config}); metrics at {Url}")]
        public static partial void Started(ILogger logger, string version, string config, string url);

        [LoggerMessage(2, LogLevel.Information, "vast-host-agent stopped")]
        public static partial void Stopped(ILogger logger);
    }
}
