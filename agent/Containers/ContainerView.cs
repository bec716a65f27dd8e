using VastHostAgent.Gpu;
using VastHostAgent.Kernel;

namespace VastHostAgent.Containers;

/// <summary>One container joined with its GPUs, resource use and GPU processes: what metrics and <c>status</c> show.</summary>
public sealed record ContainerRow(
    ContainerInfo Info,
    IReadOnlyList<GpuIdentity> Gpus,
    IReadOnlyList<string> UnresolvedGpus,
    ContainerUsage? Usage,
    IReadOnlyList<ContainerGpuProcesses> GpuProcesses);

/// <summary>Builds <see cref="ContainerRow"/>s from a snapshot (pure: no I/O).</summary>
public static class ContainerView
{
    public static IReadOnlyList<ContainerRow> Build(HostSnapshot snapshot)
    {
        if (snapshot.Docker is not { Up: true } docker)
        {
            return [];
        }

        var inventory = snapshot.Gpu?.Gpus.Select(g => g.Identity).ToList() ?? [];
        var rows = new List<ContainerRow>(docker.Containers.Count);
        foreach (var info in docker.Containers)
        {
            var (gpus, unresolved) = GpuAssignment.Resolve(info.Gpus, inventory);
            var usage = snapshot.ContainerUsage?.GetValueOrDefault(info.Id);
            var processes = snapshot.ContainerGpuProcesses?.Where(p => p.ContainerId == info.Id).ToList() ?? [];
            rows.Add(new ContainerRow(info, gpus, unresolved, info.Running ? usage : null, processes));
        }

        return rows;
    }

    /// <summary>For each GPU UUID, the running containers it is assigned to.</summary>
    public static ILookup<string, ContainerRow> ByGpu(IEnumerable<ContainerRow> rows) =>
        rows.Where(r => r.Info.Running)
            .SelectMany(r => r.Gpus.Select(g => (g.Uuid, Row: r)))
            .ToLookup(x => x.Uuid, x => x.Row, StringComparer.Ordinal);
}
