using VastHostAgent.Kernel;

namespace VastHostAgent.Metrics;

/// <summary>The agent's own health: build, identity (rig info), collectors, supervised loops and state files.</summary>
internal sealed class AgentSeries : ISnapshotSeries
{
    private readonly TrackedGauge _collectorUp;
    private readonly TrackedGauge _collectorLastSuccess;
    private readonly TrackedGauge _collectorDuration;
    private readonly TrackedGauge _collectorStale;
    private readonly TrackedCounter _stateRecoveries;
    private readonly TrackedGauge _stateRecovering;
    private readonly TrackedCounter _loopFailures;
    private readonly TrackedGauge _loopFailing;

    public AgentSeries(SeriesFactory f, AgentOptions agent)
    {
        var build = f.Factory.CreateGauge("vasthost_build_info", "Agent build: version, git revision and .NET runtime. Always 1.", ["version", "revision", "dotnet"]);
        build.WithLabels(BuildInfo.Version, BuildInfo.Revision, Environment.Version.ToString()).Set(1);
        var rig = f.Factory.CreateGauge("vasthost_rig_info", "This rig's identity for a fleet controller: host name and Vast machine id (empty when not configured). Always 1.", ["hostname", "machine_id"]);
        rig.WithLabels(agent.EffectiveHostname(), RigMachineIdLabel(agent.MachineId)).Set(1);
        _collectorUp = f.Gauge("vasthost_collector_up", "1 when the collector's last run succeeded, else 0.", "collector");
        _collectorLastSuccess = f.Gauge("vasthost_collector_last_success_timestamp_seconds", "Unix time of the collector's last successful run.", "collector");
        _collectorDuration = f.Gauge("vasthost_collector_duration_seconds", "Duration of the collector's last run.", "collector");
        _collectorStale = f.Gauge("vasthost_collector_stale", "1 while a run of the collector has been in progress longer than its stale time (its readings are marked stale), else 0.", "collector");
        _stateRecoveries = f.Counter("vasthost_state_file_recoveries_total", "State files found unusable (empty, damaged, incomplete), set aside and re-established from Vast since the agent started, by file.", "file");
        _stateRecovering = f.Gauge("vasthost_state_file_recovering", "State files found unusable that the agent has not yet re-established from Vast (no change is made to their machine meanwhile), by file: 0 or 1, on a controller up to one per machine.", "file");
        _loopFailures = f.Counter("vasthost_loop_failures_total", "Iterations of a long-running loop that ended in an unexpected exception (the loop backs off and goes on), by loop.", "loop");
        _loopFailing = f.Gauge("vasthost_loop_failing", "1 while a loop has failed 3 or more times in a row, by loop.", "loop");
    }

    /// <summary>The <c>machine_id</c> label of <c>vasthost_rig_info</c>: the id as invariant text, empty when not set (0).</summary>
    internal static string RigMachineIdLabel(long machineId) =>
        machineId > 0 ? machineId.ToString(System.Globalization.CultureInfo.InvariantCulture) : "";

    public void Apply(HostSnapshot snapshot)
    {
        foreach (var (loop, status) in snapshot.Loops)
        {
            _loopFailures.Set(status.Failures, loop);
            _loopFailing.Set(status.Failing ? 1 : 0, loop);
        }

        foreach (var (file, status) in snapshot.StateFiles)
        {
            _stateRecoveries.Set(status.Recovered, file);
            _stateRecovering.Set(status.Recovering, file);
        }

        foreach (var (name, status) in snapshot.Collectors)
        {
            _collectorUp.Set(status.Ok ? 1 : 0, name);
            _collectorDuration.Set(status.LastDuration.TotalSeconds, name);
            _collectorStale.Set(status.Stale ? 1 : 0, name);
            if (status.LastSuccess is { } success)
            {
                _collectorLastSuccess.Set(success.ToUnixTimeMilliseconds() / 1000.0, name);
            }
        }
    }
}
