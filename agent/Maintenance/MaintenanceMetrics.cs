using Prometheus;
using VastHostAgent.Kernel;
using VastHostAgent.Management;
using VastHostAgent.Vast;

namespace VastHostAgent.Maintenance;

/// <summary>
/// Maintenance and fault-guard instruments. Label values are bounded: window states and guard conditions
/// are fixed sets; window ids never become labels (they are in <c>maint list</c> and the journal).
/// </summary>
public sealed class MaintenanceMetrics
{
    private static readonly WindowState[] States =
        [WindowState.Planned, WindowState.Clamped, WindowState.Deferred, WindowState.Scheduled, WindowState.Active];

    private readonly IAgentMetrics _metrics;
    private readonly ManagementMetrics _management;
    private readonly string[] _machine;
    private readonly Gauge _inMaintenance;
    private readonly Gauge _windows;
    private readonly Gauge _nextStart;
    private readonly Gauge _nextEnd;
    private readonly Counter _deferrals;
    private readonly Gauge _degraded;
    private readonly Gauge _condition;
    private readonly Counter _trips;
    private readonly HashSet<string> _conditionsShown = new(StringComparer.Ordinal);

    public MaintenanceMetrics(IAgentMetrics metrics, ManagementMetrics management)
        : this(metrics, management, null, null)
    {
    }

    /// <summary>
    /// With a machine (controller), every series carries <c>machine_id</c> and <c>hostname</c>, and only what is
    /// not zero is shown (a fleet of idle machines adds no series).
    /// </summary>
    public MaintenanceMetrics(IAgentMetrics metrics, ManagementMetrics management, long? machineId, string? hostname)
    {
        _metrics = metrics;
        _management = management;
        var f = metrics.Factory;
        string[] m = machineId is null ? [] : ["machine_id", "hostname"];
        _machine = machineId is { } id ? [id.ToString(System.Globalization.CultureInfo.InvariantCulture), hostname ?? ""] : [];
        _inMaintenance = f.CreateGauge("vasthost_maintenance_in_maintenance", "1 while a maintenance window is active (the machine is in maintenance), else 0.", m);
        _windows = f.CreateGauge("vasthost_maintenance_windows", "Open maintenance windows by state (planned, clamped, deferred, scheduled, active).", [.. m, "state"]);
        _nextStart = f.CreateGauge("vasthost_maintenance_next_start_timestamp_seconds", "Start of the next (or current) maintenance window; absent when none is open.", m);
        _nextEnd = f.CreateGauge("vasthost_maintenance_next_end_timestamp_seconds", "End of the next (or current) maintenance window; absent when none is open.", m);
        _deferrals = f.CreateCounter("vasthost_maintenance_deferrals_total", "Times a window was moved later because a client contract ran past its start (conflictPolicy defer).", m);
        _degraded = f.CreateGauge("vasthost_guard_degraded", "1 while the fault guard holds the machine off the market (unlisted or default job removed), else 0.", m);
        _condition = f.CreateGauge("vasthost_guard_condition_active", "1 while a fault condition is present (before and after the hold time), by condition.", [.. m, "condition"]);
        _trips = f.CreateCounter("vasthost_guard_trips_total", "Times the fault guard tripped (a condition held for faultGuard.holdFor).", m);
        if (machineId is not null)
        {
            return;
        }

        foreach (var state in States)
        {
            _windows.WithLabels(state.ToString()).Set(0);
        }

        _inMaintenance.Set(0);
        _degraded.Set(0);
        foreach (var condition in FaultGuard.Conditions)
        {
            _condition.WithLabels(condition).Set(0);
            _conditionsShown.Add(condition);
        }
    }

    private bool PerMachine => _machine.Length > 0;

    public void Windows(MaintenanceBook book)
    {
        var open = book.Windows.Where(w => w.State.IsOpen).ToList();
        foreach (var state in States)
        {
            var count = open.Count(w => w.State == state);
            if (PerMachine && count == 0)
            {
                _windows.RemoveLabelled([.. _machine, state.ToString()]);
                continue;
            }

            _windows.WithLabels([.. _machine, state.ToString()]).Set(count);
        }

        var active = open.Any(w => w.State == WindowState.Active);
        if (PerMachine && !active)
        {
            _inMaintenance.RemoveLabelled(_machine);
        }
        else
        {
            _inMaintenance.WithLabels(_machine).Set(active ? 1 : 0);
        }

        if (book.Current is { } next)
        {
            _nextStart.WithLabels(_machine).Set(next.Start.ToUnixTimeSeconds());
            _nextEnd.WithLabels(_machine).Set(next.End.ToUnixTimeSeconds());
        }
        else if (PerMachine)
        {
            _nextStart.RemoveLabelled(_machine);
            _nextEnd.RemoveLabelled(_machine);
        }
        else
        {
            _nextStart.Unpublish();
            _nextEnd.Unpublish();
        }

        _metrics.Changed();
    }

    public void Deferred()
    {
        _deferrals.WithLabels(_machine).Inc();
        _metrics.Changed();
    }

    public void GuardTrip()
    {
        _trips.WithLabels(_machine).Inc();
        _metrics.Changed();
    }

    public void Guard(bool tripped, IEnumerable<string> active)
    {
        if (PerMachine && !tripped)
        {
            _degraded.RemoveLabelled(_machine);
        }
        else
        {
            _degraded.WithLabels(_machine).Set(tripped ? 1 : 0);
        }

        var set = active.ToHashSet(StringComparer.Ordinal);
        foreach (var condition in FaultGuard.Conditions)
        {
            if (set.Contains(condition) || !PerMachine)
            {
                _condition.WithLabels([.. _machine, condition]).Set(set.Contains(condition) ? 1 : 0);
            }
            else if (_conditionsShown.Contains(condition))
            {
                _condition.RemoveLabelled([.. _machine, condition]);
            }
        }

        if (PerMachine)
        {
            _conditionsShown.Clear();
            _conditionsShown.UnionWith(set);
        }

        _metrics.Changed();
    }

    /// <summary>dnotify, cancel_maint and cleanup count with the listing changes (one mutations family).</summary>
    public void Mutation(VastEndpoint endpoint, string result) => _management.Mutation(endpoint, result);
}
