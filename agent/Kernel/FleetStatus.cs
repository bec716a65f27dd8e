namespace VastHostAgent.Kernel;

/// <summary>A controller's last cycle as <c>status</c> shows it.</summary>
/// <param name="LastCycleAt">When the last cycle read the account (null before the first).</param>
/// <param name="Machines">Machines on the account.</param>
/// <param name="Managed">Machines an entry of <c>fleet.machines</c> manages.</param>
/// <param name="ReadOnly">Machines no entry manages (metrics only).</param>
/// <param name="Conflicts">Machines two entries claim (left alone).</param>
/// <param name="RigHealth">Where rig health comes from and whether it answered; null when no managed machine's guard needs it.</param>
/// <param name="HeldCount">Managed machines whose fault guard holds because their rig health is unknown.</param>
/// <param name="Held">The first of them (at most 20), with why.</param>
public sealed record FleetStatus(
    DateTimeOffset? LastCycleAt,
    int Machines,
    int Managed,
    int ReadOnly,
    int Conflicts,
    FleetRigHealthStatus? RigHealth,
    int HeldCount,
    IReadOnlyList<FleetHeldMachine> Held);

/// <summary>The rig health source at the last cycle.</summary>
public sealed record FleetRigHealthStatus(bool Up, string? Problem, DateTimeOffset At, int Known);

/// <summary>A machine the guard holds (no unlist, no relist) because its rig health is unknown.</summary>
public sealed record FleetHeldMachine(long MachineId, string? Hostname, string Why);

/// <summary>The controller's status, for <c>status</c> (absent in the other roles).</summary>
public interface IFleetStatusSource
{
    FleetStatus? Current { get; }
}
