using System.Text.Json.Serialization;
using VastHostAgent.Containers;
using VastHostAgent.Economics;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;

namespace VastHostAgent.Hosting;

/// <summary>One GPU line of <c>vast-host-agent status</c>.</summary>
public sealed record GpuStatus(
    int Index,
    string Uuid,
    string Name,
    bool Up,
    double? TemperatureCelsius,
    double? UtilizationRatio,
    ulong? MemoryUsedBytes,
    ulong? MemoryTotalBytes,
    double? PowerWatts,
    double? PowerLimitWatts,
    long? InstanceId,
    string? Container);

/// <summary>One container line of <c>vast-host-agent status</c>.</summary>
public sealed record ContainerStatus(
    long? InstanceId,
    string Name,
    string Id,
    string State,
    string? Health,
    DateTimeOffset? StartedAt,
    double? UptimeSeconds,
    IReadOnlyList<int> Gpus,
    double? CpuCores,
    ulong? MemoryBytes,
    ulong? MemoryLimitBytes);

/// <summary>What <c>status</c> prints and <c>/api/status</c> returns: GPUs and containers at a glance.</summary>
public sealed record StatusReport(
    DateTimeOffset GeneratedAt,
    string Source,
    string Version,
    bool NvmlUp,
    string? DriverVersion,
    bool? DockerUp,
    string? Problem,
    IReadOnlyList<GpuStatus> Gpus,
    IReadOnlyList<ContainerStatus> Containers)
{
    /// <summary>Maintenance windows and the fault guard (from the state directory).</summary>
    public Maintenance.MaintenanceStatus? Maintenance { get; init; }

    /// <summary>A controller's fleet: machines, rig health and the machines the guard holds (null in the other roles).</summary>
    public FleetStatus? Fleet { get; init; }

    /// <summary>Power cost, revenue, margin and break-even (null while economics.enabled is false).</summary>
    public EconomicsSample? Economics { get; init; }

    /// <summary>Builds the report from a snapshot (pure).</summary>
    public static StatusReport From(HostSnapshot snapshot, string source, DateTimeOffset now)
    {
        var rows = ContainerView.Build(snapshot);
        var byGpu = ContainerView.ByGpu(rows);
        var gpus = (snapshot.Gpu?.Gpus ?? []).Select(g =>
        {
            var owner = byGpu[g.Identity.Uuid].OrderByDescending(r => r.Info.InstanceId.HasValue).FirstOrDefault();
            return new GpuStatus(
                g.Identity.Index, g.Identity.Uuid, g.Identity.Name, g.Up, g.TemperatureCelsius, g.UtilizationRatio,
                g.MemoryUsedBytes, g.MemoryTotalBytes, g.PowerUsageWatts, g.PowerLimitWatts,
                owner?.Info.InstanceId, owner?.Info.Name);
        }).OrderBy(g => g.Index).ToList();

        var containers = rows
            .OrderByDescending(r => r.Info.Running)
            .ThenBy(r => r.Info.InstanceId.HasValue ? 0 : 1)
            .ThenBy(r => r.Info.Name, StringComparer.Ordinal)
            .Select(r => new ContainerStatus(
                r.Info.InstanceId, r.Info.Name, r.Info.Id[..Math.Min(12, r.Info.Id.Length)], r.Info.State, r.Info.Health,
                r.Info.StartedAt,
                r.Info.Running && r.Info.StartedAt is { } started ? Math.Max(0, (now - started).TotalSeconds) : null,
                [.. r.Gpus.Select(g => g.Index)],
                r.Usage?.CpuCores,
                r.Usage?.MemoryWorkingSetBytes,
                r.Usage?.MemoryLimitBytes ?? (ulong?)r.Info.MemoryLimitBytes))
            .ToList();

        var problems = new[] { snapshot.Gpu?.Problem, snapshot.Docker?.Problem }.Where(p => p is not null).Concat(LoopHealth.Describe(snapshot));
        return new StatusReport(now, source, BuildInfo.Display, snapshot.Gpu?.NvmlUp == true, snapshot.Gpu?.DriverVersion,
            snapshot.Docker?.Up, problems.Any() ? string.Join("; ", problems) : null, gpus, containers)
        {
            Economics = snapshot.Economics,
        };
    }
}

/// <summary>System.Text.Json source generation for everything the agent serialises (NativeAOT: no reflection).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    WriteIndented = true)]
[JsonSerializable(typeof(StatusReport))]
public sealed partial class AgentJsonContext : JsonSerializerContext;
