using System.Text.Json.Serialization;

namespace VastHostAgent.Rentals;

/// <summary>
/// One run of a Vast instance (container <c>C.&lt;id&gt;</c>, from a start to the stop that ends it), as one line of
/// <c>rentals.jsonl</c>. A run is written when it starts, now and then while it runs, and when it ends: each line
/// is the whole record as known then, and the last line of a run (<see cref="Run"/>) wins.
/// </summary>
public sealed record RentalRecord
{
    /// <summary>The run's key: the container id (12 hex) and the start, <c>3f2a…-1767225600</c>.</summary>
    public required string Run { get; init; }

    public required long InstanceId { get; init; }

    /// <summary>The Docker container id (64 hex).</summary>
    public required string ContainerId { get; init; }

    public string Image { get; init; } = "";

    /// <summary>Content-addressed image (<c>sha256:…</c>): manifest digest, else Docker's image id.</summary>
    public string? ImageDigest { get; init; }

    /// <summary>GPU UUIDs (Docker's own tokens where no NVML GPU matched, e.g. MIG devices).</summary>
    public IReadOnlyList<string> Gpus { get; init; } = [];

    public DateTimeOffset? CreatedAt { get; init; }

    public required DateTimeOffset StartedAt { get; init; }

    /// <summary>When the run ended; null while it runs.</summary>
    public DateTimeOffset? StoppedAt { get; init; }

    /// <summary>
    /// The end was not seen (the container was removed while the agent was away and Docker kept no event of it):
    /// <see cref="StoppedAt"/> is the last time the agent knew it running.
    /// </summary>
    public bool StopEstimated { get; init; }

    public long? ExitCode { get; init; }

    public bool OomKilled { get; init; }

    /// <summary>Restarts Docker made under the restart policy during the run.</summary>
    public long RestartCount { get; init; }

    /// <summary>GPUs × hours from start to stop (to <see cref="RecordedAt"/> while it runs).</summary>
    public double GpuHours { get; init; }

    /// <summary>Energy the run's GPUs used while the agent watched (NVML's energy counter, else power × time).</summary>
    public double EnergyJoules { get; init; }

    /// <summary>How much of the run the agent watched the GPUs' energy for (seconds).</summary>
    public double MeasuredSeconds { get; init; }

    /// <summary>Peak GPU memory used by the container's processes, all its GPUs together (NVML processes).</summary>
    public ulong? PeakGpuMemoryBytes { get; init; }

    /// <summary>How the agent learned of the run: <c>live</c>, <c>inspect</c> (started while the agent was away) or <c>events</c> (came and went while it was away).</summary>
    public string Source { get; init; } = "live";

    /// <summary>When this line was written.</summary>
    public required DateTimeOffset RecordedAt { get; init; }

    [JsonIgnore]
    public bool Running => StoppedAt is null;

    /// <summary>The run's length: to its stop, or to <paramref name="now"/> while it runs.</summary>
    public TimeSpan Duration(DateTimeOffset now) => ((StoppedAt ?? now) - StartedAt) is { Ticks: > 0 } d ? d : TimeSpan.Zero;

    /// <summary>The run key of a container id and start time.</summary>
    public static string Key(string containerId, DateTimeOffset startedAt) =>
        $"{containerId[..Math.Min(12, containerId.Length)]}-{startedAt.ToUnixTimeSeconds()}";

    /// <summary>Semantic checks of a line read back (beyond its JSON shape); the problem, or null.</summary>
    internal static string? Validate(RentalRecord r) =>
        string.IsNullOrWhiteSpace(r.Run) ? "no run key"
        : string.IsNullOrWhiteSpace(r.ContainerId) ? "no container id"
        : r.InstanceId <= 0 ? "no instance id"
        : r.StoppedAt is { } stop && stop < r.StartedAt ? "stopped before it started"
        : !double.IsFinite(r.GpuHours) || r.GpuHours < 0 || !double.IsFinite(r.EnergyJoules) || r.EnergyJoules < 0 ? "negative or non-finite figures"
        : null;
}

/// <summary>Source-generated JSON of the ledger (strict on read: required members, no unknown shape guessed).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    RespectNullableAnnotations = true, RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(RentalRecord))]
[JsonSerializable(typeof(List<RentalRecord>))]
internal sealed partial class RentalJson : JsonSerializerContext;
