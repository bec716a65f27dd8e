using System.Globalization;
using System.Text.RegularExpressions;
using VastHostAgent.Vast;

namespace VastHostAgent.Fleet;

/// <summary>Which entry of <c>fleet.machines</c> manages a machine, if any.</summary>
/// <param name="Machine">The machine as read.</param>
/// <param name="Entry">The index of the one entry that selects it; null when none does or several do.</param>
/// <param name="Conflict">The entries that claim it when more than one does (the machine is then left alone).</param>
public sealed record MachineMatch(VastMachine Machine, int? Entry, IReadOnlyList<int> Conflict)
{
    public bool Managed => Entry is not null;
}

/// <summary>The account's machines sorted by what manages them. Pure.</summary>
public sealed record FleetSelection(IReadOnlyList<MachineMatch> Machines, IReadOnlyList<int> MatchesPerEntry)
{
    public int Managed => Machines.Count(m => m.Managed);

    public int Conflicts => Machines.Count(m => m.Conflict.Count > 0);

    public int ReadOnly => Machines.Count - Managed - Conflicts;

    public static FleetSelection Select(IReadOnlyList<VastMachine> machines, IReadOnlyList<MachineSelector> entries)
    {
        var patterns = entries.Select(e => string.IsNullOrWhiteSpace(e.Hostname) ? null : Glob(e.Hostname)).ToList();
        var counts = new int[entries.Count];
        var result = new List<MachineMatch>(machines.Count);
        foreach (var machine in machines)
        {
            var claims = new List<int>(1);
            for (var i = 0; i < entries.Count; i++)
            {
                if (Matches(entries[i], patterns[i], machine))
                {
                    claims.Add(i);
                    counts[i]++;
                }
            }

            result.Add(claims.Count == 1 ? new MachineMatch(machine, claims[0], []) : new MachineMatch(machine, null, claims.Count > 1 ? claims : []));
        }

        return new FleetSelection(result, counts);
    }

    /// <summary>How an entry reads in messages: <c>fleet.machines[2] (hostname rig-*)</c>.</summary>
    public static string Describe(IReadOnlyList<MachineSelector> entries, int index)
    {
        var e = entries[index];
        var parts = new List<string>();
        if (e.Ids.Count > 0)
        {
            parts.Add("ids " + string.Join(",", e.Ids.Select(i => i.ToString(CultureInfo.InvariantCulture))));
        }

        if (!string.IsNullOrWhiteSpace(e.Hostname))
        {
            parts.Add("hostname " + e.Hostname);
        }

        if (!string.IsNullOrWhiteSpace(e.GpuModel))
        {
            parts.Add("gpuModel " + e.GpuModel);
        }

        return string.Create(CultureInfo.InvariantCulture, $"fleet.machines[{index}] ({string.Join(", ", parts)})");
    }

    private static bool Matches(MachineSelector e, Regex? hostname, VastMachine m) =>
        (e.Ids.Count > 0 || hostname is not null || !string.IsNullOrWhiteSpace(e.GpuModel))
        && (e.Ids.Count == 0 || e.Ids.Contains(m.EffectiveId))
        && (hostname is null || (m.Hostname is { } h && hostname.IsMatch(h.Trim())))
        && (string.IsNullOrWhiteSpace(e.GpuModel) || string.Equals(e.GpuModel.Trim(), m.GpuName?.Trim(), StringComparison.OrdinalIgnoreCase));

    private static Regex Glob(string glob) =>
        new("^" + Regex.Escape(glob.Trim()).Replace("\\*", ".*", StringComparison.Ordinal).Replace("\\?", ".", StringComparison.Ordinal) + "$",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
}
