using System.Globalization;
using System.Threading.Channels;
using Docker.DotNet;
using Docker.DotNet.Models;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;

namespace VastHostAgent.Containers;

/// <summary>The container inventory, for commands that need it once (status, doctor).</summary>
public interface IContainerInventory
{
    /// <summary>Lists and inspects every container once.</summary>
    Task<DockerState> LoadOnceAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Keeps the inventory of all containers current: a full list on connect and every
/// <c>docker.resyncInterval</c>, and in between the Docker events stream (create, start, die, destroy, oom,
/// health_status, rename, …), each event re-inspecting that one container and publishing at once.
/// On a dropped stream or a dockerd restart it reconnects with back-off (1 s to 30 s) and replays
/// events with <c>since</c> = the last event seen. While Docker is unreachable the container series
/// disappear and <c>vasthost_docker_up</c> is 0; everything else keeps working.
/// </summary>
internal sealed class DockerInventoryService : BackgroundService, IContainerInventory, IEventCollector
{
    public const string CollectorName = "docker";

    private static readonly TimeSpan BackoffMin = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan BackoffMax = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(15);

    private readonly DockerOptions _options;
    private readonly SnapshotStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger<DockerInventoryService> _logger;
    private readonly LoopHealth? _loops;
    private readonly IDockerEngineFactory _engines;

    /// <summary>The loop's name for supervision, metrics and health.</summary>
    public const string LoopName = "docker";
    private readonly Dictionary<string, ContainerInfo> _containers = new(StringComparer.Ordinal);
    private TimeSpan _lastResyncDuration;
    private readonly Uri _endpoint;
    private string? _lastEventSince;
    private string? _engineVersion;
    private string? _lastProblem;
    private bool _wasUp;

    public DockerInventoryService(IOptions<DockerOptions> options, SnapshotStore store, TimeProvider time, ILogger<DockerInventoryService> logger, LoopHealth? loops = null, IDockerEngineFactory? engines = null)
    {
        _loops = loops;
        _engines = engines ?? new DockerDotNetEngineFactory();
        _options = options.Value;
        _store = store;
        _time = time;
        _logger = logger;
        _endpoint = _options.ResolveEndpoint();
    }

    public string Name => CollectorName;

    public bool Enabled => _options.Enabled;

    public async Task<DockerState> LoadOnceAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var client = _engines.Connect(_endpoint);
            _engineVersion = await client.VersionAsync(cancellationToken).ConfigureAwait(false);
            await ResyncAsync(client, cancellationToken).ConfigureAwait(false);
            return State(up: true, problem: null);
        }
        catch (Exception ex) when (IsDockerFailure(ex, cancellationToken))
        {
            return new DockerState { Up = false, Problem = Describe(ex) };
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_options.Enabled)
        {
            return; // docker.enabled is false: no inventory, no container series
        }

        var backoff = BackoffMin;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunConnectedAsync(() => backoff = BackoffMin, stoppingToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (IsDockerFailure(ex, stoppingToken))
            {
                if (!IsTransportFailure(ex))
                {
                    // Not Docker being away: a bug or a surprise. Counted and logged once per cause, with its stack trace.
                    _loops?.Failed(LoopName, ex);
                }

                var problem = Describe(ex);
                _containers.Clear();
                Publish(up: false, problem);
                if (_wasUp)
                {
                    ContainersLog.StreamEnded(_logger, problem);
                }

                if (_wasUp || problem != _lastProblem)
                {
                    ContainersLog.Unavailable(_logger, _endpoint.ToString(), problem, backoff);
                }

                _wasUp = false;
                _lastProblem = problem;
            }

            try
            {
                await Task.Delay(backoff, _time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, BackoffMax.Ticks));
        }
    }

    private async Task RunConnectedAsync(Action connected, CancellationToken stoppingToken)
    {
        using var client = _engines.Connect(_endpoint);
        using var versionTimeout = Timeout(stoppingToken);
        _engineVersion = await client.VersionAsync(versionTimeout.Token).ConfigureAwait(false);

        // Subscribe before listing, so no change between the list and the stream is missed.
        var events = Channel.CreateUnbounded<Message>(new UnboundedChannelOptions { SingleReader = true });
        using var streamStop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var parameters = new ContainerEventsParameters
        {
            Since = _lastEventSince ?? UnixSeconds(_time.GetUtcNow()),
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["type"] = new Dictionary<string, bool> { ["container"] = true } },
        };
        var stream = client.MonitorEventsAsync(parameters, new ChannelProgress(events.Writer), streamStop.Token);

        try
        {
            await ResyncAsync(client, stoppingToken).ConfigureAwait(false);
            Publish(up: true, problem: null);
            connected();
            _loops?.Succeeded(LoopName);
            if (!_wasUp)
            {
                ContainersLog.Connected(_logger, _endpoint.ToString(), _engineVersion ?? "?", _containers.Count);
            }

            _wasUp = true;
            _lastProblem = null;

            var nextResync = _time.GetUtcNow() + _options.ResyncInterval;
            while (true)
            {
                var wait = nextResync - _time.GetUtcNow();
                using var tick = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                var delay = Task.Delay(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, _time, tick.Token);
                var readable = events.Reader.WaitToReadAsync(tick.Token).AsTask();
                var finished = await Task.WhenAny(readable, delay, stream).ConfigureAwait(false);
                await tick.CancelAsync().ConfigureAwait(false);
                stoppingToken.ThrowIfCancellationRequested();

                var changed = false;
                while (events.Reader.TryRead(out var message))
                {
                    changed |= await HandleAsync(client, message, stoppingToken).ConfigureAwait(false);
                }

                if (finished == stream)
                {
                    await stream.ConfigureAwait(false); // rethrows the stream's failure
                    throw new IOException("the Docker event stream closed");
                }

                if (_time.GetUtcNow() >= nextResync)
                {
                    await ResyncAsync(client, stoppingToken).ConfigureAwait(false);
                    nextResync = _time.GetUtcNow() + _options.ResyncInterval;
                    changed = true;
                }

                if (changed)
                {
                    Publish(up: true, problem: null);
                }
            }
        }
        finally
        {
            await streamStop.CancelAsync().ConfigureAwait(false);
            try
            {
                await stream.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // the stream's own end is not news: the caller decides what to report
            }
        }
    }

    /// <summary>Applies one event. Returns true when the inventory changed.</summary>
    private async Task<bool> HandleAsync(IDockerEngine client, Message message, CancellationToken cancellationToken)
    {
        if (message.TimeNano is { } nanos and > 0)
        {
            _lastEventSince = string.Create(CultureInfo.InvariantCulture, $"{nanos / 1_000_000_000}.{nanos % 1_000_000_000:D9}");
        }

        if (!string.Equals(message.Type, "container", StringComparison.Ordinal) || message.Actor?.ID is not { Length: > 0 } id)
        {
            return false;
        }

        var action = message.Action ?? "";
        var colon = action.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            action = action[..colon]; // "health_status: healthy", "exec_start: sh"
        }

        switch (action)
        {
            case "destroy":
                if (_containers.Remove(id, out var gone))
                {
                    LogEvent(gone, action);
                }

                return gone is not null;
            case "create" or "start" or "restart" or "die" or "stop" or "kill" or "oom" or "pause" or "unpause"
                or "rename" or "update" or "health_status":
                var info = await InspectAsync(client, id, cancellationToken).ConfigureAwait(false);
                if (info is null)
                {
                    return _containers.Remove(id);
                }

                _containers[id] = info;
                if (action is "start" or "die" or "oom")
                {
                    LogEvent(info, action);
                }

                return true;
            default:
                return false; // exec_*, attach, top, resize, …: nothing the inventory shows
        }
    }

    private void LogEvent(ContainerInfo info, string action)
    {
        if (info.InstanceId is { } instance)
        {
            ContainersLog.ContainerEvent(_logger, info.Name, "instance " + instance.ToString(CultureInfo.InvariantCulture), action);
        }
    }

    private async Task ResyncAsync(IDockerEngine client, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        try
        {
            await ResyncCoreAsync(client, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // Published as the collector's duration: list + inspect of new or changed containers.
            _lastResyncDuration = _time.GetElapsedTime(started);
        }
    }

    private async Task ResyncCoreAsync(IDockerEngine client, CancellationToken cancellationToken)
    {
        using var timeout = Timeout(cancellationToken);
        var listed = await client.ListContainersAsync(timeout.Token).ConfigureAwait(false);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var summary in listed)
        {
            seen.Add(summary.ID);
            var name = summary.Names?.FirstOrDefault()?.TrimStart('/') ?? summary.ID[..12];
            if (_containers.TryGetValue(summary.ID, out var known) && known.State == summary.State && known.Name == name)
            {
                continue; // unchanged since the last inspect (events keep the details current)
            }

            var info = await InspectAsync(client, summary.ID, cancellationToken).ConfigureAwait(false);
            if (info is not null)
            {
                _containers[summary.ID] = info;
            }
        }

        foreach (var id in _containers.Keys.Where(k => !seen.Contains(k)).ToList())
        {
            _containers.Remove(id);
        }

    }

    private async Task<ContainerInfo?> InspectAsync(IDockerEngine client, string id, CancellationToken cancellationToken)
    {
        using var timeout = Timeout(cancellationToken);
        var inspect = await client.InspectAsync(id, timeout.Token).ConfigureAwait(false);
        return inspect is null ? null : ToInfo(inspect, _options.ExportLabels); // null: removed between the event and the inspect
    }

    internal static ContainerInfo ToInfo(ContainerInspectResponse inspect, IReadOnlyList<string> exportLabels)
    {
        var name = (inspect.Name ?? "").TrimStart('/');
        var state = inspect.State;
        var status = state?.Status ?? "unknown";
        var running = state?.Running == true;
        var host = inspect.HostConfig;
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (inspect.Config?.Labels is { } all)
        {
            foreach (var key in exportLabels)
            {
                if (all.TryGetValue(key, out var value))
                {
                    labels[key] = value;
                }
            }
        }

        var requests = host?.DeviceRequests?.Select(r => (
            (string?)r.Driver,
            r.Count,
            (IReadOnlyList<string>?)r.DeviceIDs?.ToList(),
            (IReadOnlyList<IReadOnlyList<string>>?)r.Capabilities?.Select(c => (IReadOnlyList<string>)c.ToList()).ToList()));

        double? cpus = host is null ? null
            : host.NanoCPUs > 0 ? host.NanoCPUs / 1e9
            : host.CPUQuota > 0 && host.CPUPeriod > 0 ? (double)host.CPUQuota / host.CPUPeriod
            : null;

        return new ContainerInfo
        {
            Id = inspect.ID,
            Name = name,
            InstanceId = VastNames.InstanceId(name),
            Image = inspect.Config?.Image ?? inspect.Image ?? "",
            ImageDigest = inspect.ImageManifestDescriptor?.Digest is { Length: > 0 } digest ? digest : inspect.Image is { Length: > 0 } image ? image : null,
            State = status,
            CreatedAt = inspect.Created == default ? null : new DateTimeOffset(DateTime.SpecifyKind(inspect.Created, DateTimeKind.Utc)),
            StartedAt = ParseDockerTime(state?.StartedAt),
            FinishedAt = ParseDockerTime(state?.FinishedAt),
            RestartCount = inspect.RestartCount,
            OomKilled = state?.OOMKilled == true,
            ExitCode = running || status is "created" ? null : state?.ExitCode,
            Health = state?.Health?.Status is { Length: > 0 } h && h != "none" ? h : null,
            Pid = running ? (int)(state?.Pid ?? 0) : 0,
            MemoryLimitBytes = host?.Memory > 0 ? host.Memory : null,
            CpuLimitCores = cpus,
            Labels = labels,
            Gpus = GpuAssignment.Parse(requests, inspect.Config?.Env, host?.Devices?.Select(d => d.PathOnHost)),
        };
    }

    /// <summary>Docker times are RFC 3339 with up to 9 fractional digits; "0001-01-01T00:00:00Z" means never.</summary>
    internal static DateTimeOffset? ParseDockerTime(string? text)
    {
        if (string.IsNullOrEmpty(text) || text.StartsWith("0001-01-01", StringComparison.Ordinal))
        {
            return null;
        }

        var dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot > 0)
        {
            var end = dot + 1;
            while (end < text.Length && char.IsAsciiDigit(text[end]))
            {
                end++;
            }

            if (end - dot - 1 > 7)
            {
                text = string.Concat(text.AsSpan(0, dot + 8), text.AsSpan(end));
            }
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed) ? parsed.ToUniversalTime() : null;
    }

    private DockerState State(bool up, string? problem) => new()
    {
        Up = up,
        Problem = problem,
        EngineVersion = _engineVersion,
        Containers = [.. _containers.Values.OrderBy(c => c.Name, StringComparer.Ordinal)],
    };

    private void Publish(bool up, string? problem)
    {
        var state = State(up, problem);
        var now = _time.GetUtcNow();
        var staleAfter = SamplingService.StaleAfter(_options.ResyncInterval);
        _store.Update(s =>
        {
            var status = new CollectorStatus(CollectorName, now, up ? now : s.Collectors.GetValueOrDefault(CollectorName)?.LastSuccess, _lastResyncDuration, up, problem, staleAfter);
            return s.WithDocker(state) with { Timestamp = now, Collectors = s.Collectors.SetItem(CollectorName, status) };
        });
    }

    /// <summary>A call's timeout on the TimeProvider, linked to <paramref name="cancellationToken"/>.</summary>
    private CallTimeoutScope Timeout(CancellationToken cancellationToken) => new(CallTimeout, _time, cancellationToken);

    private sealed class CallTimeoutScope : IDisposable
    {
        private readonly CancellationTokenSource _timeout;
        private readonly CancellationTokenSource _linked;

        public CallTimeoutScope(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
        {
            _timeout = new CancellationTokenSource(timeout, time);
            _linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _timeout.Token);
        }

        public CancellationToken Token => _linked.Token;

        public void Dispose()
        {
            _linked.Dispose();
            _timeout.Dispose();
        }
    }

    private static bool IsTransportFailure(Exception ex) =>
        ex is DockerApiException or HttpRequestException or IOException or System.Net.Sockets.SocketException or TimeoutException or OperationCanceledException;

    private static bool IsDockerFailure(Exception ex, CancellationToken stoppingToken) =>
        !stoppingToken.IsCancellationRequested && ex is not OutOfMemoryException;

    private string Describe(Exception ex) => ex switch
    {
        System.Net.Sockets.SocketException or HttpRequestException when ex.GetBaseException() is System.Net.Sockets.SocketException s
            => $"cannot connect to {_endpoint}: {s.Message}",
        OperationCanceledException => $"no answer from {_endpoint} within {CallTimeout.TotalSeconds:0} s",
        _ => ex.GetBaseException().Message,
    };

    private static string UnixSeconds(DateTimeOffset at) => at.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);

    /// <summary>Writes events straight into the channel, in order (Progress&lt;T&gt; would post them to the thread pool).</summary>
    private sealed class ChannelProgress(ChannelWriter<Message> writer) : IProgress<Message>
    {
        public void Report(Message value) => writer.TryWrite(value);
    }
}
