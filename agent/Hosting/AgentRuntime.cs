using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using VastHostAgent.Containers;
using VastHostAgent.Kernel;
using VastHostAgent.Metrics;

namespace VastHostAgent.Hosting;

/// <summary>Process exit codes.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int InvalidConfiguration = 2;
}

/// <summary>A configuration as loaded for the daemon: the configuration when valid, else the problems (one line each).</summary>
public sealed record LoadedConfiguration(IConfigurationRoot? Configuration, AgentConfiguration.Source Source, IReadOnlyList<string> Problems);

/// <summary>Builds the daemon (Generic Host + Kestrel) and the one-shot service graphs the CLI uses.</summary>
public static partial class AgentRuntime
{
    /// <summary>
    /// Runs the daemon until SIGTERM/SIGINT. Configuration must already be validated. Holds
    /// <c>{agent.stateDirectory}/agent.lock</c> for the whole run. On SIGHUP, <paramref name="reload"/> reads the
    /// configuration again: when it is valid the running host stops exactly as for SIGTERM (a Vast change in
    /// flight drains) and a new one starts with it in the same process; when it is not, one error line says why
    /// and nothing changes.
    /// </summary>
    public static async Task<int> RunDaemonAsync(
        IConfigurationRoot configuration, AgentConfiguration.Source source, Func<LoadedConfiguration> reload, CancellationToken cancellationToken)
    {
        var stateDirectory = StateDirectoryOf(configuration);
        var (stateLock, busy, warning) = StateDirectoryLock.Acquire(stateDirectory);
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
        IDisposable? accountLock = null;
        if (configuration.GetSection(AgentOptions.SectionName).Get<AgentOptions>()?.Role == AgentRole.Controller)
        {
            var (controllerLock, controllerBusy, controllerWarning) = Fleet.ControllerLock.Acquire(configuration);
            if (controllerBusy is not null)
            {
                await Console.Error.WriteLineAsync("error: " + controllerBusy).ConfigureAwait(false);
                return ExitCodes.Failure;
            }

            if (controllerWarning is not null)
            {
                await Console.Error.WriteLineAsync("warning: " + controllerWarning).ConfigureAwait(false);
            }

            accountLock = controllerLock;
        }

        using var heldAccount = accountLock;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var hangups = Channel.CreateUnbounded<bool>();

        // Registered for the whole run: between two hosts of a reload no host's lifetime listens for SIGTERM,
        // and SIGHUP would otherwise end the process (exit 129).
        using var onHangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true;
            hangups.Writer.TryWrite(true);
        });
        using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });
        using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            context.Cancel = true;
            stop.Cancel();
        });

        var current = new LoadedConfiguration(configuration, source, []);
        LoadedConfiguration? fallback = null;
        string? reloadFailure = null;
        var afterReload = false;
        while (true)
        {
            var outcome = await RunHostAsync(current, afterReload, reloadFailure, reload, stateDirectory, hangups.Reader, stop.Token).ConfigureAwait(false);
            switch (outcome)
            {
                case HostOutcome.Reload next:
                    fallback = current;
                    current = next.Configuration;
                    reloadFailure = null;
                    afterReload = true;
                    continue;

                case HostOutcome.StartFailed failed when fallback is not null:
                    // The new configuration did not start (it was checked before the old host stopped, so this is
                    // rare): go back to the one that ran; its host logs why.
                    current = fallback;
                    fallback = null;
                    reloadFailure = failed.Problem;
                    continue;

                case HostOutcome.StartFailed failed:
                    SdNotify.ReloadInProgress = false;
                    if (!afterReload)
                    {
                        await Console.Error.WriteLineAsync("error: " + failed.Problem).ConfigureAwait(false);
                    }

                    return failed.ExitCode;

                case HostOutcome.Exited exited:
                    SdNotify.ReloadInProgress = false;
                    return exited.ExitCode;
            }
        }
    }

    /// <summary>Builds, starts and runs one host until it stops (SIGTERM, a fault) or a valid reload asks for the next one.</summary>
    /// <param name="loaded">The (valid) configuration to run.</param>
    /// <param name="afterReload">A reload started this host (start-up errors are logged, not printed; READY=1 once started).</param>
    /// <param name="reloadFailure">Why the configuration of the reload before did not start: this host runs the previous one again.</param>
    /// <param name="reload">Reads and validates the configuration again.</param>
    /// <param name="stateDirectory">The state directory whose lock the process holds.</param>
    /// <param name="hangups">One item per SIGHUP.</param>
    /// <param name="stop">Cancelled on SIGTERM or SIGINT.</param>
    private static async Task<HostOutcome> RunHostAsync(
        LoadedConfiguration loaded, bool afterReload, string? reloadFailure, Func<LoadedConfiguration> reload, string stateDirectory,
        ChannelReader<bool> hangups, CancellationToken stop)
    {
        var configuration = loaded.Configuration!;
        var endpoint = ListenEndpoint(configuration);
        if (!afterReload && CheckListen(endpoint) is { } cannotListen)
        {
            return new HostOutcome.StartFailed(ListenProblem(endpoint, cannotListen), ExitCodes.InvalidConfiguration);
        }

        await using var app = BuildDaemon(configuration, endpoint);
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("VastHostAgent");
        var time = app.Services.GetRequiredService<TimeProvider>();
        using var onStop = stop.Register(() => app.Lifetime.StopApplication());
        if (reloadFailure is not null)
        {
            Log.ReloadStartFailed(logger, reloadFailure);
        }

        HostOutcome.StartFailed? failed = null;
        try
        {
            await app.StartAsync(stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            await AbandonAsync(app).ConfigureAwait(false);
            Log.Stopped(logger);
            return new HostOutcome.Exited(ExitCodes.Ok);
        }
        catch (Exception ex)
        {
            failed = ListenFailure(ex) is { } listen
                ? new HostOutcome.StartFailed(ListenProblem(endpoint, listen), ExitCodes.InvalidConfiguration)
                : new HostOutcome.StartFailed($"cannot start: {ex.GetType().Name}: {ex.Message}", ExitCodes.Failure);
        }

        if (failed is not null)
        {
            await AbandonAsync(app).ConfigureAwait(false);
            if (reloadFailure is not null)
            {
                Log.RestartFailed(logger, failed.Problem);
            }

            return failed;
        }

        Log.Started(logger, BuildInfo.Display, loaded.Source.Path ?? "built-in defaults", $"{MetricsEndpoints.Scheme(app.Services)}://{endpoint}/metrics");
        if (afterReload)
        {
            SdNotify.ReloadInProgress = false;
            SdNotify.Send("READY=1");
        }

        var shutdown = app.WaitForShutdownAsync(CancellationToken.None);
        while (true)
        {
            var hangup = hangups.WaitToReadAsync(CancellationToken.None).AsTask();
            if (await Task.WhenAny(shutdown, hangup).ConfigureAwait(false) == shutdown)
            {
                break;
            }

            while (hangups.TryRead(out _))
            {
                // Several SIGHUPs in a row are one reload.
            }

            SdNotify.Send(SdNotify.Reloading(time));
            LoadedConfiguration next;
            try
            {
                next = reload();
            }
            catch (Exception ex)
            {
                next = new LoadedConfiguration(null, loaded.Source, [$"{ex.GetType().Name}: {ex.Message}"]);
            }

            var problems = next.Problems.ToList();
            if (next.Configuration is { } candidate)
            {
                problems.AddRange(ReloadProblems(candidate, stateDirectory, endpoint));
            }

            if (problems.Count > 0)
            {
                Log.ReloadRefused(logger, next.Source.Path ?? "built-in defaults", string.Join("; ", problems));
                SdNotify.Send("READY=1");
                continue;
            }

            Log.Reloading(logger, next.Source.Path ?? "built-in defaults");
            SdNotify.ReloadInProgress = true;
            app.Lifetime.StopApplication();
            await StopQuietlyAsync(shutdown, logger).ConfigureAwait(false);
            return new HostOutcome.Reload(next);
        }

        var exitCode = await StopQuietlyAsync(shutdown, logger).ConfigureAwait(false);
        exitCode = Math.Max(exitCode, ExitCodeAfterShutdown(app.Services.GetServices<IHostedService>(), logger));
        Log.Stopped(logger);
        return new HostOutcome.Exited(exitCode);
    }

    private static WebApplication BuildDaemon(IConfigurationRoot configuration, IPEndPoint endpoint)
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

        // In place of the library's notifier, which its lifetime uses: a reload must not tell systemd STOPPING=1.
        builder.Services.Replace(ServiceDescriptor.Singleton<ISystemdNotifier, ReloadAwareSystemdNotifier>());
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(15));
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.AddAgent(configuration);   // every feature registers its own loops as hosted services
        builder.Services.AddHostedService<SystemdNotifyService>();

        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.ListenAgentEndpoint(endpoint);
            k.Limits.MaxConcurrentConnections = 256;
            k.Limits.MaxRequestBodySize = 0;
        });

        var app = builder.Build();
        app.UseEndpointSecurity();
        app.MapAgentEndpoints();
        app.MapStatusEndpoints();
        return app;
    }

    /// <summary>Stops what a host that failed to start did start (its loops, its timers), best effort.</summary>
    private static async Task AbandonAsync(WebApplication app)
    {
        try
        {
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // It did not start: what it could not stop is disposed with it.
        }
    }

    /// <summary>Waits for the host to finish stopping; an exception from a service's StopAsync is one line, exit 1.</summary>
    private static async Task<int> StopQuietlyAsync(Task shutdown, ILogger logger)
    {
        try
        {
            await shutdown.ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.StopFailed(logger, ex.GetType().Name, ex.GetBaseException().Message);
            return ExitCodes.Failure;
        }
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

    /// <summary>What a valid new configuration cannot change in a running process, or cannot do on this host.</summary>
    private static IEnumerable<string> ReloadProblems(IConfiguration candidate, string stateDirectory, IPEndPoint endpoint)
    {
        if (!string.Equals(StateDirectoryOf(candidate), stateDirectory, StringComparison.Ordinal))
        {
            yield return $"agent.stateDirectory: cannot change on reload (this process holds {Path.Combine(stateDirectory, StateDirectoryLock.FileName)}); restart the service to use {StateDirectoryOf(candidate)}";
        }

        var next = ListenEndpoint(candidate);
        if (!next.Equals(endpoint) && CheckListen(next) is { } problem
            && !(problem == SocketError.AddressAlreadyInUse && next.Port == endpoint.Port))
        {
            // (The same port on another address of this host may only be taken by this very process: let it try.)
            yield return ListenProblem(next, problem);
        }
    }

    // Read through the options types (the configuration was validated before): no raw keys in the composition root.
    private static string StateDirectoryOf(IConfiguration configuration) =>
        (configuration.GetSection(AgentOptions.SectionName).Get<AgentOptions>() ?? new AgentOptions()).StateDirectory;

    private static IPEndPoint ListenEndpoint(IConfiguration configuration) =>
        (configuration.GetSection(MetricsOptions.SectionName).Get<MetricsOptions>() ?? new MetricsOptions()).ParseListenAddress();

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

    /// <summary>How one host's run ended.</summary>
    private abstract record HostOutcome
    {
        public sealed record Exited(int ExitCode) : HostOutcome;

        public sealed record Reload(LoadedConfiguration Configuration) : HostOutcome;

        public sealed record StartFailed(string Problem, int ExitCode) : HostOutcome;
    }

    /// <summary>A service graph without the web server, for <c>metrics</c>, <c>doctor</c> and <c>status</c>.</summary>
    public static ServiceProvider BuildOneShot(IConfiguration configuration)
    {
        var services = new ServiceCollection();
        services.AddLogging(logging => ConfigureLogging(logging, configuration, toStandardError: true));
        services.AddAgent(configuration);
        return services.BuildServiceProvider();
    }

    /// <summary>One sample of everything (Docker inventory first: the container stats need it).</summary>
    public static async Task<HostSnapshot> SampleOnceAsync(IServiceProvider services, CancellationToken cancellationToken)
    {
        var store = services.GetRequiredService<SnapshotStore>();
        if (services.GetRequiredService<Microsoft.Extensions.Options.IOptions<DockerOptions>>().Value.Enabled)
        {
            var docker = await services.GetRequiredService<IContainerInventory>().LoadOnceAsync(cancellationToken).ConfigureAwait(false);
            store.Update(s => s.WithDocker(docker));
        }

        return await services.GetRequiredService<SamplingService>().CollectOnceAsync(cancellationToken).ConfigureAwait(false);
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
        // says each of those in one line itself (RunHostAsync, ExitCodeAfterShutdown).
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

        [LoggerMessage(3, LogLevel.Information, "SIGHUP: configuration {Config} is valid; stopping the running services (as for SIGTERM) and starting them again with it")]
        public static partial void Reloading(ILogger logger, string config);

        [LoggerMessage(4, LogLevel.Error, "SIGHUP: configuration {Config} not reloaded, still running with the previous one: {Problems}")]
        public static partial void ReloadRefused(ILogger logger, string config, string problems);

        [LoggerMessage(5, LogLevel.Error, "SIGHUP: the new configuration did not start ({Problem}); starting again with the previous one")]
        public static partial void ReloadStartFailed(ILogger logger, string problem);

        [LoggerMessage(6, LogLevel.Critical, "The previous configuration did not start again either ({Problem}); exiting")]
        public static partial void RestartFailed(ILogger logger, string problem);

        [LoggerMessage(7, LogLevel.Critical, "{Service} stopped with an unhandled {ExceptionType}: {Message}; the agent exits with code 1 so that systemd restarts it")]
        public static partial void ServiceFaulted(ILogger logger, string service, string exceptionType, string message, Exception exception);

        [LoggerMessage(8, LogLevel.Error, "stopping failed: {ExceptionType}: {Message}")]
        public static partial void StopFailed(ILogger logger, string exceptionType, string message);
    }
}
