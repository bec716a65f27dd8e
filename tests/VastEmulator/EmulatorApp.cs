using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace VastEmulator;

/// <summary>Starts the emulator in-process on 127.0.0.1 (tests) or from Program.cs (standalone).</summary>
public static class EmulatorApp
{
    public static async Task<RunningEmulator> StartAsync(EmulatorOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = [],
            ApplicationName = typeof(EmulatorApp).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        // ASP.NET Core's own request logging would print query strings, and with them ?api_key=: keep it silent.
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, options.Port);
            kestrel.AddServerHeader = false;
        });
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(5));

        var app = builder.Build();
        var state = new EmulatorState(options);
        var stopping = new CancellationTokenSource();
        var vast = new VastHttpHandler(state, options, stopping.Token);
        var admin = new AdminHttpHandler(state);
        app.Run(context => context.Request.Path.StartsWithSegments("/_emulator", StringComparison.Ordinal)
            ? admin.HandleAsync(context)
            : vast.HandleAsync(context));
        try
        {
            await app.StartAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            stopping.Dispose();
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new RunningEmulator(app, state, new Uri(address.TrimEnd('/') + "/"), stopping);
    }
}

/// <summary>A started emulator. Dispose (or StopAsync) to free the port.</summary>
public sealed class RunningEmulator : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping;
    private int _stopped;
    private int _disposed;

    internal RunningEmulator(WebApplication app, EmulatorState state, Uri baseUrl, CancellationTokenSource stopping)
    {
        _app = app;
        _stopping = stopping;
        State = state;
        BaseUrl = baseUrl;
    }

    /// <summary>http://127.0.0.1:PORT/ (the Vast API is under api/v0/, the admin API under _emulator/).</summary>
    public Uri BaseUrl { get; }

    /// <summary>BaseUrl + "api/v0/".</summary>
    public Uri ApiUrl => new(BaseUrl, "api/v0/");

    public EmulatorState State { get; }

    /// <summary>The primary account's first key.</summary>
    public string ApiKey => State.PrimaryApiKey;

    /// <summary>Stops listening; requests held by timeout faults are released first.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        await _app.StopAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }
}
