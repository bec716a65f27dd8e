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
    /// <summary>
    /// Runs the daemon until SIGTERM/SIGINT. Configuration must already be validated. Holds
    /// <c>{agent.stateDirectory}/agent.lock</c> for the whole run.
    /// </summary>
    public static async Task<int> RunDaemonAsync(IConfigurationRoot configuration, AgentConfiguration.Source source, CancellationToken cancellationToken)
    {
        var (stateLock, busy, warning) = StateDirectoryLock.Acquire(StateDirectoryOf(configuration));
        if (busy is not null)
        {
            await Console.Error.WriteLineAsync("error: " + busy).ConfigureAwait(false);
            return ExitCodes.Failure;
        }

        if (warning is not null)
        {
            await Console.Error.WriteLineAsync("warning: " + warning).ConfigureAwait(false);
        }

        using var held = stateLock;
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

        var endpoint = ListenEndpoint(configuration);
        if (CheckListen(endpoint) is { } cannotListen)
        {
            await Console.Error.WriteLineAsync("error: " + ListenProblem(endpoint, cannotListen)).ConfigureAwait(false);
            return ExitCodes.InvalidConfiguration;
        }

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
        catch (Exception ex) when (ListenFailure(ex) is { } listen)
        {
            await Console.Error.WriteLineAsync("error: " + ListenProblem(endpoint, listen)).ConfigureAwait(false);
            return ExitCodes.InvalidConfiguration;
        }

        Log.Started(logger, BuildInfo.Display, source.Path ?? "built-in defaults", $"http://{endpoint}/metrics");
        await app.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        var exitCode = ExitCodeAfterShutdown(app.Services.GetServices<IHostedService>(), logger);
        Log.Stopped(logger);
        return exitCode;
    }

    /// <summary>
    /// The backstop for a background loop that died: .NET stops the host when a <see cref="BackgroundService"/>
    /// throws, and the process would then exit 0, so systemd's Restart=on-failure would not restart it. One
    /// critical line naming the service and the exception, and exit code 1.
    /// </summary>
    internal static int ExitCodeAfterShutdown(IEnumerable<IHostedService> services, ILogger logger)
    {
        foreach (var service in services)
        {
            if (service is BackgroundService { ExecuteTask: { IsFaulted: true } task })
            {
                var error = task.Exception!.InnerExceptions.Count == 1 ? task.Exception.InnerExceptions[0] : task.Exception;
                Log.ServiceFaulted(logger, service.GetType().Name, error.GetType().Name, error.Message, error);
                return ExitCodes.Failure;
            }
        }

        return ExitCodes.Ok;
    }

    private static string StateDirectoryOf(IConfiguration configuration) =>
        configuration[AgentOptions.SectionName + ":stateDirectory"] is { Length: > 0 } directory ? directory : new AgentOptions().StateDirectory;

    private static IPEndPoint ListenEndpoint(IConfiguration configuration) =>
        IPEndPoint.Parse(configuration[MetricsOptions.SectionName + ":listenAddress"] ?? new MetricsOptions().ListenAddress);

    /// <summary>
    /// Binds (and closes) a socket the way Kestrel will, so that a busy port or an address this host does not
    /// have is one line before anything starts. Null when the bind works.
    /// </summary>
    internal static SocketError? CheckListen(IPEndPoint endpoint)
    {
        try
        {
            using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            if (endpoint.Address.Equals(IPAddress.IPv6Any))
            {
                socket.DualMode = true;
            }

            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(endpoint);
            return null;
        }
        catch (SocketException ex)
        {
            return ex.SocketErrorCode;
        }
    }

    private static SocketError? ListenFailure(Exception ex)
    {
        for (var e = (Exception?)ex; e is not null; e = e.InnerException)
        {
            if (e is SocketException socket)
            {
                return socket.SocketErrorCode;
            }
        }

        return ex is IOException && ex.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase) ? SocketError.AddressAlreadyInUse : null;
    }

    /// <summary>One line naming the key: <c>metrics.listenAddress: cannot listen on ADDR: why (what to do)</c>.</summary>
    internal static string ListenProblem(IPEndPoint endpoint, SocketError error) =>
        $"metrics.listenAddress: cannot listen on {endpoint}: " + error switch
        {
            SocketError.AddressAlreadyInUse => "address already in use (another agent running? choose another port with metrics.listenAddress or --listen)",
            SocketError.AddressNotAvailable => "this host has no such address (use one of its interface addresses, 127.0.0.1, or 0.0.0.0 for all)",
            SocketError.AccessDenied => "permission denied (ports below 1024 need a privilege the service does not have: use a higher port)",
            _ => new SocketException((int)error).Message,
        };

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

        // The host logs start failures and faulted background services with their stack traces; the daemon
        // says each of those in one line itself (RunDaemonAsync, ExitCodeAfterShutdown).
        logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);
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

        [LoggerMessage(7, LogLevel.Critical, "{Service} stopped with an unhandled {ExceptionType}: {Message}; the agent exits with code 1 so that systemd restarts it")]
        public static partial void ServiceFaulted(ILogger logger, string service, string exceptionType, string message, Exception exception);
    }
}
