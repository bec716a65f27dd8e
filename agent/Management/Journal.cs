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

    /// <summary>The last <paramref name="count"/> entries (newest last). Damaged lines (a torn write at a power cut) are skipped.</summary>
    public IReadOnlyList<JournalEntry> Tail(int count)
    {
        lock (_gate)
        {
            if (!File.Exists(Path))
            {
                return [];
            }

            return [.. Parse(File.ReadLines(Path)).TakeLast(count)];
        }
    }

    /// <summary>
    /// Why the agent itself unlisted machine <paramref name="machineId"/>, when the last listing change it applied
    /// (in this journal and its first rotation) was an unlist; null when it was a listing or there is none.
    /// </summary>
    public string? LastUnlistByAgent(long machineId)
    {
        lock (_gate)
        {
            foreach (var file in new[] { Path, $"{Path}.1" })
            {
                if (!File.Exists(file))
                {
                    continue;
                }

                foreach (var entry in Parse(File.ReadLines(file)).Reverse())
                {
                    if (entry is not { Kind: "mutation", Result: "applied" } || (entry.MachineId is { } m && m != machineId))
                    {
                        continue;
                    }

                    var text = entry.Explanation ?? "";
                    var endpoint = entry.Endpoint ?? text.Split(':', 2)[0];
                    if (endpoint == "unlist")
                    {
                        return text.StartsWith("unlist: ", StringComparison.Ordinal) ? text["unlist: ".Length..] : "unlisted by the agent";
                    }

                    if (endpoint == "create_asks")
                    {
                        return null;
                    }
                }
            }

            return null;
        }
    }

    private static IEnumerable<JournalEntry> Parse(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            JournalEntry? entry = null;
            try
            {
                entry = JsonSerializer.Deserialize(line, ManagementJsonContext.Default.JournalEntry);
            }
            catch (JsonException)
            {
                // a torn or damaged line: skipped
            }

            if (entry is not null)
            {
                yield return entry;
            }
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

/// <summary>
/// Builds journal lines. Schema (docs/journal.md): <c>time</c>, <c>kind</c> (a listing field, <c>mutation</c>,
/// <c>maintenance window</c>, <c>fault guard</c>, <c>maintenance hook</c>, <c>reconcile</c>, <c>state</c>),
/// <c>action</c>, <c>reason</c>, optional <c>rule</c>, <c>old</c>, <c>new</c>, <c>dryRun</c>, <c>result</c>
/// (for mutations one of <see cref="MutationResults"/>' names), <c>explanation</c>, <c>inputs</c>,
/// <c>machineId</c>, <c>endpoint</c>.
/// </summary>
public static class JournalEntries
{
    /// <summary>A decision line; a change decided in dry-run gets the result "dry_run".</summary>
    public static JournalEntry Entry(DateTimeOffset at, string kind, string action, string reason, bool dryRun, string? explanation,
        string? old = null, string? @new = null, string? rule = null, JournalInputs? inputs = null, string? result = null,
        long? machineId = null, string? endpoint = null) => new()
        {
            Time = at,
            Kind = kind,
            Action = action,
            Reason = reason,
            Rule = rule,
            Old = old,
            New = @new,
            DryRun = dryRun,
            Result = result ?? (dryRun && action == "change" ? "dry_run" : null),
            Explanation = explanation,
            Inputs = inputs,
            MachineId = machineId,
            Endpoint = endpoint,
        };

    /// <summary>
    /// A mutation line: <c>action</c> is <c>call</c> when the request went out to Vast and <c>skip</c> when it did not;
    /// <c>reason</c> and <c>result</c> are the result's name.
    /// </summary>
    public static JournalEntry Mutation(DateTimeOffset at, long machineId, string endpoint, MutationResult result, bool dryRun, string explanation) =>
        Entry(at, "mutation", result.Sent() ? "call" : "skip", result.Name(), dryRun, explanation, result: result.Name(), machineId: machineId, endpoint: endpoint);
}
