using System.Globalization;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.GpuCount;
using VastHostAgent.Host;
using VastHostAgent.Kernel;
using VastHostAgent.Management;

namespace VastHostAgent.Maintenance;

/// <summary>The fault guard's memory (persisted in <c>{stateDirectory}/fault-guard.json</c>).</summary>
public sealed record FaultGuardState
{
    [JsonRequired]
    public bool Tripped { get; init; }

    public DateTimeOffset? TrippedAt { get; init; }

    public string? Reason { get; init; }

    /// <summary>When each condition was first seen in its current episode.</summary>
    [JsonRequired]
    public Dictionary<string, DateTimeOffset> Since { get; init; } = [];

    /// <summary>When every condition last became clear while tripped.</summary>
    public DateTimeOffset? ClearSince { get; init; }

    /// <summary>When a cleanup of expired storage contracts was asked for in the current low-disk episode.</summary>
    public DateTimeOffset? CleanupAt { get; init; }

    [JsonRequired]
    public IReadOnlyList<DateTimeOffset> Trips { get; init; } = [];

    /// <summary>The default job on the machine when the guard tripped (put back on clear when defaultJob.mode is unmanaged).</summary>
    public SavedDefaultJob? SavedDefaultJob { get; init; }

    /// <summary>Last seen uncorrectable volatile ECC count per GPU, and when it last rose.</summary>
    public Dictionary<string, ulong> EccSeen { get; init; } = [];

    public Dictionary<string, DateTimeOffset> EccRoseAt { get; init; } = [];
}

/// <summary>
/// <c>{stateDirectory}/fault-guard.json</c> through the one state-file type (<see cref="StateFile{T}"/>). An
/// unusable file is set aside; until the reconcile has re-read the machine the guard's trip is unknown, and it
/// is then re-established towards keeping the machine off the market, never towards relisting it.
/// </summary>
public sealed class FaultGuardStore(string stateDirectory, TimeProvider? time = null, ILogger? logger = null, IStateFileObserver? observer = null)
{
    public const string FileName = "fault-guard.json";

    private readonly StateFile<FaultGuardState> _file = new(stateDirectory, FileName, MaintenanceJsonContext.Default.FaultGuardState,
        static () => new FaultGuardState(), Validate, time, logger, observer);

    public StateRead<FaultGuardState> Read() => _file.Read();

    public FaultGuardState Load() => _file.Read().Value;

    public FaultGuardState Save(FaultGuardState state) => _file.Update(_ => state).Value;

    /// <summary>Ends a pending recovery with the trip re-established from the machine.</summary>
    public FaultGuardState Resolve(Func<FaultGuardState, FaultGuardState> reestablish) => _file.Resolve(reestablish).Value;

    private static string? Validate(FaultGuardState state) =>
        state.Tripped && state.TrippedAt is null ? "tripped without a trip time"
        : state.Since.Keys.Any(k => !FaultGuard.Conditions.Contains(k)) ? "unknown condition"
        : null;
}

/// <summary>What the guard wants this cycle.</summary>
public sealed record GuardVerdict(
    FaultGuardState State,
    IReadOnlyDictionary<string, string> Active,
    bool RequestCleanup,
    string? Tripped,
    bool Cleared)
{
    /// <summary>Set when rig health was unknown this cycle: the guard held (no trip, no clear), and why.</summary>
    public string? Unknown { get; init; }
}

/// <summary>
/// Decides, from the snapshot, whether the rig is too faulty to take new rentals: a GPU lost or missing from the
/// PCI bus (a GPU passed through to a VM rental is neither), NVML gone,
/// critical XIDs, uncorrectable ECC errors rising, Docker down, Docker's disk nearly full (after first asking
/// Vast to clean up expired storage contracts). A condition must hold for <c>holdFor</c> before the guard
/// trips; every condition must stay clear for <c>clearFor</c> (doubled for each repeat trip within a day,
/// up to 8×) before it restores: flapping inputs cannot make it unlist and relist again and again. Pure.
/// </summary>
public static class FaultGuard
{
    public const string GpuLost = "gpu_lost";
    public const string NvmlUnavailable = "nvml_unavailable";
    public const string CriticalXid = "critical_xid";
    public const string EccUncorrectable = "ecc_uncorrectable";
    public const string DockerDown = "docker_down";
    public const string DiskLow = "disk_low";
    public const string AgentDown = "agent_down";
    public const string GpuMissing = "gpu_missing";

    public static readonly string[] Conditions = [GpuLost, GpuMissing, NvmlUnavailable, CriticalXid, EccUncorrectable, DockerDown, DiskLow, AgentDown];

    private static readonly TimeSpan Recent = TimeSpan.FromMinutes(10);

    /// <summary>Evaluates the local snapshot (standalone).</summary>
    public static GuardVerdict Evaluate(FaultGuardState state, HostSnapshot snapshot, FaultGuardOptions o, DateTimeOffset now, bool inMaintenance) =>
        Evaluate(state, RigObservations.FromSnapshot(snapshot), o, now, inMaintenance);

    /// <summary>
    /// Evaluates one observation of the rig. An unknown observation (no fresh data) holds: nothing trips, nothing
    /// clears, the episode timers stay as they were.
    /// </summary>
    public static GuardVerdict Evaluate(FaultGuardState state, RigObservation rig, FaultGuardOptions o, DateTimeOffset now, bool inMaintenance)
    {
        if (!rig.Known)
        {
            return new GuardVerdict(state, new Dictionary<string, string>(), false, null, false) { Unknown = rig.Problem ?? "rig health unknown" };
        }

        var active = new Dictionary<string, string>(StringComparer.Ordinal);
        if (o.AgentDown && rig.AgentDown is { } agentDown)
        {
            active[AgentDown] = agentDown;
        }

        if (o.NvmlUnavailable && rig.NvmlDown is { } nvmlDown)
        {
            active[NvmlUnavailable] = nvmlDown;
        }

        if (o.GpuLost && rig.NvmlDown is null && rig.LostGpus.Count > 0)
        {
            active[GpuLost] = string.Join(", ", rig.LostGpus);
        }

        if (o.GpuMissing && rig.MissingGpus.Count > 0)
        {
            active[GpuMissing] = string.Join(", ", rig.MissingGpus);
        }

        if (o.CriticalXids.Count > 0)
        {
            var recent = rig.Xids.Where(x => o.CriticalXids.Contains((int)x.Xid) && now - x.LastSeen <= o.HoldFor + Recent).ToList();
            if (recent.Count > 0)
            {
                active[CriticalXid] = string.Join(", ", recent.Select(x => x.GpuIndex < 0 && x.PciAddress is not null
                    ? string.Create(CultureInfo.InvariantCulture, $"XID {x.Xid} on the GPU at PCI {x.PciAddress}")
                    : string.Create(CultureInfo.InvariantCulture, $"XID {x.Xid} on GPU {x.GpuIndex}")));
            }
        }

        var eccSeen = new Dictionary<string, ulong>(state.EccSeen, StringComparer.Ordinal);
        var eccRose = new Dictionary<string, DateTimeOffset>(state.EccRoseAt, StringComparer.Ordinal);
        foreach (var (uuid, count) in rig.EccUncorrected)
        {
            if (eccSeen.TryGetValue(uuid, out var before) && count > before)
            {
                eccRose[uuid] = now;
            }

            eccSeen[uuid] = count;
        }

        if (o.EccUncorrectable && eccRose.Where(e => now - e.Value <= o.HoldFor + Recent).ToList() is { Count: > 0 } rising)
        {
            active[EccUncorrectable] = "uncorrectable ECC errors rising on " + string.Join(", ", rising.Select(r => r.Key));
        }

        if (o.DockerDown && rig.DockerDown is { } dockerDown)
        {
            active[DockerDown] = dockerDown;
        }

        var requestCleanup = false;
        var cleanupAt = state.CleanupAt;
        if (rig.Disk is { TotalBytes: > 0 } disk && (double)disk.AvailableBytes / disk.TotalBytes < o.MinFreeDiskRatio)
        {
            // First ask Vast to delete expired storage contracts; act only if space stays low after that.
            if (cleanupAt is null)
            {
                requestCleanup = true;
                cleanupAt = now;
            }
            else if (now - cleanupAt.Value >= o.HoldFor)
            {
                active[DiskLow] = string.Create(CultureInfo.InvariantCulture, $"{disk.AvailableBytes / 1e9:0.0} GB free of {disk.TotalBytes / 1e9:0.0} GB on {disk.Path} after a cleanup");
            }
        }
        else
        {
            cleanupAt = null;
        }

        var since = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
        foreach (var condition in active.Keys)
        {
            since[condition] = state.Since.TryGetValue(condition, out var first) ? first : now;
        }

        var next = state with { Since = since, CleanupAt = cleanupAt, EccSeen = eccSeen, EccRoseAt = eccRose };
        if (!state.Tripped)
        {
            var held = active.Keys.Where(c => now - since[c] >= o.HoldFor).ToList();
            if (held.Count > 0 && !inMaintenance)
            {
                var reason = string.Join("; ", held.Select(c => $"{c}: {active[c]}"));
                var trips = state.Trips.Where(t => now - t < TimeSpan.FromDays(1)).Append(now).ToList();
                next = next with { Tripped = true, TrippedAt = now, Reason = reason, ClearSince = null, Trips = trips };
                return new GuardVerdict(next, active, requestCleanup, reason, false);
            }

            return new GuardVerdict(next, active, requestCleanup, null, false);
        }

        if (active.Count > 0)
        {
            return new GuardVerdict(next with { ClearSince = null }, active, requestCleanup, null, false);
        }

        var clearSince = state.ClearSince ?? now;
        var repeats = Math.Max(0, state.Trips.Count(t => now - t < TimeSpan.FromDays(1)) - 1);
        var needed = TimeSpan.FromTicks(o.ClearFor.Ticks * (1L << Math.Min(3, repeats)));
        if (now - clearSince >= needed)
        {
            return new GuardVerdict(next with { Tripped = false, Reason = null, ClearSince = null }, active, requestCleanup, null, true);
        }

        return new GuardVerdict(next with { ClearSince = clearSince }, active, requestCleanup, null, false);
    }
}

/// <summary>The rig observation of the local snapshot (standalone and rig roles).</summary>
public static class RigObservations
{
    public static RigObservation FromSnapshot(HostSnapshot snapshot)
    {
        var gpu = snapshot.Gpu;
        var count = snapshot.GpuCount;
        return new RigObservation
        {
            NvmlDown = gpu is { NvmlUp: false } ? gpu.Problem ?? "NVML unavailable" : null,

            // A GPU handed to vfio-pci (a VM rental) leaves NVML: that is Vast renting it, not a fault.
            LostGpus = gpu is { NvmlUp: true }
                ? [.. gpu.Gpus.Where(g => !g.Up && count?.IsPassthrough(g.Identity.PciBusId) != true).Select(g => $"GPU {g.Identity.Index} {g.DownReason}")]
                : [],
            MissingGpus = count is null ? [] : [.. count.Missing.Select(m => $"{m.Address} {m.Reason}")],

            // NVML events and the kernel log: the kernel log keeps reporting while NVML hangs or is gone.
            Xids = [.. snapshot.AllXids.Select(x => new RigXid(x.Xid, x.GpuIndex, x.LastSeen) { PciAddress = x.GpuIndex < 0 ? x.PciAddress : null })],
            EccUncorrected = gpu is null
                ? new Dictionary<string, ulong>()
                : gpu.Gpus.Where(g => g.EccVolatileUncorrected is not null).GroupBy(g => g.Identity.Uuid).ToDictionary(g => g.Key, g => g.First().EccVolatileUncorrected!.Value, StringComparer.Ordinal),
            DockerDown = snapshot.Docker is { Up: false } docker ? docker.Problem ?? "Docker unreachable" : null,
            Disk = snapshot.Disk is { } disk ? new RigDisk(disk.Path, disk.AvailableBytes, disk.TotalBytes) : null,
        };
    }
}
