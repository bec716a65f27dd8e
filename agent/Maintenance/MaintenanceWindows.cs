using System.Text.Json;
using System.Text.Json.Serialization;
using Cronos;
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

    public string State { get; init; } = WindowState.Planned;

    public DateTimeOffset? OriginalStart { get; init; }

    public int Deferrals { get; init; }

    public bool ScheduledOnVast { get; init; }

    /// <summary>Whether the machine was listed before the window (so it is relisted afterwards; a machine the host had unlisted stays unlisted).</summary>
    public bool ListedBefore { get; init; }

    public bool CancelRequested { get; init; }

    public string? Why { get; init; }

    public SavedDefaultJob? SavedDefaultJob { get; init; }

    public IReadOnlyList<WindowTransition> History { get; init; } = [];

    [JsonIgnore]
    public DateTimeOffset End => Start + Duration;

    public MaintenanceWindow To(string state, DateTimeOffset at, string why) =>
        this with { State = state, Why = why, History = [.. History, new WindowTransition(at, State, state, why)] };
}

/// <summary>All windows, as persisted in <c>{stateDirectory}/maintenance.json</c>.</summary>
public sealed record MaintenanceBook
{
    public IReadOnlyList<MaintenanceWindow> Windows { get; init; } = [];

    /// <summary>The window that constrains the listing now: the earliest open one.</summary>
    public MaintenanceWindow? Current => Windows.Where(w => WindowState.IsOpen(w.State)).OrderBy(w => w.Start).FirstOrDefault();
}

/// <summary>
/// The maintenance book on disk, shared by the daemon and the <c>maint</c> commands: every change takes an
/// exclusive lock file, re-reads, applies, and writes atomically (temp file, flush, rename), so neither side
/// loses the other's change. The rename needs write access to the directory only, so a book written by
/// root from the command line stays replaceable by the service user.
/// </summary>
public sealed class MaintenanceStore(string stateDirectory)
{
    private readonly string _path = Path.Combine(stateDirectory, "maintenance.json");
    private readonly string _lock = Path.Combine(stateDirectory, "maintenance.lock");

    public MaintenanceBook Load()
    {
        try
        {
            return File.Exists(_path) ? JsonSerializer.Deserialize(File.ReadAllText(_path), MaintenanceJsonContext.Default.MaintenanceBook) ?? new MaintenanceBook() : new MaintenanceBook();
        }
        catch (JsonException)
        {
            File.Move(_path, _path + ".corrupt", overwrite: true);
            return new MaintenanceBook();
        }
    }

    public MaintenanceBook Update(Func<MaintenanceBook, MaintenanceBook> change)
    {
        Directory.CreateDirectory(stateDirectory);
        using var lockFile = AcquireLock();
        var next = change(Load());
        var tmp = $"{_path}.{Environment.ProcessId}.tmp";
        using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(stream, next, MaintenanceJsonContext.Default.MaintenanceBook);
            stream.Flush(flushToDisk: true);
        }

        File.Move(tmp, _path, overwrite: true);
        return next;
    }

    private FileStream AcquireLock()
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                // Read access is enough for the lock (flock), so a lock file root created stays usable by the service user.
                return new FileStream(_lock, FileMode.OpenOrCreate, FileAccess.Read, FileShare.None);
            }
            catch (IOException) when (attempt < 200)
            {
                Thread.Sleep(25); // another process holds the book for a few milliseconds
            }
        }
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

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true)]
[JsonSerializable(typeof(MaintenanceBook))]
[JsonSerializable(typeof(FaultGuardState))]
public sealed partial class MaintenanceJsonContext : JsonSerializerContext;
