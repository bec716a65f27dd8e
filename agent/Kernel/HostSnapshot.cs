using System.Collections.Immutable;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.Host;
using VastHostAgent.Vast;

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
/// </summary>
public sealed record HostSnapshot
{
    public static readonly HostSnapshot Empty = new();

    /// <summary>Increases with every published change.</summary>
    public long Generation { get; init; }

    public DateTimeOffset Timestamp { get; init; }

    public GpuSample? Gpu { get; init; }

    public IReadOnlyList<HwmonReading>? Sensors { get; init; }

    public DiskSpace? Disk { get; init; }

    /// <summary>Docker and its containers (event-driven); null while Docker is disabled or not yet reached.</summary>
    public DockerState? Docker { get; init; }

    /// <summary>Resource use per running container id, from cgroups.</summary>
    public IReadOnlyDictionary<string, ContainerUsage>? ContainerUsage { get; init; }

    /// <summary>This machine and account as the Vast API reports them; null while the Vast API is off.</summary>
    public VastState? Vast { get; init; }

    /// <summary>GPU memory and processes per container and GPU (NVML processes mapped through /proc).</summary>
    public IReadOnlyList<ContainerGpuProcesses>? ContainerGpuProcesses { get; init; }

    /// <summary>The long-running loops that have run under supervision, with their failures.</summary>
    public ImmutableDictionary<string, LoopStatus> Loops { get; init; } =
        ImmutableDictionary<string, LoopStatus>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary>State files found unusable and set aside, and whether their recovery from Vast is still pending.</summary>
    public ImmutableDictionary<string, StateFileStatus> StateFiles { get; init; } =
        ImmutableDictionary<string, StateFileStatus>.Empty.WithComparers(StringComparer.Ordinal);

    public ImmutableDictionary<string, CollectorStatus> Collectors { get; init; } =
        ImmutableDictionary<string, CollectorStatus>.Empty.WithComparers(StringComparer.Ordinal);
}
