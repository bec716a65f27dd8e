using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace VastHostAgent.Hosting;

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

    public SamplingService(IEnumerable<ISnapshotSource> sources, SnapshotStore store, TimeProvider time, ILogger<SamplingService> logger)
        : this(sources, [], store, time, logger)
    {
    }

    public SamplingService(IEnumerable<ISnapshotSource> sources, IEnumerable<IEventCollector> eventCollectors, SnapshotStore store, TimeProvider time, ILogger<SamplingService> logger)
    {
        _sources = [.. sources.Where(s => s.Enabled)];
        _eventCollectors = [.. eventCollectors.Where(c => c.Enabled).Select(c => c.Name)];
        _store = store;
        _time = time;
        _logger = logger;
    }

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
        if (threw && (previous is null || previous.Ok || previous.Problem != result.Problem))
        {
            Log.CollectorFailing(_logger, source.Name, result.Problem ?? "unknown");
        }
        else if (result.Ok && previous is { Ok: false })
        {
            Log.CollectorRecovered(_logger, source.Name);
        }

        return status;
    }

    /// <summary>A success older than this is no longer recent: three intervals, and at least the interval plus 10 s.</summary>
    public static TimeSpan StaleAfter(TimeSpan interval) =>
        TimeSpan.FromTicks(Math.Max(interval.Ticks * 3, (interval + TimeSpan.FromSeconds(10)).Ticks));

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(_sources.Select(source => Task.Run(() => LoopAsync(source, stoppingToken), stoppingToken)));

    private async Task LoopAsync(ISnapshotSource source, CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(source.Interval, _time);
        try
        {
            do
            {
                await RunOnceAsync(source, stoppingToken).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // shutting down
        }
    }

    private static partial class Log
    {
        [LoggerMessage(100, LogLevel.Warning, "Collector {Collector} failing: {Problem}")]
        public static partial void CollectorFailing(ILogger logger, string collector, string problem);

        [LoggerMessage(101, LogLevel.Information, "Collector {Collector} recovered")]
        public static partial void CollectorRecovered(ILogger logger, string collector);
    }
}
