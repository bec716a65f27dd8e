using System.Text.Json.Serialization;
using Cronos;
using Microsoft.Extensions.Logging;
using VastHostAgent.Kernel;
using VastHostAgent.Management;

namespace VastHostAgent.Maintenance;

/// <summary>
/// The state of a maintenance window, in order (every step is persisted before the next). A small value type
/// rather than a string: only the seven states exist, the state file and output keep the same lower-case words,
/// and a state file naming another word is unreadable (set aside), never taken as a new state.
/// </summary>
[JsonConverter(typeof(WindowStateJsonConverter))]
public readonly record struct WindowState
{
    private readonly string? _name;

    private WindowState(string name) => _name = name;

    /// <summary>Known; the offer end date is being clamped so no new contract outlives the start.</summary>
    public static readonly WindowState Planned = new("planned");

    /// <summary>The offer end date no longer reaches past the start.</summary>
    public static readonly WindowState Clamped = new("clamped");

    /// <summary>A contract would still run at the start: moved past its end (policy defer).</summary>
    public static readonly WindowState Deferred = new("deferred");

    /// <summary>Renters notified on Vast (dnotify).</summary>
    public static readonly WindowState Scheduled = new("scheduled");

    /// <summary>In maintenance: default job removed, machine unlisted (when configured).</summary>
    public static readonly WindowState Active = new("active");

    /// <summary>Over: listing, end date and default job restored.</summary>
    public static readonly WindowState Done = new("done");

    /// <summary>Cancelled (restored, and cancel_maint called when it was scheduled on Vast).</summary>
    public static readonly WindowState Cancelled = new("cancelled");

    public static readonly IReadOnlyList<WindowState> All = [Planned, Clamped, Deferred, Scheduled, Active, Done, Cancelled];

    /// <summary>Not yet done or cancelled.</summary>
    public bool IsOpen => this != Done && this != Cancelled;

    /// <summary>Before the window has been scheduled on Vast (the offer is clamped, or the window deferred).</summary>
    public bool IsBeforeScheduling => this == Planned || this == Clamped || this == Deferred;

    public static bool TryParse(string? name, out WindowState state)
    {
        state = All.FirstOrDefault(s => s._name == name);
        return state._name is not null;
    }

    public override string ToString() => _name ?? "planned";
}

/// <summary>Reads and writes a <see cref="WindowState"/> as its word; any other word is invalid JSON for the book.</summary>
public sealed class WindowStateJsonConverter : JsonConverter<WindowState>
{
    public override WindowState Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
        WindowState.TryParse(reader.GetString(), out var state) ? state : throw new System.Text.Json.JsonException($"unknown window state '{reader.GetString()}'");

    public override void Write(System.Text.Json.Utf8JsonWriter writer, WindowState value, System.Text.Json.JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}

/// <summary>Where a window came from: the configuration, the command line, a recurring entry, or Vast (taken back after its book was unusable).</summary>
[JsonConverter(typeof(WindowSourceJsonConverter))]
public readonly record struct WindowSource
{
    private readonly string? _name;

    private WindowSource(string name) => _name = name;

    public static readonly WindowSource Config = new("config");

    public static readonly WindowSource Cli = new("cli");

    public static readonly WindowSource Recurring = new("recurring");

    public static readonly WindowSource Vast = new("vast");

    public static readonly IReadOnlyList<WindowSource> All = [Config, Cli, Recurring, Vast];

    /// <summary>Windows the configuration does not own (it never cancels them when they are not in it).</summary>
    public bool IsOutsideConfiguration => this == Cli || this == Vast;

    public static bool TryParse(string? name, out WindowSource source)
    {
        source = All.FirstOrDefault(s => s._name == name);
        return source._name is not null;
    }

    public override string ToString() => _name ?? "config";
}

/// <summary>Reads and writes a <see cref="WindowSource"/> as its word.</summary>
public sealed class WindowSourceJsonConverter : JsonConverter<WindowSource>
{
    public override WindowSource Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options) =>
        WindowSource.TryParse(reader.GetString(), out var source) ? source : throw new System.Text.Json.JsonException($"unknown window source '{reader.GetString()}'");

    public override void Write(System.Text.Json.Utf8JsonWriter writer, WindowSource value, System.Text.Json.JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
}

/// <summary>One transition, for `maint list` and the journal.</summary>
public sealed record WindowTransition(DateTimeOffset At, WindowState From, WindowState To, string Why);

/// <summary>A maintenance window and where it is in its life.</summary>
public sealed record MaintenanceWindow
{
    public required string Id { get; init; }

    /// <summary>config, cli, recurring, or vast.</summary>
    public required WindowSource Source { get; init; }

    public required DateTimeOffset Start { get; init; }

    public required TimeSpan Duration { get; init; }

    public required string Category { get; init; }

    [JsonRequired]
    public WindowState State { get; init; } = WindowState.Planned;

    public DateTimeOffset? OriginalStart { get; init; }

    public int Deferrals { get; init; }

    public bool ScheduledOnVast { get; init; }

    /// <summary>Whether the machine was listed before the window (so it is relisted afterwards; a machine the host had unlisted stays unlisted).</summary>
    public bool ListedBefore { get; init; }

    public bool CancelRequested { get; init; }

    public string? Why { get; init; }

    public SavedDefaultJob? SavedDefaultJob { get; init; }

    [JsonRequired]
    public IReadOnlyList<WindowTransition> History { get; init; } = [];

    [JsonIgnore]
    public DateTimeOffset End => Start + Duration;

    public MaintenanceWindow To(WindowState state, DateTimeOffset at, string why) =>
        this with { State = state, Why = why, History = [.. History, new WindowTransition(at, State, state, why)] };
}

/// <summary>All windows, as persisted in <c>{stateDirectory}/maintenance.json</c>.</summary>
public sealed record MaintenanceBook
{
    [JsonRequired]
    public IReadOnlyList<MaintenanceWindow> Windows { get; init; } = [];

    /// <summary>The window that constrains the listing now: the earliest open one.</summary>
    public MaintenanceWindow? Current => Windows.Where(w => w.State.IsOpen).OrderBy(w => w.Start).FirstOrDefault();
}

/// <summary>
/// The maintenance book on disk (<c>{stateDirectory}/maintenance.json</c>), shared by the daemon and the
/// <c>maint</c> commands through the one state-file type (<see cref="StateFile{T}"/>): every change takes the
/// lock, re-reads, applies and writes atomically, so neither side loses the other's change. An unusable book is
/// set aside (never silently emptied) and its recovery stays pending until the reconcile has re-read the
/// machine and taken back the windows Vast shows.
/// </summary>
public sealed class MaintenanceStore(string stateDirectory, TimeProvider? time = null, ILogger? logger = null, IStateFileObserver? observer = null)
{
    public const string FileName = "maintenance.json";

    private readonly StateFile<MaintenanceBook> _file = new(stateDirectory, FileName, MaintenanceJsonContext.Default.MaintenanceBook,
        static () => new MaintenanceBook(), Validate, time, logger, observer);

    /// <summary>The book, with the pending recovery if the file was found unusable.</summary>
    public StateRead<MaintenanceBook> Read() => _file.Read();

    public MaintenanceBook Load() => _file.Read().Value;

    public MaintenanceBook Update(Func<MaintenanceBook, MaintenanceBook> change) => _file.Update(change).Value;

    /// <summary>Ends a pending recovery with the windows re-established from Vast.</summary>
    public MaintenanceBook Resolve(Func<MaintenanceBook, MaintenanceBook> reestablish) => _file.Resolve(reestablish).Value;

    private static string? Validate(MaintenanceBook book)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var w in book.Windows)
        {
            if (string.IsNullOrWhiteSpace(w.Id) || !ids.Add(w.Id))
            {
                return $"window id '{w.Id}' is empty or not unique";
            }

            if (w.Duration <= TimeSpan.Zero || w.History is null)
            {
                return $"window {w.Id}: duration, state or history is not valid";
            }
        }

        return null;
    }
}

/// <summary>Cron (Cronos) and time zone helpers.</summary>
public static class Schedule
{
    public static bool TryParseCron(string text, out CronExpression? expression)
    {
        try
        {
            expression = CronExpression.Parse(text, CronFormat.Standard);
            return true;
        }
        catch (CronFormatException)
        {
            expression = null;
            return false;
        }
    }

    public static bool TryFindZone(string id, out TimeZoneInfo? zone)
    {
        try
        {
            zone = TimeZoneInfo.FindSystemTimeZoneById(id);
            return true;
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            zone = null;
            return false;
        }
    }

    /// <summary>The next occurrence at or after <paramref name="from"/> (UTC), honouring DST in the zone.</summary>
    public static DateTimeOffset? Next(RecurringWindowOptions recurring, DateTimeOffset from) =>
        TryParseCron(recurring.Cron, out var cron) && TryFindZone(recurring.TimeZone, out var zone)
            ? cron!.GetNextOccurrence(from, zone!, inclusive: true)?.ToUniversalTime()
            : null;
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true,
    RespectNullableAnnotations = true, RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(MaintenanceBook))]
[JsonSerializable(typeof(FaultGuardState))]
public sealed partial class MaintenanceJsonContext : JsonSerializerContext;
