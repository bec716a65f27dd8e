using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;
using VastHostAgent.Vast;

namespace VastHostAgent.Hosting;

/// <summary>
/// The sd_notify protocol (<c>$NOTIFY_SOCKET</c>, a unix datagram socket; <c>@</c> means the abstract
/// namespace): <c>READY=1</c> once the metrics endpoint listens, <c>STATUS=</c> one line a host reads in
/// <c>systemctl status</c>, <c>WATCHDOG=1</c> every third of <c>$WATCHDOG_USEC</c> but only while every
/// sampler keeps completing its runs (a sampler wedged in the driver stops the pings, so systemd restarts
/// the agent), and <c>STOPPING=1</c> on SIGTERM. A sampler that runs and reports a failure (no NVML,
/// Docker down) is alive: that is reported in metrics, it is not a reason to restart.
/// When the process is a systemd service proper, the library's SystemdLifetime sends READY/STOPPING and
/// this service only adds STATUS and WATCHDOG.
/// </summary>
public sealed partial class SystemdNotifyService(
    SamplingService sampling,
    SnapshotStore store,
    LoopHealth loops,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    ILogger<SystemdNotifyService> logger) : BackgroundService
{
    private readonly string? _socketPath = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
    private readonly Lock _socketGate = new(); // the loop and the stopping callback both send
    private readonly bool _libraryLifetime = SystemdHelpers.IsSystemdService();
    private Socket? _socket;
    private string? _lastStatus;
    private bool _lastAlive = true;

    /// <summary>The watchdog interval systemd asked for, when it is meant for this process.</summary>
    public static TimeSpan? WatchdogInterval()
    {
        if (!long.TryParse(Environment.GetEnvironmentVariable("WATCHDOG_USEC"), NumberStyles.None, CultureInfo.InvariantCulture, out var usec) || usec <= 0)
        {
            return null;
        }

        var pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        return string.IsNullOrEmpty(pid) || pid == Environment.ProcessId.ToString(CultureInfo.InvariantCulture)
            ? TimeSpan.FromMicroseconds(usec)
            : null;
    }

    /// <summary>True while every periodic sampler has finished a run recently (success or failure alike).</summary>
    public static bool SamplersAlive(HostSnapshot snapshot, IEnumerable<ISnapshotSource> sources, DateTimeOffset startedAt, DateTimeOffset now)
    {
        foreach (var source in sources)
        {
            var stale = SamplingService.StaleAfter(source.Interval);
            var lastRun = snapshot.Collectors.TryGetValue(source.Name, out var status) ? status.LastRun ?? startedAt : startedAt;
            if (now - lastRun > stale)
            {
                return false;
            }
        }

        return true;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (string.IsNullOrEmpty(_socketPath))
        {
            return;
        }

        var started = time.GetUtcNow();
        var watchdog = WatchdogInterval();
        await WhenStartedAsync(stoppingToken).ConfigureAwait(false);
        // During a SIGHUP reload the runtime itself says RELOADING=1 and READY=1: one host stopping and the next
        // starting must not look like a stop (or a second start) to systemd.
        if (!_libraryLifetime && !SdNotify.ReloadInProgress)
        {
            Send("READY=1");
        }

        using var stopping = lifetime.ApplicationStopping.Register(() =>
        {
            if (!_libraryLifetime && !SdNotify.ReloadInProgress)
            {
                Send("STOPPING=1");
            }
        });

        var period = watchdog is { } w ? w / 3 : TimeSpan.FromSeconds(10);
        using var timer = new PeriodicTimer(period, time);
        try
        {
            do
            {
                await loops.RunAsync("systemd", _ =>
                {
                    Tick(started, watchdog);
                    return Task.CompletedTask;
                }, stoppingToken).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override void Dispose()
    {
        lock (_socketGate)
        {
            _socket?.Dispose();
            _socket = null;
        }

        base.Dispose();
    }

    private void Tick(DateTimeOffset started, TimeSpan? watchdog)
    {
        var now = time.GetUtcNow();
        var snapshot = store.Current;
        var alive = SamplersAlive(snapshot, sampling.Sources, started, now);
        if (watchdog is not null && alive)
        {
            Send("WATCHDOG=1");
        }

        if (alive != _lastAlive)
        {
            if (alive)
            {
                Log.SamplersAlive(logger);
            }
            else
            {
                Log.SamplersStalled(logger);
            }

            _lastAlive = alive;
        }

        var status = Status(snapshot, alive);
        if (status != _lastStatus)
        {
            Send("STATUS=" + status);
            _lastStatus = status;
        }
    }

    /// <summary>One line for <c>systemctl status</c>.</summary>
    internal static string Status(HostSnapshot s, bool alive)
    {
        var parts = new List<string>();
        if (!alive)
        {
            parts.Add("a sampler is stalled");
        }

        var failing = s.Loops.Values.Where(l => l.Failing).Select(l => l.Name).Order(StringComparer.Ordinal).ToList();
        if (failing.Count > 0)
        {
            parts.Add("FAILING: " + string.Join(", ", failing) + " (see /healthz)");
        }

        var recovering = s.StateFiles.Values.Where(f => f.Recovery is not null).Select(f => f.File).ToList();
        if (recovering.Count > 0)
        {
            parts.Add("state recovering: " + string.Join(", ", recovering));
        }

        parts.Add(s.Gpu switch
        {
            null => "GPUs off",
            { NvmlUp: false } => "NVML down",
            var g => string.Create(CultureInfo.InvariantCulture, $"{g.Gpus.Count(x => x.Up)}/{g.Gpus.Count} GPUs up"),
        });
        if (s.Docker is { } docker)
        {
            parts.Add(docker.Up ? string.Create(CultureInfo.InvariantCulture, $"{docker.Containers.Count(c => c.Running && c.InstanceId is not null)} instances") : "Docker down");
        }

        if (s.Vast?.Machine is { } machine)
        {
            parts.Add(machine.Listed == true
                ? string.Create(CultureInfo.InvariantCulture, $"listed at ${machine.ListedGpuCost:0.000}/GPU-h")
                : "not listed");
        }

        return string.Join(", ", parts);
    }

    private async Task WhenStartedAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        await started.Task.WaitAsync(stoppingToken).ConfigureAwait(false);
    }

    private void Send(string message)
    {
        lock (_socketGate)
        {
            SendLocked(message);
        }
    }

    private void SendLocked(string message)
    {
        try
        {
            if (_socket is null)
            {
                _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
                var path = _socketPath![0] == '@' ? "\0" + _socketPath[1..] : _socketPath;
                _socket.Connect(new UnixDomainSocketEndPoint(path));
            }

            _socket.Send(Encoding.UTF8.GetBytes(message));
        }
        catch (SocketException ex)
        {
            Log.NotifyFailed(logger, message.Split('=')[0], ex.Message);
            _socket?.Dispose();
            _socket = null;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(120, LogLevel.Warning, "sd_notify {Message} failed: {Problem}")]
        public static partial void NotifyFailed(ILogger logger, string message, string problem);

        [LoggerMessage(121, LogLevel.Error, "A sampler has not finished a run for longer than its stale time: watchdog pings stop (systemd restarts the agent after WatchdogSec)")]
        public static partial void SamplersStalled(ILogger logger);

        [LoggerMessage(122, LogLevel.Information, "Every sampler is running again: watchdog pings resume")]
        public static partial void SamplersAlive(ILogger logger);
    }
}
