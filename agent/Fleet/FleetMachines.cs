using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;
using VastHostAgent.Maintenance;
using VastHostAgent.Management;
using VastHostAgent.Vast;

namespace VastHostAgent.Fleet;

/// <summary>
/// The controller's managed machines, each with its own state under <c>{stateDirectory}/machines/{id}/</c>
/// (management-state.json, maintenance.json, fault-guard.json: the same restart- and kill-safe files a
/// standalone agent keeps) and its own mutation path, windows and guard. Built on first sight, rebuilt when its
/// profile changes; one journal for the account (every line names its machine).
/// </summary>
public sealed class FleetMachines(
    IVastClient client,
    DecisionJournal journal,
    ManagementMetrics managementMetrics,
    IAgentMetrics agentMetrics,
    MaintenanceHookRunner hooks,
    SnapshotStore snapshots,
    StateFileHealth stateFiles,
    IOptions<AgentOptions> agent,
    IOptions<VastOptions> vast,
    TimeProvider time,
    ILoggerFactory loggers)
{
    public const string DirectoryName = "machines";

    /// <summary>The file in a machine's directory that names its host (for <c>--machine HOSTNAME</c>).</summary>
    public const string HostnameFile = "hostname";

    private readonly Dictionary<long, (FleetPolicy Policy, ManagedMachine Machine)> _machines = [];

    // The account's mutations of the last hour, oldest first, and the machines whose earlier ones are counted.
    private readonly SortedSet<(DateTimeOffset At, long Sequence)> _sent = [];
    private readonly HashSet<long> _counted = [];
    private long _sequence;

    /// <summary>The state directory of one machine.</summary>
    public static string DirectoryFor(string stateDirectory, long machineId) =>
        Path.Combine(stateDirectory, DirectoryName, machineId.ToString(CultureInfo.InvariantCulture));

    /// <summary>
    /// The machine named by <paramref name="machine"/>: a machine id, or the host name of a machine the controller
    /// has managed (each machine's directory keeps a <c>hostname</c> file for the command line). Null when unknown.
    /// </summary>
    public static long? Resolve(string stateDirectory, string machine)
    {
        if (long.TryParse(machine, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0)
        {
            return id;
        }

        return OnDisk(stateDirectory).FirstOrDefault(m => string.Equals(m.Hostname, machine.Trim(), StringComparison.OrdinalIgnoreCase)) is { Id: > 0 } known
            ? known.Id
            : null;
    }

    /// <summary>Every machine the controller keeps state for (id and the host name it last saw), by id.</summary>
    public static IReadOnlyList<(long Id, string? Hostname, string Directory)> OnDisk(string stateDirectory)
    {
        var root = Path.Combine(stateDirectory, DirectoryName);
        if (!Directory.Exists(root))
        {
            return [];
        }

        var known = new List<(long, string?, string)>();
        foreach (var dir in Directory.EnumerateDirectories(root))
        {
            if (long.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                var file = Path.Combine(dir, HostnameFile);
                var hostname = File.Exists(file) ? File.ReadAllText(file).Trim() : null;
                known.Add((id, string.IsNullOrEmpty(hostname) ? null : hostname, dir));
            }
        }

        return [.. known.OrderBy(k => k.Item1)];
    }

    /// <summary>The machine's context under <paramref name="policy"/>.</summary>
    public ManagedMachine For(long id, string? hostname, FleetPolicy policy)
    {
        if (_machines.TryGetValue(id, out var known) && ReferenceEquals(known.Policy, policy) && known.Machine.Hostname == hostname)
        {
            return known.Machine;
        }

        var directory = DirectoryFor(agent.Value.StateDirectory, id);
        try
        {
            Directory.CreateDirectory(directory);
            File.WriteAllText(Path.Combine(directory, HostnameFile), (hostname ?? "").Trim() + "\n");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Only the command line's --machine HOSTNAME needs it; the state files report their own write problems.
        }
        var management = Options.Create(policy.Management);
        var state = new ManagementStateStore(directory, time, loggers.CreateLogger<ManagementStateStore>(), stateFiles);
        var mutations = new MutationPath(client, state, journal, managementMetrics, management, vast, time, loggers.CreateLogger<MutationPath>());
        var coordinator = new MaintenanceCoordinator(
            mutations,
            hooks,
            new MaintenanceStore(directory, time, loggers.CreateLogger<MaintenanceStore>(), stateFiles),
            new FaultGuardStore(directory, time, loggers.CreateLogger<FaultGuardStore>(), stateFiles),
            state,
            journal,
            new MaintenanceMetrics(agentMetrics, managementMetrics, id, hostname),
            snapshots,
            Options.Create(policy.Maintenance),
            Options.Create(policy.FaultGuard),
            management,
            time,
            loggers.CreateLogger<MaintenanceCoordinator>());
        var machine = new ManagedMachine(id, hostname, policy.Name, policy.Management, state, mutations, coordinator);
        if (_counted.Add(id))
        {
            // What this machine sent before a restart counts towards the account's budget (read once per process).
            Sent(state.Load().Mutations);
        }

        _machines[id] = (policy, machine);
        return machine;
    }

    /// <summary>Mutations sent in the last hour across the account: kept in memory (no state file read per cycle).</summary>
    public int MutationsInLastHour(DateTimeOffset now)
    {
        while (_sent.Count > 0 && now - _sent.Min.At >= TimeSpan.FromHours(1))
        {
            _sent.Remove(_sent.Min);
        }

        return _sent.Count;
    }

    /// <summary>Counts mutations sent (at these times) towards the account's hourly budget.</summary>
    public void Sent(IEnumerable<DateTimeOffset> at)
    {
        foreach (var t in at)
        {
            // Distinct entries for equal times: a multiset by (time, sequence).
            _sent.Add((t, _sequence++));
        }
    }

    /// <summary>The machines built so far.</summary>
    public IReadOnlyCollection<ManagedMachine> Known => [.. _machines.Values.Select(m => m.Machine)];
}
