using System.Text.Json.Serialization;
using VastHostAgent.Containers;
using VastHostAgent.Economics;
using VastHostAgent.Gpu;
using VastHostAgent.GpuCount;
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
    string? Container)
{
    /// <summary>NVML lost the GPU because it is bound to vfio-pci (passed through to a VM rental): not a fault.</summary>
    public bool Passthrough { get; init; }
}

/// <summary>
/// GPU-count truth in <c>vast-host-agent status</c>: expected, read by NVML, passed through to a VM, missing.
/// Passthrough and missing are null when the PCI bus could not be scanned.
/// </summary>
public sealed record GpuCountStatus(
    int? Expected,
    string? ExpectedSource,
    int Nvml,
    IReadOnlyList<string>? Passthrough,
    IReadOnlyList<MissingGpu>? Missing)
{
    /// <summary>The one-line summary: <c>GPUs: 4 expected (Vast), 2 NVML, 2 passthrough (VM rental: 0000:03:00.0, 0000:04:00.0), 0 missing</c>.</summary>
    public string Line()
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder("GPUs: ");
        sb.Append(Expected is { } e ? string.Create(inv, $"{e} expected ({ExpectedSource}), ") : "expected unknown (no Vast machine, host.expectedGpus 0), ");
        sb.Append(inv, $"{Nvml} NVML");
        if (Passthrough is null || Missing is null)
        {
            return sb.Append(", passthrough and missing unknown (no PCI bus under host.sysfsRoot)").ToString();
        }

        sb.Append(inv, $", {Passthrough.Count} passthrough");
        if (Passthrough.Count > 0)
        {
            sb.Append(" (VM rental: ").Append(string.Join(", ", Passthrough)).Append(')');
        }

        sb.Append(inv, $", {Missing.Count} missing");
        if (Missing.Count > 0)
        {
            sb.Append(" (").Append(string.Join(", ", Missing.Select(m => $"{m.Address} {m.Reason}"))).Append(')');
        }

        if (Expected is { } expected && Nvml + Passthrough.Count < expected)
        {
            sb.Append(inv, $": {expected - Nvml - Passthrough.Count} fewer than expected");
        }

        return sb.ToString();
    }
}

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

    /// <summary>GPU-count truth (null while host.pciScan is off or before the first scan).</summary>
    public GpuCountStatus? GpuCount { get; init; }

    /// <summary>A controller's fleet: machines, rig health and the machines the guard holds (null in the other roles).</summary>
    public FleetStatus? Fleet { get; init; }

    /// <summary>Power cost, revenue, margin and break-even (null while economics.enabled is false).</summary>
    public EconomicsSample? Economics { get; init; }

    /// <summary>Builds the report from a snapshot (pure).</summary>
    public static StatusReport From(HostSnapshot snapshot, string source, DateTimeOffset now)
    {
        var rows = ContainerView.Build(snapshot);
        var byGpu = ContainerView.ByGpu(rows);
        var count = snapshot.GpuCount;
        var gpus = (snapshot.Gpu?.Gpus ?? []).Select(g =>
        {
            var owner = byGpu[g.Identity.Uuid].OrderByDescending(r => r.Info.InstanceId.HasValue).FirstOrDefault();
            return new GpuStatus(
                g.Identity.Index, g.Identity.Uuid, g.Identity.Name, g.Up, g.TemperatureCelsius, g.UtilizationRatio,
                g.MemoryUsedBytes, g.MemoryTotalBytes, g.PowerUsageWatts, g.PowerLimitWatts,
                owner?.Info.InstanceId, owner?.Info.Name)
            { Passthrough = !g.Up && count?.IsPassthrough(g.Identity.PciBusId) == true };
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
            // NVML's count from the snapshot's own GPU sample, as vasthost_gpus{state="nvml"} has it (the PCI scan may have used the one before).
            GpuCount = count is null ? null : new GpuCountStatus(count.Expected, count.ExpectedSource, snapshot.Gpu is { NvmlUp: true } g ? g.Gpus.Count(r => r.Up) : 0,
                count.PciScanned ? count.Passthrough : null, count.PciScanned ? count.Missing : null),
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
