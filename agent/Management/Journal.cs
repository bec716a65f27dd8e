using System.Text;
using System.Text.Json;

namespace VastHostAgent.Management;

/// <summary>
/// Append-only JSON-lines journal of every decision (<c>{stateDirectory}/journal.jsonl</c>). When the file
/// passes <c>management.journalMaxBytes</c> it rotates to journal.jsonl.1 … .3 (the oldest is dropped).
/// </summary>
public sealed class DecisionJournal(string stateDirectory, long maxBytes)
{
    private const int Keep = 3;
    private readonly Lock _gate = new();

    public string Path { get; } = System.IO.Path.Combine(stateDirectory, "journal.jsonl");

    public void Write(IEnumerable<JournalEntry> entries)
    {
        var text = new StringBuilder();
        foreach (var entry in entries)
        {
            text.Append(JsonSerializer.Serialize(entry, ManagementJsonContext.Default.JournalEntry)).Append('\n');
        }

        if (text.Length == 0)
        {
            return;
        }

        lock (_gate)
        {
            Directory.CreateDirectory(stateDirectory);
            if (File.Exists(Path) && new FileInfo(Path).Length + text.Length > maxBytes)
            {
                Rotate();
            }

            File.AppendAllText(Path, text.ToString());
        }
    }

    /// <summary>The last <paramref name="count"/> entries (newest last).</summary>
    public IReadOnlyList<JournalEntry> Tail(int count)
    {
        lock (_gate)
        {
            if (!File.Exists(Path))
            {
                return [];
            }

            return [.. File.ReadLines(Path).TakeLast(count).Select(l => JsonSerializer.Deserialize(l, ManagementJsonContext.Default.JournalEntry)!)];
        }
    }

    private void Rotate()
    {
        var oldest = $"{Path}.{Keep}";
        if (File.Exists(oldest))
        {
            File.Delete(oldest);
        }

        for (var i = Keep - 1; i >= 1; i--)
        {
            var from = $"{Path}.{i}";
            if (File.Exists(from))
            {
                File.Move(from, $"{Path}.{i + 1}");
            }
        }

        File.Move(Path, $"{Path}.1");
    }
}
