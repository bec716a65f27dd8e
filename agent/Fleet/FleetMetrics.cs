using System.Globalization;
using Prometheus;
using VastHostAgent.Kernel;
using VastHostAgent.Management;

namespace VastHostAgent.Fleet;

/// <summary>
/// The controller's own instruments: machines by state (managed, read-only, conflict), machines per
/// <c>fleet.machines</c> entry, whether rig health could be read, and per managed machine whether its health was
/// known at its last reconcile. Labels are bounded by the account's machines and the configured entries.
/// </summary>
public sealed class FleetMetrics
{
    private readonly IAgentMetrics _metrics;
    private readonly Gauge _machines;
    private readonly Gauge _entries;
    private readonly Gauge _healthUp;
    private readonly Gauge _healthKnown;
    private readonly Gauge _lastCycle;

    public FleetMetrics(IAgentMetrics metrics)
    {
        _metrics = metrics;
        var f = metrics.Factory;
        _machines = f.CreateGauge("vasthost_fleet_machines", "The account's machines by state: managed (one fleet.machines entry selects it), read_only (none does), conflict (several do: left alone).", ["state"]);
        _entries = f.CreateGauge("vasthost_fleet_selector_machines", "Machines each fleet.machines entry selects (0: the entry matches nothing), by entry index.", ["entry"]);
        _healthUp = f.CreateGauge("vasthost_fleet_rig_health_up", "1 when the last rig health read from Prometheus succeeded with fresh data, else 0 (the guard holds every machine).");
        _healthKnown = f.CreateGauge("vasthost_fleet_rig_health_known", "1 when a managed machine's rig health was known at its last reconcile, 0 while the guard holds it for lack of data.", ["machine_id", "hostname"]);
        _lastCycle = f.CreateGauge("vasthost_fleet_last_reconcile_timestamp_seconds", "When a managed machine was last reconciled by the controller.", ["machine_id", "hostname"]);
    }

    public void Selection(FleetSelection selection, IReadOnlyList<MachineSelector> entries)
    {
        _machines.WithLabels("managed").Set(selection.Managed);
        _machines.WithLabels("read_only").Set(selection.ReadOnly);
        _machines.WithLabels("conflict").Set(selection.Conflicts);
        for (var i = 0; i < entries.Count; i++)
        {
            _entries.WithLabels(i.ToString(CultureInfo.InvariantCulture)).Set(selection.MatchesPerEntry[i]);
        }

        _metrics.Changed();
    }

    public void RigHealth(RigHealthReport report)
    {
        _healthUp.Set(report.Up ? 1 : 0);
        _metrics.Changed();
    }

    public void Reconciled(long machineId, string? hostname, ReconcileReport report, RigObservation? health)
    {
        var id = machineId.ToString(CultureInfo.InvariantCulture);
        _lastCycle.WithLabels(id, hostname ?? "").Set(report.At.ToUnixTimeMilliseconds() / 1000.0);
        if (health is not null)
        {
            _healthKnown.WithLabels(id, hostname ?? "").Set(health.Known ? 1 : 0);
        }

        _metrics.Changed();
    }
}
