using System.Text;
using System.Text.Json;

namespace VastHostAgent.Rentals;

/// <summary>What a read of the ledger found: every sound line (oldest first) and how many were damaged.</summary>
/// <param name="Lines">Sound lines, oldest file first, in file order.</param>
/// <param name="Damaged">Lines that could not be used (not JSON, incomplete, invalid, a partial last line): skipped.</param>
/// <param name="FirstProblem">What was wrong with the first damaged line, with its file and line number.</param>
public sealed record LedgerRead(IReadOnlyList<RentalRecord> Lines, int Damaged, string? FirstProblem)
{
    /// <summary>One record per run: the last line of each, in order of start.</summary>
    public IReadOnlyList<RentalRecord> Runs() =>
        [.. Lines.GroupBy(l => l.Run, StringComparer.Ordinal).Select(g => g.Last()).OrderBy(r => r.StartedAt).ThenBy(r => r.Run, StringComparer.Ordinal)];

    /// <summary>When the last line was written (the agent knew the state of its runs until then); null for an empty ledger.</summary>
    public DateTimeOffset? LastRecordedAt => Lines.Count == 0 ? null : Lines.Max(l => l.RecordedAt);
}

/// <summary>
/// The rental ledger on disk: JSON lines in <c>rentals.jsonl</c>, rotated by size into <c>rentals.jsonl.1</c> …
/// Each record is appended with one write and an fsync, so a line is whole or (after a crash mid-write) a partial
/// last line, which the next append closes off and every read skips and counts, as it does any damaged line.
/// One writer (the daemon, which holds the state directory's lock); readers (the <c>rentals</c> command) may read
/// at any time.
/// </summary>
public sealed class RentalLedgerFile
{
    public const string FileName = "rentals.jsonl";

    /// <summary>A longer line is not a record (a record is well under 2 KiB): counted as damaged, not parsed.</summary>
    private const int MaxLineBytes = 64 * 1024;

    private readonly long _maxBytes;
    private readonly int _files;
    private bool? _endsWithNewline;

    /// <param name="directory">The state directory.</param>
    /// <param name="maxBytes">Rotate when an append would take the file past this size.</param>
    /// <param name="files">Files kept, the current one included (at least 2).</param>
    public RentalLedgerFile(string directory, long maxBytes, int files)
    {
        Directory = directory;
        Path = System.IO.Path.Combine(directory, FileName);
        _maxBytes = maxBytes;
        _files = Math.Max(2, files);
    }

    public string Directory { get; }

    public string Path { get; }

    /// <summary>The files that may hold records, oldest first.</summary>
    public IEnumerable<string> FilesOldestFirst()
    {
        for (var n = _files - 1; n >= 1; n--)
        {
            yield return $"{Path}.{n}";
        }

        yield return Path;
    }

    /// <summary>Reads every file; damaged lines are skipped and counted, never thrown. Missing files are empty.</summary>
    public LedgerRead Read()
    {
        var lines = new List<RentalRecord>();
        var damaged = 0;
        string? first = null;
        foreach (var file in FilesOldestFirst())
        {
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(file);
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
            {
                continue;
            }

            var span = bytes.AsSpan();
            var number = 0;
            while (!span.IsEmpty)
            {
                number++;
                var end = span.IndexOf((byte)'\n');
                var complete = end >= 0;
                var line = complete ? span[..end] : span;
                span = complete ? span[(end + 1)..] : [];
                if (line.Trim(" \t\r"u8).IsEmpty)
                {
                    continue; // the newline an append put after a partial line
                }

                RentalRecord? record = null;
                var problem = !complete ? "partial last line (a write cut short)" : Parse(line, out record);
                if (problem is null)
                {
                    lines.Add(record!);
                    continue;
                }

                damaged++;
                first ??= $"{System.IO.Path.GetFileName(file)} line {number}: {problem}";
            }
        }

        return new LedgerRead(lines, damaged, first);
    }

    private static string? Parse(ReadOnlySpan<byte> line, out RentalRecord? record)
    {
        record = null;
        if (line.Length > MaxLineBytes)
        {
            return "longer than a record can be";
        }

        try
        {
            record = JsonSerializer.Deserialize(line, RentalJson.Default.RentalRecord);
        }
        catch (JsonException ex)
        {
            return "not a record: " + ex.Message.Split(" Path:", 2)[0].Split(" LineNumber:", 2)[0].TrimEnd('.', ' ');
        }

        if (record is null)
        {
            return "not a record: null";
        }

        if (RentalRecord.Validate(record) is { } invalid)
        {
            record = null;
            return "invalid: " + invalid;
        }

        return null;
    }

    /// <summary>
    /// Appends records (one write, then fsync), rotating first when the file would grow past its size. Throws
    /// <see cref="IOException"/> or <see cref="UnauthorizedAccessException"/> when the disk refuses: nothing of
    /// the failed write is taken for written.
    /// </summary>
    public void Append(IReadOnlyCollection<RentalRecord> records)
    {
        if (records.Count == 0)
        {
            return;
        }

        System.IO.Directory.CreateDirectory(Directory);
        var buffer = new MemoryStream();
        foreach (var record in records)
        {
            JsonSerializer.Serialize(buffer, record, RentalJson.Default.RentalRecord);
            buffer.WriteByte((byte)'\n');
        }

        var length = FileLength();
        if (length > 0 && length + buffer.Length > _maxBytes)
        {
            Rotate();
            length = 0;
        }

        _endsWithNewline ??= length == 0 || LastByteIsNewline();
        var bytes = _endsWithNewline == true ? buffer.ToArray() : [(byte)'\n', .. buffer.ToArray()];
        using (var stream = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read))
        {
            try
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            catch
            {
                _endsWithNewline = null; // part of it may have reached the file: look again before the next append
                throw;
            }
        }

        _endsWithNewline = true;
    }

    private long FileLength()
    {
        try
        {
            return new FileInfo(Path).Length;
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
    }

    private bool LastByteIsNewline()
    {
        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (stream.Length == 0)
        {
            return true;
        }

        stream.Seek(-1, SeekOrigin.End);
        return stream.ReadByte() == '\n';
    }

    /// <summary>rentals.jsonl → .1 → .2 …; the oldest beyond the count kept is deleted.</summary>
    private void Rotate()
    {
        File.Delete($"{Path}.{_files - 1}");
        for (var n = _files - 2; n >= 1; n--)
        {
            if (File.Exists($"{Path}.{n}"))
            {
                File.Move($"{Path}.{n}", $"{Path}.{n + 1}", overwrite: true);
            }
        }

        if (File.Exists(Path))
        {
            File.Move(Path, $"{Path}.1", overwrite: true);
        }

        _endsWithNewline = true;
        SyncDirectory();
    }

    private void SyncDirectory()
    {
        try
        {
            using var handle = File.OpenHandle(Directory, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, FileOptions.None);
            RandomAccess.FlushToDisk(handle);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not every file system lets a directory be flushed.
        }
    }

    /// <summary>Renders records as lines (for tests and tools).</summary>
    internal static string ToLine(RentalRecord record) => Encoding.UTF8.GetString(JsonSerializer.SerializeToUtf8Bytes(record, RentalJson.Default.RentalRecord));
}
