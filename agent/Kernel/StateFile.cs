using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Logging;

namespace VastHostAgent.Kernel;

/// <summary>A state file that could not be used: when it was found, what was wrong, where it was moved.</summary>
/// <param name="At">When the agent found the file unusable.</param>
/// <param name="Problem">What was wrong (empty, not JSON, incomplete, …), in words.</param>
/// <param name="SetAsideAs">The file name it was moved to (<c>&lt;name&gt;.corrupt-&lt;UTC time&gt;</c>), null when it could not be moved.</param>
public sealed record StateFileRecovery(DateTimeOffset At, string Problem, string? SetAsideAs);

/// <summary>
/// A state file's content. <see cref="Recovery"/> is set while the file was found unusable and the agent has
/// not yet re-established from Vast what it owns: <see cref="Value"/> is then the empty state, and no mutation
/// may be made for the machine until the owner of the file has re-read Vast and called
/// <see cref="StateFile{T}.Resolve"/>.
/// </summary>
public sealed record StateRead<T>(T Value, StateFileRecovery? Recovery)
    where T : class;

/// <summary>Told about every read of a state file (for status, metrics and health).</summary>
public interface IStateFileObserver
{
    /// <param name="file">The file name (bounded: one per kind of state).</param>
    /// <param name="path">The file's path (a controller has one of each kind per machine).</param>
    /// <param name="recovery">The pending recovery, null when the file is sound.</param>
    /// <param name="resolvedNow">True when a pending recovery was just completed (re-established from Vast).</param>
    void Observed(string file, string path, StateFileRecovery? recovery, bool resolvedNow);
}

/// <summary>
/// One state file of the agent (<c>management-state.json</c>, <c>maintenance.json</c>, <c>fault-guard.json</c>):
/// the one way every piece of persisted state is read and written.
/// <list type="bullet">
/// <item>Every change takes an exclusive cross-process lock (<c>&lt;name&gt;.lock</c>, flock), re-reads, applies the
/// change and writes atomically (temp file, fsync, rename, fsync of the directory), so the daemon and a command
/// run next to it (<c>apply --once</c>, <c>maint schedule</c>) never lose each other's updates.</item>
/// <item>The file carries a schema version: <c>{"schemaVersion":1,"state":{…}}</c> (files written before
/// versioning — the bare state object — are still read, strictly).</item>
/// <item>Reading is strict: an empty, truncated, non-JSON, incomplete (required fields missing, nulls where
/// values are required) or semantically invalid file, or one from a newer schema, is never taken for an empty
/// state. It is moved aside as <c>&lt;name&gt;.corrupt-&lt;UTC time&gt;</c>, logged as an error, and replaced by
/// the empty state with a <em>recovery</em> marker that stays in the file — across restarts and processes —
/// until the owner has re-read Vast and re-established what it owns (<see cref="Resolve"/>).</item>
/// </list>
/// </summary>
public sealed class StateFile<T>
    where T : class
{
    /// <summary>The schema version this agent writes.</summary>
    public const int SchemaVersion = 1;

    /// <summary>A state file never legitimately grows past this; a larger one is not read into memory.</summary>
    public const long MaxBytes = 16L * 1024 * 1024;

    private static readonly TimeSpan LockWait = TimeSpan.FromSeconds(10);

    private readonly JsonTypeInfo<T> _type;
    private readonly Func<T> _empty;
    private readonly Func<T, string?>? _validate;
    private readonly TimeProvider _time;
    private readonly ILogger? _logger;
    private readonly IStateFileObserver? _observer;
    private readonly string _lockPath;
    private readonly Lock _gate = new();

    /// <param name="directory">The state directory.</param>
    /// <param name="fileName">The file name, e.g. <c>maintenance.json</c>.</param>
    /// <param name="type">Source-generated JSON metadata of the state (strict: required members, nullable annotations respected).</param>
    /// <param name="empty">The state before anything happened.</param>
    /// <param name="validate">Semantic checks beyond the JSON shape; returns the problem, or null when valid.</param>
    /// <param name="time">The clock for the time of a recovery.</param>
    /// <param name="logger">Where an unusable file is reported.</param>
    /// <param name="observer">Told about every read (status, metrics).</param>
    public StateFile(string directory, string fileName, JsonTypeInfo<T> type, Func<T> empty, Func<T, string?>? validate = null,
        TimeProvider? time = null, ILogger? logger = null, IStateFileObserver? observer = null)
    {
        Directory = directory;
        FileName = fileName;
        Path = System.IO.Path.Combine(directory, fileName);
        _lockPath = System.IO.Path.Combine(directory, System.IO.Path.GetFileNameWithoutExtension(fileName) + ".lock");
        _type = type;
        _empty = empty;
        _validate = validate;
        _time = time ?? TimeProvider.System;
        _logger = logger;
        _observer = observer;
    }

    public string Directory { get; }

    public string FileName { get; }

    public string Path { get; }

    /// <summary>
    /// Reads the state. A missing file is the empty state. An unusable file is set aside (under the lock) and the
    /// empty state with a recovery marker is written in its place and returned.
    /// </summary>
    public StateRead<T> Read()
    {
        var parsed = Parse();
        if (parsed.Problem is null)
        {
            _observer?.Observed(FileName, Path, parsed.Read!.Recovery, resolvedNow: false);
            return parsed.Read!;
        }

        // Unusable: under the lock (another process may be replacing it right now) look again, then set it aside.
        return Locked(() => ReadOrRecoverLocked(out _));
    }

    /// <summary>
    /// Applies <paramref name="change"/> under the lock and writes the result atomically (not at all when nothing
    /// changed: a controller's thousand machines are not rewritten every cycle). A pending recovery marker is kept.
    /// </summary>
    public StateRead<T> Update(Func<T, T> change) => Locked(() =>
    {
        var current = ReadOrRecoverLocked(out _);
        var next = new StateRead<T>(change(current.Value), current.Recovery);
        if (File.Exists(Path) && (EqualityComparer<T>.Default.Equals(next.Value, current.Value)
            || JsonSerializer.SerializeToUtf8Bytes(next.Value, _type).AsSpan().SequenceEqual(JsonSerializer.SerializeToUtf8Bytes(current.Value, _type))))
        {
            return current;
        }

        WriteLocked(next);
        return next;
    });

    /// <summary>
    /// Ends a recovery: applies <paramref name="reestablish"/> (what the owner re-established from Vast) and clears
    /// the marker. Without a pending recovery it only applies the change.
    /// </summary>
    public StateRead<T> Resolve(Func<T, T> reestablish) => Locked(() =>
    {
        var current = ReadOrRecoverLocked(out _);
        var next = new StateRead<T>(reestablish(current.Value), null);
        WriteLocked(next);
        _observer?.Observed(FileName, Path, null, resolvedNow: current.Recovery is not null);
        return next;
    });

    private StateRead<T> ReadOrRecoverLocked(out bool setAside)
    {
        setAside = false;
        var parsed = Parse();
        if (parsed.Problem is not { } problem)
        {
            _observer?.Observed(FileName, Path, parsed.Read!.Recovery, resolvedNow: false);
            return parsed.Read!;
        }

        var now = _time.GetUtcNow();
        string? movedTo = null;
        try
        {
            movedTo = SetAside(now);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problem += $" (could not be moved aside: {ex.Message})";
        }

        var recovery = new StateFileRecovery(now, problem, movedTo);
        var read = new StateRead<T>(_empty(), recovery);
        if (movedTo is not null)
        {
            WriteLocked(read);
        }

        setAside = true;
        if (_logger is not null)
        {
            StateFileLog.SetAside(_logger, Path, problem, movedTo ?? "(left in place)");
        }

        _observer?.Observed(FileName, Path, recovery, resolvedNow: false);
        return read;
    }

    private string SetAside(DateTimeOffset now)
    {
        var stamp = now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
        var target = $"{Path}.corrupt-{stamp}";
        for (var n = 2; File.Exists(target); n++)
        {
            target = $"{Path}.corrupt-{stamp}-{n}";
        }

        File.Move(Path, target);
        return System.IO.Path.GetFileName(target);
    }

    private (StateRead<T>? Read, string? Problem) Parse()
    {
        byte[] bytes;
        try
        {
            using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            if (!stream.CanSeek || stream.Length > MaxBytes)
            {
                return (null, $"larger than {MaxBytes / (1024 * 1024)} MiB or not a regular file");
            }

            bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
        }
        catch (FileNotFoundException)
        {
            return (new StateRead<T>(_empty(), null), null);
        }
        catch (DirectoryNotFoundException)
        {
            return (new StateRead<T>(_empty(), null), null);
        }

        if (bytes.AsSpan().Trim(" \t\r\n"u8).IsEmpty)
        {
            return (null, "the file is empty");
        }

        try
        {
            using var document = JsonDocument.Parse(bytes);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return (null, $"not a JSON object ({root.ValueKind})");
            }

            StateFileRecovery? recovery = null;
            JsonElement state;
            if (root.TryGetProperty("schemaVersion", out var version))
            {
                if (version.ValueKind != JsonValueKind.Number || !version.TryGetInt32(out var v) || v < 1)
                {
                    return (null, "schemaVersion is not a positive whole number");
                }

                if (v > SchemaVersion)
                {
                    return (null, $"written by a newer agent (schema {v}; this agent reads {SchemaVersion})");
                }

                if (!root.TryGetProperty("state", out state) || state.ValueKind != JsonValueKind.Object)
                {
                    return (null, "incomplete: no state object");
                }

                if (root.TryGetProperty("recovery", out var marker) && marker.ValueKind == JsonValueKind.Object)
                {
                    recovery = new StateFileRecovery(
                        marker.TryGetProperty("at", out var at) && at.TryGetDateTimeOffset(out var when) ? when : DateTimeOffset.UnixEpoch,
                        marker.TryGetProperty("problem", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString()! : "unknown",
                        marker.TryGetProperty("setAsideAs", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null);
                }
            }
            else
            {
                state = root; // written before schema versions: the bare state, read just as strictly
            }

            var value = state.Deserialize(_type);
            if (value is null)
            {
                return (null, "incomplete: the state is null");
            }

            if (_validate?.Invoke(value) is { } invalid)
            {
                return (null, "invalid: " + invalid);
            }

            return (new StateRead<T>(value, recovery), null);
        }
        catch (JsonException ex)
        {
            var what = ex.Message.Split(" Path:", 2)[0].Split(" LineNumber:", 2)[0].TrimEnd('.', ' ');
            return (null, what.Contains("missing required", StringComparison.OrdinalIgnoreCase) || what.Contains("null", StringComparison.OrdinalIgnoreCase)
                ? "incomplete: " + what
                : "not valid JSON (truncated or damaged): " + what);
        }
    }

    private void WriteLocked(StateRead<T> read)
    {
        System.IO.Directory.CreateDirectory(Directory);
        var tmp = $"{Path}.{Environment.ProcessId}.tmp";
        try
        {
            WriteTemporary(tmp, read);
        }
        catch
        {
            // A full disk or a lost permission: the state file itself is untouched; leave no half-written copy.
            File.Delete(tmp);
            throw;
        }

        File.Move(tmp, Path, overwrite: true);
        SyncDirectory();
    }

    private void WriteTemporary(string tmp, StateRead<T> read)
    {
        using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
            {
                writer.WriteStartObject();
                writer.WriteNumber("schemaVersion", SchemaVersion);
                if (read.Recovery is { } r)
                {
                    writer.WriteStartObject("recovery");
                    writer.WriteString("at", r.At);
                    writer.WriteString("problem", r.Problem);
                    if (r.SetAsideAs is { } s)
                    {
                        writer.WriteString("setAsideAs", s);
                    }

                    writer.WriteEndObject();
                }

                writer.WritePropertyName("state");
                JsonSerializer.Serialize(writer, read.Value, _type);
                writer.WriteEndObject();
            }

            stream.Flush(flushToDisk: true);
        }
    }

    /// <summary>fsync of the directory, so the rename itself survives a power cut.</summary>
    private void SyncDirectory()
    {
        try
        {
            using var handle = File.OpenHandle(Directory, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, FileOptions.None);
            RandomAccess.FlushToDisk(handle);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not every file system lets a directory be flushed; the data itself was flushed before the rename.
        }
    }

    private TResult Locked<TResult>(Func<TResult> action)
    {
        lock (_gate)
        {
            System.IO.Directory.CreateDirectory(Directory);
            using var handle = AcquireLock();
            return action();
        }
    }

    private FileStream AcquireLock()
    {
        // A wait for another process (for the few milliseconds of its read-modify-write), not a timing decision
        // of the agent: measured on the real clock, not the TimeProvider (a fake clock would never expire it).
        var deadline = Environment.TickCount64 + (long)LockWait.TotalMilliseconds;
        while (true)
        {
            try
            {
                // FileShare.None takes flock(LOCK_EX|LOCK_NB). Read access is enough, so a lock file root created
                // (a command run with sudo) stays usable by the service user.
                return new FileStream(_lockPath, FileMode.OpenOrCreate, FileAccess.Read, FileShare.None);
            }
            catch (IOException) when (File.Exists(_lockPath) && Environment.TickCount64 < deadline)
            {
                Thread.Sleep(10);
            }
            catch (IOException ex) when (File.Exists(_lockPath))
            {
                throw new IOException($"{_lockPath} has been held by another process for more than {LockWait.TotalSeconds:0} s", ex);
            }
        }
    }
}

/// <summary>
/// What the agent knows about its state files (for <c>status</c>, <c>/healthz</c> and the metrics): which were set
/// aside, and which are still waiting for their owner to re-establish them from Vast.
/// </summary>
public sealed class StateFileHealth(SnapshotStore snapshots) : IStateFileObserver
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (string File, int Recovered, StateFileRecovery? Recovery)> _paths = new(StringComparer.Ordinal);

    public IReadOnlyCollection<StateFileStatus> Files
    {
        get
        {
            lock (_gate)
            {
                return [.. _paths.Values.Select(p => p.File).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select(Aggregate)];
            }
        }
    }

    public void Observed(string file, string path, StateFileRecovery? recovery, bool resolvedNow)
    {
        StateFileStatus next;
        lock (_gate)
        {
            var before = _paths.GetValueOrDefault(path);
            var now = (file, before.Recovered + (resolvedNow ? 1 : 0), recovery);
            if (before.File is not null && before == now)
            {
                return;
            }

            _paths[path] = now;
            next = Aggregate(file);
        }

        snapshots.Update(s => s with { StateFiles = s.StateFiles.SetItem(file, next) });
    }

    /// <summary>The files of one kind together (one in standalone; one per machine on a controller).</summary>
    private StateFileStatus Aggregate(string file)
    {
        var all = _paths.Values.Where(p => p.File == file).ToList();
        var pending = all.Where(p => p.Recovery is not null).ToList();
        return new StateFileStatus(file, all.Sum(p => p.Recovered), pending.Select(p => p.Recovery).FirstOrDefault()) { Recovering = pending.Count };
    }
}

/// <summary>One state file as the agent last saw it.</summary>
/// <param name="File">The file name.</param>
/// <param name="Recovered">How many times this agent re-established it from Vast after it was found unusable (by the agent or a command run next to it).</param>
/// <param name="Recovery">The pending recovery (set aside, not yet re-established from Vast), or null.</param>
public sealed record StateFileStatus(string File, int Recovered, StateFileRecovery? Recovery)
{
    /// <summary>How many files of this kind wait for their recovery (one per machine on a controller).</summary>
    public int Recovering { get; init; } = Recovery is null ? 0 : 1;
}

internal static partial class StateFileLog
{
    [LoggerMessage(130, LogLevel.Error, "State file {Path} is unusable ({Problem}): set aside as {SetAsideAs}. The agent makes no change to the machine until it has re-read Vast and re-established what it owns")]
    public static partial void SetAside(ILogger logger, string path, string problem, string setAsideAs);
}
