using System.Collections.Immutable;

namespace VastHostAgent.Kernel;

/// <summary>Health of one sampler ("collector") as of its last run.</summary>
/// <param name="Name">Bounded collector name: gpu, hwmon, disk, ...</param>
/// <param name="LastRun">When the last run finished.</param>
/// <param name="LastSuccess">When a run last succeeded; null before the first success.</param>
/// <param name="LastDuration">How long the last run took.</param>
/// <param name="Ok">Whether the last run succeeded.</param>
/// <param name="Problem">What went wrong in the last run.</param>
/// <param name="StaleAfter">A success older than this no longer counts as recent (health).</param>
public sealed record CollectorStatus(
    string Name,
    DateTimeOffset? LastRun,
    DateTimeOffset? LastSuccess,
    TimeSpan LastDuration,
    bool Ok,
    string? Problem,
    TimeSpan StaleAfter)
{
    /// <summary>True while a run has been in progress longer than <see cref="StaleAfter"/>: the collector's readings are stale.</summary>
    public bool Stale { get; init; }

    /// <summary>True when the collector succeeded within <see cref="StaleAfter"/> of <paramref name="now"/>.</summary>
    public bool IsHealthy(DateTimeOffset now) => !Stale && LastSuccess is { } s && now - s <= StaleAfter;
}

/// <summary>
/// Everything the samplers know, as one immutable value. Samplers publish new snapshots; the metrics
/// endpoint, health endpoint and CLI only read them. A scrape never reaches NVML, Docker or the Vast API.
/// The kernel knows no feature's data: each feature stores its part by type (<see cref="Part{T}"/>,
/// <see cref="WithPart{T}"/>) and gives it a name with an extension property (<c>snapshot.Gpu</c>,
/// <c>snapshot.WithGpu(…)</c> in the GPU feature, and so on).
/// </summary>
public sealed record HostSnapshot
{
    public static readonly HostSnapshot Empty = new();

    private readonly ImmutableDictionary<Type, object> _parts = ImmutableDictionary<Type, object>.Empty;

    /// <summary>Increases with every published change.</summary>
    public long Generation { get; init; }

    public DateTimeOffset Timestamp { get; init; }

    /// <summary>The long-running loops that have run under supervision, with their failures.</summary>
    public ImmutableDictionary<string, LoopStatus> Loops { get; init; } =
        ImmutableDictionary<string, LoopStatus>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary>State files found unusable and set aside, and whether their recovery from Vast is still pending.</summary>
    public ImmutableDictionary<string, StateFileStatus> StateFiles { get; init; } =
        ImmutableDictionary<string, StateFileStatus>.Empty.WithComparers(StringComparer.Ordinal);

    public ImmutableDictionary<string, CollectorStatus> Collectors { get; init; } =
        ImmutableDictionary<string, CollectorStatus>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary>A feature's part of the snapshot (null while it has none), keyed by its type.</summary>
    public T? Part<T>()
        where T : class => _parts.TryGetValue(typeof(T), out var value) ? (T)value : null;

    /// <summary>This snapshot with a feature's part replaced (<paramref name="value"/> null removes it).</summary>
    public HostSnapshot WithPart<T>(T? value)
        where T : class => this with { Parts = value is null ? _parts.Remove(typeof(T)) : _parts.SetItem(typeof(T), value) };

    private ImmutableDictionary<Type, object> Parts
    {
        init => _parts = value;
    }
}
