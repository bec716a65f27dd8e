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
    private readonly Gauge _inMaintenance;
    private readonly Gauge _windows;
    private readonly Gauge _nextStart;
    private readonly Gauge _nextEnd;
    private readonly Counter _deferrals;
    private readonly Gauge _degraded;
    private readonly Gauge _condition;
    private readonly Counter _trips;

    public MaintenanceMetrics(IAgentMetrics metrics, ManagementMetrics management)
    {
        _metrics = metrics;
        _management = management;
        var f = metrics.Factory;
        _inMaintenance = f.CreateGauge("vasthost_maintenance_in_maintenance", "1 while a maintenance window is active (the machine is in maintenance), else 0.");
        _windows = f.CreateGauge("vasthost_maintenance_windows", "Open maintenance windows by state (planned, clamped, deferred, scheduled, active).", ["state"]);
        _nextStart = f.CreateGauge("vasthost_maintenance_next_start_timestamp_seconds", "Start of the next (or current) maintenance window; absent when none is open.");
        _nextEnd = f.CreateGauge("vasthost_maintenance_next_end_timestamp_seconds", "End of the next (or current) maintenance window; absent when none is open.");
        _deferrals = f.CreateCounter("vasthost_maintenance_deferrals_total", "Times a window was moved later because a client contract ran past its start (conflictPolicy defer).");
        _degraded = f.CreateGauge("vasthost_guard_degraded", "1 while the fault guard holds the machine off the market (unlisted or default job removed), else 0.");
        _condition = f.CreateGauge("vasthost_guard_condition_active", "1 while a fault condition is present (before and after the hold time), by condition.", ["condition"]);
        _trips = f.CreateCounter("vasthost_guard_trips_total", "Times the fault guard tripped (a condition held for faultGuard.holdFor).");
        foreach (var state in States)
        {
            _windows.WithLabels(state.ToString()).Set(0);
        }

        _inMaintenance.Set(0);
        _degraded.Set(0);
        foreach (var condition in FaultGuard.Conditions)
        {
            _condition.WithLabels(condition).Set(0);
        }
    }

    public void Windows(MaintenanceBook book)
    {
        var open = book.Windows.Where(w => w.State.IsOpen).ToList();
        foreach (var state in States)
        {
            _windows.WithLabels(state.ToString()).Set(open.Count(w => w.State == state));
        }

        _inMaintenance.Set(open.Any(w => w.State == WindowState.Active) ? 1 : 0);
        if (book.Current is { } next)
        {
            _nextStart.Set(next.Start.ToUnixTimeSeconds());
            _nextEnd.Set(next.End.ToUnixTimeSeconds());
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
        _deferrals.Inc();
        _metrics.Changed();
    }

    public void GuardTrip()
    {
        _trips.Inc();
        _metrics.Changed();
    }

    public void Guard(bool tripped, IEnumerable<string> active)
    {
        _degraded.Set(tripped ? 1 : 0);
        var set = active.ToHashSet(StringComparer.Ordinal);
        foreach (var condition in FaultGuard.Conditions)
        {
            _condition.WithLabels(condition).Set(set.Contains(condition) ? 1 : 0);
        }

        _metrics.Changed();
    }

    /// <summary>dnotify, cancel_maint and cleanup count with the listing changes (one mutations family).</summary>
    public void Mutation(VastEndpoint endpoint, string result) => _management.Mutation(endpoint, result);
}
