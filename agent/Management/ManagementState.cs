using System.Text.Json;
using System.Text.Json.Serialization;

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
    public IReadOnlyList<DateTimeOffset> Mutations { get; init; } = [];

    /// <summary>A mutation the agent started and has not seen an answer to (write-ahead, cleared after the answer).</summary>
    public PendingMutation? Pending { get; init; }
}

/// <summary>The listing the agent last sent, and why.</summary>
public sealed record AppliedListing(DateTimeOffset At, double? PriceGpu, double? MinBid, double? EndDate, string Why);

/// <summary>A mutation in flight: on restart it means "re-read and reconcile", never "send again".</summary>
public sealed record PendingMutation(DateTimeOffset At, string Endpoint, string Summary);

/// <summary>Loads and saves <see cref="ManagementState"/> atomically (write a temp file, flush, rename).</summary>
public sealed class ManagementStateStore
{
    private readonly string _path;
    private readonly Lock _gate = new();
    private ManagementState? _cached;
    private (DateTime WrittenAt, long Length) _cachedStamp;

    public ManagementStateStore(string stateDirectory)
    {
        StateDirectory = stateDirectory;
        _path = Path.Combine(stateDirectory, "management-state.json");
    }

    public string StateDirectory { get; }

    public ManagementState Load()
    {
        lock (_gate)
        {
            // Another process (`apply --once` next to the daemon) may have written the file: re-read when it changed.
            var file = new FileInfo(_path);
            var stamp = file.Exists ? (file.LastWriteTimeUtc, file.Length) : (DateTime.MinValue, -1L);
            if (_cached is not null && stamp == _cachedStamp)
            {
                return _cached;
            }

            _cachedStamp = stamp;

            try
            {
                _cached = File.Exists(_path)
                    ? JsonSerializer.Deserialize(File.ReadAllText(_path), ManagementJsonContext.Default.ManagementState) ?? new ManagementState()
                    : new ManagementState();
            }
            catch (JsonException)
            {
                // A damaged state file must not stop the agent: keep it aside and start from a clean state
                // (the next reconcile re-reads the machine; nothing is re-applied blindly).
                File.Move(_path, _path + ".corrupt", overwrite: true);
                _cached = new ManagementState();
            }

            return _cached;
        }
    }

    public ManagementState Update(Func<ManagementState, ManagementState> change)
    {
        lock (_gate)
        {
            var next = change(Load());
            Directory.CreateDirectory(StateDirectory);
            var tmp = $"{_path}.{Environment.ProcessId}.tmp";
            using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                JsonSerializer.Serialize(stream, next, ManagementJsonContext.Default.ManagementState);
                stream.Flush(flushToDisk: true);
            }

            File.Move(tmp, _path, overwrite: true);
            _cached = next;
            var file = new FileInfo(_path);
            _cachedStamp = (file.LastWriteTimeUtc, file.Length);
            return next;
        }
    }
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
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ManagementState))]
[JsonSerializable(typeof(JournalEntry))]
public sealed partial class ManagementJsonContext : JsonSerializerContext;
