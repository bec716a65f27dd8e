namespace VastHostAgent.Kernel;

/// <summary>
/// A sampler: reads one outside source (NVML, hwmon, disk, ...) and produces its part of the snapshot.
/// <see cref="SamplingService"/> runs each enabled source on its own loop, times it, and records its health.
/// </summary>
public interface ISnapshotSource
{
    /// <summary>Bounded collector name used in metrics and health output.</summary>
    string Name { get; }

    bool Enabled { get; }

    TimeSpan Interval { get; }

    /// <summary>Reads the source once. Exceptions count as a failed run; the previous data is then removed.</summary>
    ValueTask<SourceResult> CollectAsync(CancellationToken cancellationToken);

    /// <summary>Removes this source's data from a snapshot (after a failure), so stale series disappear.</summary>
    HostSnapshot Clear(HostSnapshot snapshot);

    /// <summary>Marks this source's data stale (a run has not finished within its stale time). Default: removed, as after a failure.</summary>
    HostSnapshot MarkStale(HostSnapshot snapshot, string problem) => Clear(snapshot);
}

/// <summary>
/// A collector that publishes into the snapshot on its own schedule (an event stream) rather than from
/// <see cref="SamplingService"/>'s loops. Listed so health checks include it.
/// </summary>
public interface IEventCollector
{
    string Name { get; }

    bool Enabled { get; }
}

/// <summary>The outcome of one <see cref="ISnapshotSource.CollectAsync"/>.</summary>
/// <param name="Ok">Whether the source delivered its data.</param>
/// <param name="Problem">What went wrong, for logs, health and the CLI.</param>
/// <param name="Apply">Puts the collected data into a snapshot.</param>
public readonly record struct SourceResult(bool Ok, string? Problem, Func<HostSnapshot, HostSnapshot> Apply)
{
    public static SourceResult Success(Func<HostSnapshot, HostSnapshot> apply) => new(true, null, apply);

    /// <summary>A failed run. The source logs the problem itself (once, not every cycle).</summary>
    public static SourceResult Failure(string problem, Func<HostSnapshot, HostSnapshot> apply) => new(false, problem, apply);
}
