using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;

namespace VastHostAgent.Containers;

/// <summary>
/// Every sample interval: CPU, memory and network of each running container (cgroup files), and the GPU
/// memory and process count of each container on each GPU (NVML's host PIDs → /proc/&lt;pid&gt;/cgroup →
/// container id). Reads the inventory and the GPU processes from the latest snapshot.
/// </summary>
internal sealed class ContainerStatsSource(
    IContainerResourceReader resources,
    IProcessContainerResolver processes,
    SnapshotStore store,
    IOptions<DockerOptions> docker,
    IOptions<AgentOptions> agent,
    TimeProvider time,
    ILogger<ContainerStatsSource> logger) : ISnapshotSource
{
    private readonly Dictionary<string, (double CpuSeconds, long Timestamp)> _previousCpu = new(StringComparer.Ordinal);
    private readonly HashSet<string> _loggedUnresolved = new(StringComparer.Ordinal);

    public string Name => "containers";

    public bool Enabled => docker.Value.Enabled;

    public TimeSpan Interval => agent.Value.SampleInterval;

    public ValueTask<SourceResult> CollectAsync(CancellationToken cancellationToken)
    {
        var snapshot = store.Current;
        var containers = snapshot.Docker is { Up: true } d ? d.Containers : [];
        var now = time.GetTimestamp();
        var usage = new Dictionary<string, ContainerUsage>(StringComparer.Ordinal);
        foreach (var container in containers)
        {
            if (container.Pid <= 0 || resources.Read(container.Id, container.Pid) is not { } read)
            {
                continue;
            }

            double? cores = null;
            if (read.CpuSeconds is { } cpu && _previousCpu.TryGetValue(container.Id, out var before) && cpu >= before.CpuSeconds)
            {
                var elapsed = time.GetElapsedTime(before.Timestamp, now).TotalSeconds;
                cores = elapsed > 0 ? (cpu - before.CpuSeconds) / elapsed : null;
            }

            if (read.CpuSeconds is { } seconds)
            {
                _previousCpu[container.Id] = (seconds, now);
            }

            usage[container.Id] = read with { CpuCores = cores };
        }

        foreach (var stale in _previousCpu.Keys.Where(id => !usage.ContainsKey(id)).ToList())
        {
            _previousCpu.Remove(stale);
        }

        var gpuProcesses = AttributeGpuProcesses(snapshot, containers);
        LogUnresolved(snapshot, containers);
        return ValueTask.FromResult(SourceResult.Success(s => s.WithContainerUsage(usage).WithContainerGpuProcesses(gpuProcesses)));
    }

    public HostSnapshot Clear(HostSnapshot snapshot) => snapshot.WithContainerUsage(null).WithContainerGpuProcesses(null);

    private List<ContainerGpuProcesses> AttributeGpuProcesses(HostSnapshot snapshot, IReadOnlyList<ContainerInfo> containers)
    {
        var result = new List<ContainerGpuProcesses>();
        if (snapshot.Gpu is not { NvmlUp: true } gpu || containers.Count == 0)
        {
            return result;
        }

        var known = containers.Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var reading in gpu.Gpus)
        {
            var perContainer = new Dictionary<string, (ulong Memory, int Count)>(StringComparer.Ordinal);
            foreach (var process in reading.Processes)
            {
                var id = processes.ContainerIdOf(process.Pid);
                if (id is null || !known.Contains(id))
                {
                    continue; // a host process, or one that exited since NVML listed it
                }

                var (memory, count) = perContainer.GetValueOrDefault(id);
                perContainer[id] = (memory + (process.UsedMemoryBytes ?? 0), count + 1);
            }

            foreach (var (id, (memory, count)) in perContainer)
            {
                result.Add(new ContainerGpuProcesses(id, reading.Identity.Uuid, reading.Identity.Index, memory, count));
            }
        }

        return result;
    }

    private void LogUnresolved(HostSnapshot snapshot, IReadOnlyList<ContainerInfo> containers)
    {
        if (snapshot.Gpu is not { NvmlUp: true } gpu)
        {
            return;
        }

        var inventory = gpu.Gpus.Select(g => g.Identity).ToList();
        foreach (var container in containers)
        {
            var (_, unresolved) = GpuAssignment.Resolve(container.Gpus, inventory);
            if (unresolved.Count > 0 && _loggedUnresolved.Add(container.Id + string.Join(',', unresolved)))
            {
                ContainersLog.UnresolvedGpus(logger, container.Name, string.Join(",", unresolved));
            }
        }
    }
}
