using System.Text.Json.Serialization;
using Cronos;
using Microsoft.Extensions.Logging;
using VastHostAgent.Kernel;
using VastHostAgent.Management;

namespace VastHostAgent.Maintenance;

/// <summary>States of a maintenance window, in order. Every step is persisted before the next.</summary>
public static class WindowState
{
    /// <summary>Known; the offer end date is being clamped so no new contract outlives the start.</summary>
    public const string Planned = "planned";

    /// <summary>The offer end date no longer reaches past the start.</summary>
    public const string Clamped = "clamped";

    /// <summary>A contract would still run at the start: moved past its end (policy defer).</summary>
    public const string Deferred = "deferred";

    /// <summary>Renters notified on Vast (dnotify).</summary>
    public const string Scheduled = "scheduled";

    /// <summary>In maintenance: default job removed, machine unlisted (when configured).</summary>
    public const string Active = "active";

    /// <summary>Over: listing, end date and default job restored.</summary>
    public const string Done = "done";

    /// <summary>Cancelled (restored, and cancel_maint called when it was scheduled on Vast).</summary>
    public const string Cancelled = "cancelled";

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal) { Planned, Clamped, Deferred, Scheduled, Active, Done, Cancelled };

    public static bool IsOpen(string state) => state is not (Done or Cancelled);
}

/// <summary>One transition, for `maint list` and the journal.</summary>
public sealed record WindowTransition(DateTimeOffset At, string From, string To, string Why);

/// <summary>A maintenance window and where it is in its life.</summary>
public sealed record MaintenanceWindow
{
    public required string Id { get; init; }

    /// <summary>config, cli, or recurring.</summary>
    public required string Source { get; init; }

    public required DateTimeOffset Start { get; init; }

    public required TimeSpan Duration { get; init; }

    public required string Category { get; init; }

    [JsonRequired]
    public string State { get; init; } = WindowState.Planned;

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

    public MaintenanceWindow To(string state, DateTimeOffset at, string why) =>
        this with { State = state, Why = why, History = [.. History, new WindowTransition(at, State, state, why)] };
}

/// <summary>All windows, as persisted in <c>{stateDirectory}/maintenance.json</c>.</summary>
public sealed record MaintenanceBook
{
    [JsonRequired]
    public IReadOnlyList<MaintenanceWindow> Windows { get; init; } = [];

    /// <summary>The window that constrains the listing now: the earliest open one.</summary>
    public MaintenanceWindow? Current => Windows.Where(w => WindowState.IsOpen(w.State)).OrderBy(w => w.Start).FirstOrDefault();
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

            if (w.Duration <= TimeSpan.Zero || !WindowState.All.Contains(w.State) || w.History is null)
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
