using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using VastHostAgent.Kernel;

namespace VastHostAgent.Management;

/// <summary>
/// What the agent remembers across restarts (state directory, written atomically): what it last applied
/// and when, whether it unlisted the machine itself, occupancy history for idle/busy pricing, recent
/// mutations for the hourly budget, and a write-ahead note of a mutation in flight.
/// </summary>
public sealed record ManagementState
{
    public long? MachineId { get; init; }

    /// <summary>This host's Vast host id (learned from its own offers), to exclude the whole fleet from peers.</summary>
    public long? HostId { get; init; }

    public DateTimeOffset? FirstSeenAt { get; init; }

    /// <summary>Last time any GPU of the machine was rented.</summary>
    public DateTimeOffset? LastBusyAt { get; init; }

    /// <summary>Since when the occupancy has been at or above the busy target (null when below).</summary>
    public DateTimeOffset? BusySince { get; init; }

    public DateTimeOffset? LastPriceChangeAt { get; init; }

    public AppliedListing? LastApplied { get; init; }

    /// <summary>Set when the agent itself unlisted the machine (maintenance, fault guard), with why.</summary>
    public string? UnlistedByAgentReason { get; init; }

    /// <summary>Times of recent mutations (pruned to the last hour).</summary>
    [JsonRequired]
    public IReadOnlyList<DateTimeOffset> Mutations { get; init; } = [];

    /// <summary>A mutation the agent started and has not seen an answer to (write-ahead, cleared after the answer).</summary>
    public PendingMutation? Pending { get; init; }

    /// <summary>
    /// A mutation whose outcome is unknown (no answer, or the agent stopped while it was in flight): no further
    /// mutation of the machine until a machine read taken at or after <see cref="UnknownOutcome.Until"/> shows what happened.
    /// </summary>
    public UnknownOutcome? Unknown { get; init; }
}

/// <summary>The quarantine after a mutation with an unknown outcome.</summary>
/// <param name="At">When the mutation was sent.</param>
/// <param name="Endpoint">Its endpoint name.</param>
/// <param name="Summary">What it asked for.</param>
/// <param name="Until">No mutation before a machine read taken at or after this time (a slow server may still apply it until then).</param>
public sealed record UnknownOutcome(DateTimeOffset At, string Endpoint, string Summary, DateTimeOffset Until);

/// <summary>The listing the agent last sent, and why.</summary>
/// <remarks>Optional values last, with defaults: the file omits nulls, and a positional parameter without a default is required when read.</remarks>
public sealed record AppliedListing(DateTimeOffset At, string Why, double? PriceGpu = null, double? MinBid = null, double? EndDate = null, string? Duration = null);

/// <summary>A mutation in flight: on restart it means "re-read and reconcile", never "send again".</summary>
public sealed record PendingMutation(DateTimeOffset At, string Endpoint, string Summary);

/// <summary>
/// <c>{stateDirectory}/management-state.json</c> through the one state-file type (<see cref="StateFile{T}"/>):
/// locked, atomic, versioned, strict. An unusable file is set aside and the recovery stays pending until the
/// reconcile has re-read the machine and re-established what the agent owns.
/// </summary>
public sealed class ManagementStateStore(string stateDirectory, TimeProvider? time = null, ILogger? logger = null, IStateFileObserver? observer = null)
{
    public const string FileName = "management-state.json";

    private readonly StateFile<ManagementState> _file = new(stateDirectory, FileName, ManagementJsonContext.Default.ManagementState,
        static () => new ManagementState(), Validate, time, logger, observer);

    public string StateDirectory { get; } = stateDirectory;

    /// <summary>The state, with the pending recovery if the file was found unusable.</summary>
    public StateRead<ManagementState> Read() => _file.Read();

    /// <summary>The state (the empty state while a recovery is pending: check <see cref="Read"/> before mutating).</summary>
    public ManagementState Load() => _file.Read().Value;

    public ManagementState Update(Func<ManagementState, ManagementState> change) => _file.Update(change).Value;

    /// <summary>Ends a pending recovery with what was re-established from Vast.</summary>
    public ManagementState Resolve(Func<ManagementState, ManagementState> reestablish) => _file.Resolve(reestablish).Value;

    private static string? Validate(ManagementState state) =>
        state.MachineId is <= 0 ? "machineId must be positive"
        : state.Mutations.Any(t => t == default) ? "a mutation time is missing"
        : null;
}

/// <summary>One journal line: a decision (including "no change") with its inputs, rule, values and result.</summary>
public sealed record JournalEntry
{
    public required DateTimeOffset Time { get; init; }
    public required string Kind { get; init; }
    public required string Action { get; init; }
    public required string Reason { get; init; }
    public string? Rule { get; init; }
    public string? Old { get; init; }
    public string? New { get; init; }
    public required bool DryRun { get; init; }
    public string? Result { get; init; }
    public string? Explanation { get; init; }
    public JournalInputs? Inputs { get; init; }

    /// <summary>The machine the line is about (absent in lines written before version 0.2).</summary>
    public long? MachineId { get; init; }

    /// <summary>For mutations: the Vast endpoint name (create_asks, unlist, dnotify, …).</summary>
    public string? Endpoint { get; init; }
}

/// <summary>The inputs of a pricing decision, summarised.</summary>
public sealed record JournalInputs(
    int? Peers,
    double? MarketValue,
    double? P10,
    double? P50,
    double? P90,
    int RentedGpus,
    int NumGpus,
    double IdleHours,
    string? Market);

/// <summary>Source-generated JSON for the management state and journal.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    RespectNullableAnnotations = true, RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(ManagementState))]
[JsonSerializable(typeof(JournalEntry))]
public sealed partial class ManagementJsonContext : JsonSerializerContext;
