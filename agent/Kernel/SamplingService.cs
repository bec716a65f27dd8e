using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace VastHostAgent.Kernel;

/// <summary>
/// Runs every enabled <see cref="ISnapshotSource"/> on its own loop at its own interval, times each run,
/// records its health, and publishes the result into the <see cref="SnapshotStore"/>. One slow or wedged
/// source (a hung driver call) delays only itself.
/// </summary>
public sealed partial class SamplingService : BackgroundService
{
    private readonly IReadOnlyList<ISnapshotSource> _sources;
    private readonly SnapshotStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger<SamplingService> _logger;

    private readonly IReadOnlyList<string> _eventCollectors;
    private readonly LoopHealth? _loops;

    /// <summary>Runs in progress: source name → when the run started (for staleness).</summary>
    private readonly ConcurrentDictionary<string, DateTimeOffset> _running = new(StringComparer.Ordinal);

    /// <summary>Sources currently marked stale (a run has not finished within its stale time).</summary>
    private readonly ConcurrentDictionary<string, bool> _stale = new(StringComparer.Ordinal);

    public SamplingService(IEnumerable<ISnapshotSource> sources, SnapshotStore store, TimeProvider time, ILogger<SamplingService> logger)
        : this(sources, [], store, time, logger)
    {
    }

    public SamplingService(IEnumerable<ISnapshotSource> sources, IEnumerable<IEventCollector> eventCollectors, SnapshotStore store, TimeProvider time, ILogger<SamplingService> logger, LoopHealth? loops = null)
    {
        _sources = [.. sources.Where(s => s.Enabled)];
        _eventCollectors = [.. eventCollectors.Where(c => c.Enabled).Select(c => c.Name)];
        _store = store;
        _time = time;
        _logger = logger;
        _loops = loops;
    }

    /// <summary>How often the staleness of running samplers is checked.</summary>
    public static readonly TimeSpan StalenessCheckInterval = TimeSpan.FromSeconds(1);

    /// <summary>The enabled sources.</summary>
    public IReadOnlyList<ISnapshotSource> Sources => _sources;

    /// <summary>Every enabled collector: the sampled sources and the event-driven ones (health covers them all).</summary>
    public IEnumerable<string> EnabledCollectors => _sources.Select(s => s.Name).Concat(_eventCollectors);

    /// <summary>Runs every enabled source once, in order (the <c>metrics</c> and <c>doctor</c> commands).</summary>
    public async Task<HostSnapshot> CollectOnceAsync(CancellationToken cancellationToken)
    {
        foreach (var source in _sources)
        {
            await RunOnceAsync(source, cancellationToken).ConfigureAwait(false);
        }

        return _store.Current;
    }

    /// <summary>Runs one source once and publishes its result and status.</summary>
    public async Task<CollectorStatus> RunOnceAsync(ISnapshotSource source, CancellationToken cancellationToken)
    {
        _running[source.Name] = _time.GetUtcNow();
        try
        {
            return await RunAndPublishAsync(source, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _running.TryRemove(source.Name, out _);
        }
    }

    private async Task<CollectorStatus> RunAndPublishAsync(ISnapshotSource source, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        SourceResult result;
        var threw = false;
        try
        {
            result = await source.CollectAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            result = SourceResult.Failure($"{ex.GetType().Name}: {ex.Message}", source.Clear);
            threw = true;
        }

        var duration = _time.GetElapsedTime(started);
        var now = _time.GetUtcNow();
        CollectorStatus? previous = null;
        CollectorStatus status = null!;
        _store.Update(snapshot =>
        {
            previous = snapshot.Collectors.GetValueOrDefault(source.Name);
            status = new CollectorStatus(
                source.Name,
                now,
                result.Ok ? now : previous?.LastSuccess,
                duration,
                result.Ok,
                result.Problem,
                StaleAfter(source.Interval));
            var updated = result.Apply(snapshot);
            return updated with { Timestamp = now, Collectors = updated.Collectors.SetItem(source.Name, status) };
        });

        // A source that reports a failure has logged it in its own words; exceptions are logged here, once per new problem.
        var wasStale = _stale.TryRemove(source.Name, out _);
        if (threw && (previous is null || previous.Ok || previous.Problem != result.Problem))
        {
            Log.CollectorFailing(_logger, source.Name, result.Problem ?? "unknown");
        }
        else if (result.Ok && (previous is { Ok: false } || wasStale))
        {
            Log.CollectorRecovered(_logger, source.Name);
        }

        return status;
    }

    /// <summary>
    /// Marks every source whose run has not finished within its stale time (a wedged driver call) as down and its
    /// readings as stale, once, with a log line; the run's eventual result replaces the mark. Returns the sources
    /// marked now.
    /// </summary>
    public IReadOnlyList<string> MarkStalled()
    {
        var now = _time.GetUtcNow();
        var marked = new List<string>();
        foreach (var source in _sources)
        {
            if (!_running.TryGetValue(source.Name, out var started) || _stale.ContainsKey(source.Name))
            {
                continue;
            }

            var stale = StaleAfter(source.Interval);
            var running = now - started;
            if (running <= stale || !_stale.TryAdd(source.Name, true))
            {
                continue;
            }

            var problem = string.Create(CultureInfo.InvariantCulture, $"stalled: a run started {running.TotalSeconds:0} s ago has not finished (stale after {stale.TotalSeconds:0} s); readings are stale");
            _store.Update(snapshot =>
            {
                var previous = snapshot.Collectors.GetValueOrDefault(source.Name);
                var status = new CollectorStatus(source.Name, previous?.LastRun, previous?.LastSuccess, running, false, problem, stale) { Stale = true };
                var updated = source.MarkStale(snapshot, problem);
                return updated with { Timestamp = now, Collectors = updated.Collectors.SetItem(source.Name, status) };
            });
            Log.CollectorStalled(_logger, source.Name, running.TotalSeconds, stale.TotalSeconds);
            marked.Add(source.Name);
        }

        return marked;
    }

    /// <summary>A success older than this is no longer recent: three intervals, and at least the interval plus 10 s.</summary>
    public static TimeSpan StaleAfter(TimeSpan interval) =>
        TimeSpan.FromTicks(Math.Max(interval.Ticks * 3, (interval + TimeSpan.FromSeconds(10)).Ticks));

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(_sources.Select(source => Task.Run(() => LoopAsync(source, stoppingToken), stoppingToken))
            .Append(Task.Run(() => WatchStalenessAsync(stoppingToken), stoppingToken)));

    private async Task LoopAsync(ISnapshotSource source, CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(source.Interval, _time);
        try
        {
            do
            {
                await Supervised(source.Name, async ct => await RunOnceAsync(source, ct).ConfigureAwait(false), stoppingToken).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // shutting down
        }
    }

    private async Task WatchStalenessAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(StalenessCheckInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                await Supervised("staleness", _ =>
                {
                    MarkStalled();
                    return Task.CompletedTask;
                }, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // shutting down
        }
    }

    /// <summary>One iteration under the loop supervisor (or, without one, as is).</summary>
    private Task Supervised(string loop, Func<CancellationToken, Task> iteration, CancellationToken stoppingToken) =>
        _loops is null ? iteration(stoppingToken) : _loops.RunAsync(loop, iteration, stoppingToken);

    private static partial class Log
    {
        [LoggerMessage(100, LogLevel.Warning, "Collector {Collector} failing: {Problem}")]
        public static partial void CollectorFailing(ILogger logger, string collector, string problem);

        [LoggerMessage(101, LogLevel.Information, "Collector {Collector} recovered")]
        public static partial void CollectorRecovered(ILogger logger, string collector);

        [LoggerMessage(102, LogLevel.Warning, "Collector {Collector} stalled: a run has been in progress for {Seconds:0} s (stale after {Stale:0} s; a wedged driver?): marked down, its readings stale")]
        public static partial void CollectorStalled(ILogger logger, string collector, double seconds, double stale);
    }
}
