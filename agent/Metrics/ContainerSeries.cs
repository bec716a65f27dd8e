using System.Globalization;
using Prometheus;
using VastHostAgent.Containers;
using VastHostAgent.Kernel;

namespace VastHostAgent.Metrics;

/// <summary>
/// Container and instance series. Every per-container series carries <c>container</c> (the Docker name)
/// and <c>instance_id</c> (the Vast instance id, empty for other containers); the image and selected
/// Docker labels are on <c>vasthost_container_info</c> only, to keep cardinality bounded.
/// </summary>
internal sealed class ContainerSeries : ISnapshotSeries
{
    private readonly Gauge _dockerUp;
    private readonly TrackedGauge _info;
    private readonly TrackedGauge _state;
    private readonly TrackedGauge _health;
    private readonly TrackedGauge _created;
    private readonly TrackedGauge _started;
    private readonly TrackedGauge _restarts;
    private readonly TrackedGauge _oomKilled;
    private readonly TrackedGauge _exitCode;
    private readonly TrackedCounter _cpu;
    private readonly TrackedGauge _cpuLimit;
    private readonly TrackedGauge _memUsage;
    private readonly TrackedGauge _memWorkingSet;
    private readonly TrackedGauge _memLimit;
    private readonly TrackedCounter _rx;
    private readonly TrackedCounter _tx;
    private readonly TrackedGauge _gpus;
    private readonly TrackedGauge _gpuUnresolved;
    private readonly TrackedGauge _assignment;
    private readonly TrackedGauge _gpuMemory;
    private readonly TrackedGauge _gpuProcesses;
    private readonly IReadOnlyList<string> _exportLabels;

    public ContainerSeries(SeriesFactory f, IReadOnlyList<string> exportLabels)
    {
        _exportLabels = exportLabels;
        string[] c = ["container", "instance_id"];
        _dockerUp = f.Factory.CreateGauge("vasthost_docker_up", "1 while the Docker engine answers and its event stream is connected, else 0.");
        _info = f.Gauge("vasthost_container_info", "Container identity. Always 1.",
            [.. c, "id", "image", .. exportLabels.Select(LabelName)]);
        _state = f.Gauge("vasthost_container_state", "1 for the container's current Docker state (created, running, paused, restarting, removing, exited, dead).", [.. c, "state"]);
        _health = f.Gauge("vasthost_container_health_status", "1 for the container's health-check status (starting, healthy, unhealthy); absent without a health check.", [.. c, "status"]);
        _created = f.Gauge("vasthost_container_created_timestamp_seconds", "Unix time the container was created.", c);
        _started = f.Gauge("vasthost_container_started_timestamp_seconds", "Unix time the container last started.", c);
        _restarts = f.Gauge("vasthost_container_restarts", "Restarts Docker made under the container's restart policy.", c);
        _oomKilled = f.Gauge("vasthost_container_oom_killed", "1 when the container's last run ended by the OOM killer.", c);
        _exitCode = f.Gauge("vasthost_container_exit_code", "Exit code of the container's last run (containers that are not running).", c);
        _cpu = f.Counter("vasthost_container_cpu_usage_seconds_total", "CPU time the container used (cgroup).", c);
        _cpuLimit = f.Gauge("vasthost_container_cpu_limit_cores", "CPU limit of the container in cores (absent when unlimited).", c);
        _memUsage = f.Gauge("vasthost_container_memory_usage_bytes", "Memory the container uses, page cache included (cgroup).", c);
        _memWorkingSet = f.Gauge("vasthost_container_memory_working_set_bytes", "Memory usage minus inactive page cache: what the OOM killer weighs.", c);
        _memLimit = f.Gauge("vasthost_container_memory_limit_bytes", "Memory limit of the container (absent when unlimited).", c);
        _rx = f.Counter("vasthost_container_network_receive_bytes_total", "Bytes received on the container's interfaces (loopback excluded).", c);
        _tx = f.Counter("vasthost_container_network_transmit_bytes_total", "Bytes sent on the container's interfaces (loopback excluded).", c);
        _gpus = f.Gauge("vasthost_container_gpus", "GPUs assigned to the container (resolved to NVML GPUs).", c);
        _gpuUnresolved = f.Gauge("vasthost_container_gpu_unresolved", "GPU assignments of the container that match no NVML GPU (MIG devices, unknown indices or UUIDs).", c);
        _assignment = f.Gauge("vasthost_gpu_assignment", "1 per GPU and running container it is assigned to; join on uuid for per-instance GPU views.", ["gpu", "uuid", .. c]);
        _gpuMemory = f.Gauge("vasthost_container_gpu_memory_used_bytes", "GPU memory used by the container's processes on this GPU.", [.. c, "gpu", "uuid"]);
        _gpuProcesses = f.Gauge("vasthost_container_gpu_processes", "Compute processes of the container on this GPU.", [.. c, "gpu", "uuid"]);
    }

    public void Apply(HostSnapshot snapshot)
    {
        _dockerUp.Set(snapshot.Docker?.Up == true ? 1 : 0);
        foreach (var row in ContainerView.Build(snapshot))
        {
            var info = row.Info;
            var name = info.Name;
            var instance = info.InstanceId?.ToString(CultureInfo.InvariantCulture) ?? "";
            _info.Set(1, [name, instance, info.Id[..Math.Min(12, info.Id.Length)], info.Image, .. _exportLabels.Select(l => info.Labels.GetValueOrDefault(l, ""))]);
            _state.Set(1, name, instance, info.State);
            if (info.Health is { } health)
            {
                _health.Set(1, name, instance, health);
            }

            _created.Set(Unix(info.CreatedAt), name, instance);
            _started.Set(Unix(info.StartedAt), name, instance);
            _restarts.Set(info.RestartCount, name, instance);
            _oomKilled.Set(info.OomKilled ? 1 : 0, name, instance);
            if (!info.Running)
            {
                _exitCode.Set(info.ExitCode, name, instance);
            }

            _cpuLimit.Set(info.CpuLimitCores, name, instance);
            _gpus.Set(row.Gpus.Count, name, instance);
            if (row.UnresolvedGpus.Count > 0)
            {
                _gpuUnresolved.Set(row.UnresolvedGpus.Count, name, instance);
            }

            if (row.Usage is { } usage)
            {
                _cpu.Set(usage.CpuSeconds, name, instance);
                _memUsage.Set(usage.MemoryUsageBytes, name, instance);
                _memWorkingSet.Set(usage.MemoryWorkingSetBytes, name, instance);
                _memLimit.Set(usage.MemoryLimitBytes ?? (ulong?)info.MemoryLimitBytes, name, instance);
                _rx.Set(usage.NetworkReceiveBytes, name, instance);
                _tx.Set(usage.NetworkTransmitBytes, name, instance);
            }
            else
            {
                _memLimit.Set(info.MemoryLimitBytes, name, instance);
            }

            if (info.Running)
            {
                foreach (var gpu in row.Gpus)
                {
                    _assignment.Set(1, gpu.Index.ToString(CultureInfo.InvariantCulture), gpu.Uuid, name, instance);
                }
            }

            foreach (var p in row.GpuProcesses)
            {
                var gpu = p.GpuIndex.ToString(CultureInfo.InvariantCulture);
                _gpuMemory.Set(p.MemoryBytes, name, instance, gpu, p.GpuUuid);
                _gpuProcesses.Set(p.Processes, name, instance, gpu, p.GpuUuid);
            }
        }
    }

    /// <summary>Prometheus label name for a Docker label key: <c>label_</c> + the key with invalid characters as '_'.</summary>
    internal static string LabelName(string dockerLabel) =>
        "label_" + string.Concat(dockerLabel.Select(ch => char.IsAsciiLetterOrDigit(ch) || ch == '_' ? ch : '_'));

    private static double? Unix(DateTimeOffset? at) => at is { } t ? t.ToUnixTimeMilliseconds() / 1000.0 : null;
}
