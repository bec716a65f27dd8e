using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace VastHostAgent.Vast;

/// <summary>The outcome of identifying this machine on Vast.</summary>
public sealed record MachineIdentity(long? MachineId, string? Problem, string? ProblemKind)
{
    public bool Identified => MachineId is not null;
}

/// <summary>
/// Finds this machine's Vast id: <c>vast.machineId</c> when set, else the one machine of the account whose
/// host name matches this host's (or <c>vast.hostname</c>). Absent or ambiguous → a clear problem and no
/// id, so nothing is ever changed on the wrong machine. Never reads /var/lib/vastai_kaalia/machine_id
/// (the Vast daemon's secret key, not the numeric id).
/// </summary>
public sealed class VastMachineLocator(IVastClient client, IOptions<VastOptions> options, ILogger<VastMachineLocator> logger)
{
    private long? _found;
    private string? _lastProblem;

    public async Task<MachineIdentity> IdentifyAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (o.MachineId > 0)
        {
            return new MachineIdentity(o.MachineId, null, null);
        }

        if (_found is { } found)
        {
            return new MachineIdentity(found, null, null);
        }

        var host = string.IsNullOrWhiteSpace(o.Hostname) ? Environment.MachineName : o.Hostname.Trim();
        var machines = await client.GetMachinesAsync(cancellationToken).ConfigureAwait(false);
        var matches = machines.Where(m => HostMatches(m.Hostname, host)).ToList();
        if (matches.Count == 1)
        {
            _found = matches[0].EffectiveId;
            VastLog.MachineIdentified(logger, _found.Value, host, "by host name");
            _lastProblem = null;
            return new MachineIdentity(_found, null, null);
        }

        var (kind, problem) = matches.Count == 0
            ? ("not_found", $"no machine with host name '{host}' among the {machines.Count} machine(s) of this account ({Describe(machines)}); set vast.machineId")
            : ("ambiguous", $"{matches.Count} machines have host name '{host}' ({Describe(matches)}); set vast.machineId");
        if (problem != _lastProblem)
        {
            VastLog.MachineNotIdentified(logger, problem);
            _lastProblem = problem;
        }

        return new MachineIdentity(null, problem, kind);
    }

    /// <summary>Forget a host-name match (e.g. the machine disappeared from the account).</summary>
    public void Reset() => _found = null;

    private static bool HostMatches(string? candidate, string host)
    {
        if (string.IsNullOrWhiteSpace(candidate))
        {
            return false;
        }

        candidate = candidate.Trim();
        return candidate.Equals(host, StringComparison.OrdinalIgnoreCase)
            || candidate.Split('.')[0].Equals(host.Split('.')[0], StringComparison.OrdinalIgnoreCase);
    }

    private static string Describe(IEnumerable<VastMachine> machines)
    {
        var text = string.Join(", ", machines.Take(10).Select(m => $"{m.EffectiveId}: {m.Hostname ?? "?"}"));
        return text.Length == 0 ? "none" : text;
    }
}
