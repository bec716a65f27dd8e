using System.Globalization;
using System.Threading.Channels;
using Docker.DotNet.Models;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;

namespace VastHostAgent.Rentals;

/// <summary>
/// Keeps the rental ledger (<c>docker.ledger</c>): at start it reads <c>rentals.jsonl</c> and replays Docker's events
/// since its last line (runs that came and went while the agent was away), then follows every published snapshot
/// (the Docker inventory's events, the GPU sampler's energy and the container GPU memory), appending a line when a
/// run starts or ends, every <see cref="CheckpointInterval"/> while runs are open, and at shutdown.
/// </summary>
internal sealed class RentalLedgerService : BackgroundService
{
    /// <summary>Open runs are written again this often, so a crash loses at most this much of their energy figures.</summary>
    public static readonly TimeSpan CheckpointInterval = TimeSpan.FromMinutes(30);

    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan FirstSnapshotWait = TimeSpan.FromSeconds(30);
    private const int ReplayAttempts = 5;
    private const int MaxPending = 10_000;

    private readonly DockerOptions _docker;
    private readonly bool _gpuEnabled;
    private readonly SnapshotStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger<RentalLedgerService> _logger;
    private readonly RentalMetrics _metrics;
    private readonly IDockerEngineFactory _engines;
    private readonly RentalLedgerFile _file;
    private readonly RentalTracker _tracker = new();
    private readonly List<RentalRecord> _pending = [];
    private bool _writeFailing;

    public RentalLedgerService(IOptions<DockerOptions> docker, IOptions<GpuOptions> gpu, IOptions<AgentOptions> agent, SnapshotStore store, TimeProvider time,
        ILogger<RentalLedgerService> logger, RentalMetrics metrics, IDockerEngineFactory engines)
    {
        _docker = docker.Value;
        _gpuEnabled = gpu.Value.Enabled;
        _store = store;
        _time = time;
        _logger = logger;
        _metrics = metrics;
        _engines = engines;
        _file = new RentalLedgerFile(agent.Value.StateDirectory, _docker.LedgerMaxBytes, _docker.LedgerFiles);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!_docker.Enabled || !_docker.Ledger)
        {
            return;
        }

        var wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });
        void OnPublished(HostSnapshot _) => wake.Writer.TryWrite(true);
        _store.Published += OnPublished;
        try
        {
            LedgerRead read;
            try
            {
                read = _file.Read();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Unreadable (permissions, an I/O error): the agent keeps running; appends say whether writing works.
                RentalsLog.Unreadable(_logger, _file.Path, ex.Message);
                read = new LedgerRead([], 0, null);
            }

            if (read.Damaged > 0)
            {
                RentalsLog.Damaged(_logger, read.Damaged, read.FirstProblem ?? "?");
                _metrics.Damaged(read.Damaged);
            }

            var runs = read.Runs();
            _tracker.Load(runs, read.LastRecordedAt);
            var since = read.LastRecordedAt;
            RentalsLog.Loaded(_logger, _file.Path, runs.Count, _tracker.Running, since?.ToString("O", CultureInfo.InvariantCulture) ?? "(empty ledger: none)");
            _metrics.Record(RentalStep.None, _tracker.Running);

            await WaitForFirstSnapshotAsync(stoppingToken).ConfigureAwait(false);
            if (since is { } from)
            {
                await ReplayAsync(from, stoppingToken).ConfigureAwait(false);
            }

            var nextCheckpoint = _time.GetUtcNow() + CheckpointInterval;
            while (!stoppingToken.IsCancellationRequested)
            {
                Step();
                var wait = nextCheckpoint - _time.GetUtcNow();
                if (wait <= TimeSpan.Zero)
                {
                    Write(_tracker.Checkpoint(_time.GetUtcNow()));
                    nextCheckpoint = _time.GetUtcNow() + CheckpointInterval;
                    continue;
                }

                using var tick = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                var delay = Task.Delay(wait, _time, tick.Token);
                var readable = wake.Reader.WaitToReadAsync(tick.Token).AsTask();
                await Task.WhenAny(delay, readable).ConfigureAwait(false);
                await tick.CancelAsync().ConfigureAwait(false);
                wake.Reader.TryRead(out _);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping: the checkpoint below
        }
        finally
        {
            _store.Published -= OnPublished;
        }

        // Shutdown: the open runs as they stand, so the next start knows what was measured until now.
        Step();
        Write(_tracker.Checkpoint(_time.GetUtcNow()));
    }

    private void Step()
    {
        var step = _tracker.Observe(_store.Current, _time.GetUtcNow());
        Apply(step);
    }

    private void Apply(RentalStep step)
    {
        foreach (var r in step.Write)
        {
            RentalsLog.Run(_logger, r.Run, r.InstanceId, r.Running
                ? string.Create(CultureInfo.InvariantCulture, $"started at {r.StartedAt:O} on {r.Gpus.Count} GPU(s) ({r.Source})")
                : string.Create(CultureInfo.InvariantCulture,
                    $"ended{(r.StopEstimated ? " (end not seen: estimated)" : "")}: {r.Duration(r.RecordedAt).TotalMinutes:0.#} min, {r.GpuHours:0.###} GPU-h, exit {r.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "?"}{(r.OomKilled ? ", OOM" : "")}"));
        }

        Write(step.Write);
        _metrics.Record(step, _tracker.Running);
    }

    private void Write(IReadOnlyList<RentalRecord> records)
    {
        _pending.AddRange(records);
        if (_pending.Count == 0)
        {
            return;
        }

        if (_pending.Count > MaxPending)
        {
            _pending.RemoveRange(0, _pending.Count - MaxPending);
        }

        try
        {
            _file.Append(_pending);
            _pending.Clear();
            if (_writeFailing)
            {
                RentalsLog.WriteRecovered(_logger, _file.Path);
                _writeFailing = false;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _metrics.WriteFailed();
            if (!_writeFailing)
            {
                RentalsLog.WriteFailed(_logger, _file.Path, ex.Message, _pending.Count);
                _writeFailing = true;
            }
        }
    }

    /// <summary>Waits (bounded) until the inventory and the GPUs have been read once, so GPUs resolve to UUIDs.</summary>
    private async Task WaitForFirstSnapshotAsync(CancellationToken stoppingToken)
    {
        var deadline = _time.GetUtcNow() + FirstSnapshotWait;
        while (_time.GetUtcNow() < deadline)
        {
            var s = _store.Current;
            if (s.Docker is { Up: true } && (!_gpuEnabled || s.Gpu is not null))
            {
                return;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), _time, stoppingToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Docker's events from <paramref name="since"/> (a second before the ledger's last line) to now: starts and
    /// stops of <c>C.&lt;id&gt;</c> containers while the agent was away. Runs found this way are completed from inspect
    /// where Docker still has the container.
    /// </summary>
    private async Task ReplayAsync(DateTimeOffset since, CancellationToken stoppingToken)
    {
        var from = since - TimeSpan.FromSeconds(1);
        var sinceText = from.ToString("O", CultureInfo.InvariantCulture);
        var backoff = TimeSpan.FromSeconds(1);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await ReplayOnceAsync(from, stoppingToken).ConfigureAwait(false);
                return;
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested && ex is not OutOfMemoryException)
            {
                if (attempt >= ReplayAttempts)
                {
                    RentalsLog.ReplayFailed(_logger, sinceText, ex.GetBaseException().Message);
                    return;
                }
            }

            await Task.Delay(backoff, _time, stoppingToken).ConfigureAwait(false);
            backoff *= 2;
        }
    }

    private async Task ReplayOnceAsync(DateTimeOffset from, CancellationToken stoppingToken)
    {
        using var engine = _engines.Connect(_docker.ResolveEndpoint());
        var messages = new List<Message>();
        var until = _time.GetUtcNow();
        var parameters = new ContainerEventsParameters
        {
            Since = UnixTime(from),
            Until = UnixTime(until),
            Filters = new Dictionary<string, IDictionary<string, bool>>
            {
                ["type"] = new Dictionary<string, bool> { ["container"] = true },
                ["event"] = new Dictionary<string, bool> { ["start"] = true, ["die"] = true, ["oom"] = true },
            },
        };
        using (var timeout = new CancellationTokenSource(CallTimeout, _time))
        using (var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, timeout.Token))
        {
            await engine.MonitorEventsAsync(parameters, new ListProgress(messages), linked.Token).ConfigureAwait(false);
        }

        var write = new List<RentalRecord>();
        var started = 0;
        var ended = new List<TimeSpan>();
        var gpuSeconds = 0.0;
        foreach (var m in messages.OrderBy(m => m.TimeNano ?? 0))
        {
            if (m.Actor?.ID is not { Length: > 0 } id || m.Actor.Attributes is not { } attributes || !attributes.TryGetValue("name", out var name))
            {
                continue;
            }

            var at = m.TimeNano is > 0 and { } nanos ? DateTimeOffset.UnixEpoch.AddTicks(nanos / 100) : DateTimeOffset.FromUnixTimeSeconds(m.Time ?? 0);
            var action = (m.Action ?? "").Split(':', 2)[0];
            var step = _tracker.ApplyEvent(action, id, name, at, new Dictionary<string, string>(attributes, StringComparer.Ordinal));
            write.AddRange(step.Write);
            started += step.Started;
            ended.AddRange(step.Ended);
            gpuSeconds += step.GpuSeconds;
        }

        // What events cannot say (GPUs, image digest, creation, OOM): from inspect, where the container is still there.
        var inventory = _store.Current.Gpu is { NvmlUp: true } g ? g.Gpus.Select(x => x.Identity).ToList() : [];
        var details = new Dictionary<string, ContainerInfo?>(StringComparer.Ordinal);
        for (var i = 0; i < write.Count; i++)
        {
            var r = write[i];
            if (!details.TryGetValue(r.ContainerId, out var info))
            {
                using var timeout = new CancellationTokenSource(CallTimeout, _time);
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, timeout.Token);
                var inspect = await engine.InspectAsync(r.ContainerId, linked.Token).ConfigureAwait(false);
                info = inspect is null ? null : DockerInventoryService.ToInfo(inspect, []);
                details[r.ContainerId] = info;
            }

            if (info is null)
            {
                continue;
            }

            var (gpus, unresolved) = GpuAssignment.Resolve(info.Gpus, inventory);
            var sameRun = info.StartedAt is { } s && (s - r.StartedAt).Duration() < TimeSpan.FromSeconds(2);
            write[i] = r with
            {
                Gpus = r.Gpus.Count > 0 ? r.Gpus : [.. gpus.Select(x => x.Uuid), .. unresolved],
                ImageDigest = r.ImageDigest ?? info.ImageDigest,
                CreatedAt = r.CreatedAt ?? info.CreatedAt,
                OomKilled = r.OomKilled || (sameRun && !r.Running && info.OomKilled),
                GpuHours = r.StoppedAt is { } stop ? (gpus.Count + unresolved.Count) * (stop - r.StartedAt).TotalHours : r.GpuHours,
            };
        }

        Apply(new RentalStep(write, started, ended, gpuSeconds));
    }

    private static string UnixTime(DateTimeOffset at)
    {
        var ticks = (at - DateTimeOffset.UnixEpoch).Ticks;
        return string.Create(CultureInfo.InvariantCulture, $"{ticks / TimeSpan.TicksPerSecond}.{ticks % TimeSpan.TicksPerSecond * 100:D9}");
    }

    /// <summary>Collects events in order, on the reporting thread.</summary>
    private sealed class ListProgress(List<Message> messages) : IProgress<Message>
    {
        public void Report(Message value)
        {
            lock (messages)
            {
                messages.Add(value);
            }
        }
    }
}
