using System.Text.RegularExpressions;

namespace VastHostAgent.Containers;

/// <summary>What a container asked for in GPUs, as Docker recorded it (before resolution to UUIDs).</summary>
/// <param name="All">All GPUs (<c>--gpus all</c>, <c>NVIDIA_VISIBLE_DEVICES=all</c>).</param>
/// <param name="Devices">Device tokens: NVML indices ("0") or UUIDs ("GPU-…"), as given, or other forms (MIG) that resolution reports.</param>
/// <param name="DeviceMinors">Minor numbers of <c>/dev/nvidiaN</c> device mappings.</param>
/// <param name="Sources">Which mechanisms contributed: device_requests, env, devices.</param>
public sealed record ContainerGpuRequest(bool All, IReadOnlyList<string> Devices, IReadOnlyList<int> DeviceMinors, IReadOnlyList<string> Sources)
{
    public static readonly ContainerGpuRequest None = new(false, [], [], []);

    public bool IsEmpty => !All && Devices.Count == 0 && DeviceMinors.Count == 0;
}

/// <summary>One Docker container as the agent tracks it (from inspect), immutable.</summary>
public sealed record ContainerInfo
{
    public required string Id { get; init; }

    /// <summary>Name without the leading slash, e.g. <c>C.12345</c>.</summary>
    public required string Name { get; init; }

    /// <summary>Vast instance id parsed from a name <c>C.&lt;id&gt;</c>; null for other containers.</summary>
    public long? InstanceId { get; init; }

    public string Image { get; init; } = "";

    /// <summary>The image the container runs, content-addressed (<c>sha256:…</c>): its manifest digest when Docker reports one, else the image id.</summary>
    public string? ImageDigest { get; init; }

    /// <summary>Docker state: created, running, paused, restarting, removing, exited, dead.</summary>
    public required string State { get; init; }

    public DateTimeOffset? CreatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public long RestartCount { get; init; }
    public bool OomKilled { get; init; }
    public long? ExitCode { get; init; }

    /// <summary>Health check status (starting, healthy, unhealthy), or null without a health check.</summary>
    public string? Health { get; init; }

    /// <summary>Host PID of the container's init process; 0 when not running.</summary>
    public int Pid { get; init; }

    public long? MemoryLimitBytes { get; init; }
    public double? CpuLimitCores { get; init; }

    /// <summary>The Docker labels selected by <c>docker.exportLabels</c>.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public ContainerGpuRequest Gpus { get; init; } = ContainerGpuRequest.None;

    public bool Running => State is "running" or "paused" or "restarting";
}

/// <summary>Parses Vast instance ids from container names.</summary>
public static partial class VastNames
{
    /// <summary>The instance id of a Vast instance container (<c>C.12345</c>, with or without the leading slash).</summary>
    public static long? InstanceId(string name)
    {
        var match = InstancePattern().Match(name);
        return match.Success && long.TryParse(match.Groups[1].ValueSpan, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id)
            ? id
            : null;
    }

    [GeneratedRegex(@"^/?C\.(\d+)$")]
    private static partial Regex InstancePattern();
}

/// <summary>What Docker looks like right now.</summary>
public sealed record DockerState
{
    public bool Up { get; init; }

    public string? Problem { get; init; }

    public string? EngineVersion { get; init; }

    public IReadOnlyList<ContainerInfo> Containers { get; init; } = [];
}

/// <summary>Resource use of one running container, from its cgroup and network namespace.</summary>
public sealed record ContainerUsage(
    string Id,
    double? CpuSeconds,
    double? CpuCores,
    ulong? MemoryUsageBytes,
    ulong? MemoryWorkingSetBytes,
    ulong? MemoryLimitBytes,
    ulong? NetworkReceiveBytes,
    ulong? NetworkTransmitBytes);

/// <summary>GPU memory and process count of one container on one GPU (NVML processes mapped through /proc).</summary>
public readonly record struct ContainerGpuProcesses(string ContainerId, string GpuUuid, int GpuIndex, ulong MemoryBytes, int Processes);
