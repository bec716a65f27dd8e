namespace VastHostAgent.Kernel;

/// <summary>
/// A rig's health as the fault guard sees it in one cycle: from the local snapshot (standalone) or from the
/// host's Prometheus (controller). <see cref="Known"/> false means nothing can be said this cycle (Prometheus
/// unreachable, slow, answering garbage or stale data): the guard then holds, neither tripping nor clearing.
/// </summary>
public sealed record RigObservation
{
    /// <summary>Health could be read this cycle.</summary>
    public bool Known { get; init; } = true;

    /// <summary>Why health is unknown (when <see cref="Known"/> is false).</summary>
    public string? Problem { get; init; }

    /// <summary>NVML is unavailable on the rig, and why (null when it is up).</summary>
    public string? NvmlDown { get; init; }

    /// <summary>GPUs NVML reports lost or gone, described ("GPU 1 lost").</summary>
    public IReadOnlyList<string> LostGpus { get; init; } = [];

    /// <summary>GPUs counted missing (on the PCI bus but neither read by NVML nor passed through to a VM, or gone from the bus), described.</summary>
    public IReadOnlyList<string> MissingGpus { get; init; } = [];

    /// <summary>XID errors seen, with when each was last seen.</summary>
    public IReadOnlyList<RigXid> Xids { get; init; } = [];

    /// <summary>Uncorrectable volatile ECC error counts by GPU UUID (absent GPUs do not report ECC).</summary>
    public IReadOnlyDictionary<string, ulong> EccUncorrected { get; init; } = new Dictionary<string, ulong>();

    /// <summary>Docker is unreachable on the rig, and why (null when it answers or is not watched).</summary>
    public string? DockerDown { get; init; }

    /// <summary>The filesystem holding Docker's data (null when not measured).</summary>
    public RigDisk? Disk { get; init; }

    /// <summary>The rig agent itself does not answer its scrapes (Prometheus <c>up == 0</c>), and since when it is known.</summary>
    public string? AgentDown { get; init; }

    /// <summary>One GPU-hour's electricity under load on the rig (its economics series), when it publishes one.</summary>
    public RigPowerCost? PowerCost { get; init; }

    /// <summary>Nothing can be said this cycle: the guard holds.</summary>
    public static RigObservation Unknown(string problem) => new() { Known = false, Problem = problem };
}

/// <summary>An XID error code on a GPU, and when it was last seen.</summary>
public sealed record RigXid(ulong Xid, int GpuIndex, DateTimeOffset LastSeen)
{
    /// <summary>The GPU's PCI address, for a GPU known only from the kernel log (<see cref="GpuIndex"/> -1).</summary>
    public string? PciAddress { get; init; }
}

/// <summary>Space on the filesystem holding Docker's data.</summary>
public sealed record RigDisk(string Path, ulong AvailableBytes, ulong TotalBytes);

/// <summary>Reads every rig's health once per cycle (the controller's source is the host's Prometheus).</summary>
public interface IRigHealthSource
{
    /// <summary>Reads the health of every rig Prometheus knows; never throws for a bad or absent answer (the report says so).</summary>
    Task<RigHealthReport> ReadAsync(CancellationToken cancellationToken);
}

/// <summary>
/// One read of every rig's health. <see cref="Up"/> false (Prometheus unreachable, slow, garbage, stale): every
/// machine's observation is unknown. A machine Prometheus has no series for is unknown too, never healthy.
/// </summary>
/// <param name="Up">The read succeeded and its data is fresh.</param>
/// <param name="Problem">Why not.</param>
/// <param name="At">When it was read.</param>
/// <param name="ByKey">Observations by the mapping label's value (host name, or machine id as text).</param>
public sealed record RigHealthReport(bool Up, string? Problem, DateTimeOffset At, IReadOnlyDictionary<string, RigObservation> ByKey)
{
    /// <summary>The observation for one machine, looked up by machine id or host name (case-insensitive); unknown when absent.</summary>
    public RigObservation For(long machineId, string? hostname)
    {
        if (!Up)
        {
            return RigObservation.Unknown(Problem ?? "rig health unavailable");
        }

        if (ByKey.TryGetValue(machineId.ToString(System.Globalization.CultureInfo.InvariantCulture), out var byId))
        {
            return byId;
        }

        if (hostname is not null)
        {
            foreach (var (key, value) in ByKey)
            {
                if (string.Equals(key, hostname, StringComparison.OrdinalIgnoreCase)
                    || string.Equals(key.Split('.')[0], hostname.Split('.')[0], StringComparison.OrdinalIgnoreCase))
                {
                    return value;
                }
            }
        }

        return RigObservation.Unknown($"Prometheus has no rig agent series for machine {machineId} ({hostname ?? "no host name"})");
    }
}
