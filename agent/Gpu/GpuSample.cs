namespace VastHostAgent.Gpu;

/// <summary>Identity of one GPU, read once per NVML initialisation.</summary>
public sealed record GpuIdentity(
    int Index,
    string Uuid,
    string Name,
    string PciBusId,
    int? MinorNumber,
    string? VbiosVersion,
    string? ComputeCapability);

/// <summary>Why the GPU lowers its clocks (NVML clock event / throttle reasons), one bit each.</summary>
[Flags]
public enum ClockEventReasons : ulong
{
    None = 0,
    GpuIdle = 0x1,
    ApplicationsClocksSetting = 0x2,
    SwPowerCap = 0x4,
    HwSlowdown = 0x8,
    SyncBoost = 0x10,
    SwThermalSlowdown = 0x20,
    HwThermalSlowdown = 0x40,
    HwPowerBrakeSlowdown = 0x80,
    DisplayClockSetting = 0x100,
}

/// <summary>Clock domains reported per GPU.</summary>
public enum GpuClock
{
    Graphics,
    Sm,
    Memory,
    Video,
}

/// <summary>
/// One reading of one GPU. A null value means the reading is absent (NVML said NOT_SUPPORTED, or the
/// call failed): the corresponding series is left out, never reported as 0.
/// </summary>
public sealed record GpuReading
{
    public required GpuIdentity Identity { get; init; }

    /// <summary>False when NVML reported the GPU lost or needing a reset; other readings are then absent.</summary>
    public bool Up { get; init; } = true;

    /// <summary>The NVML code that took the GPU down (GPU_IS_LOST, RESET_REQUIRED), when <see cref="Up"/> is false.</summary>
    public string? DownReason { get; init; }

    public double? UtilizationRatio { get; init; }
    public double? MemoryControllerUtilizationRatio { get; init; }
    public double? EncoderUtilizationRatio { get; init; }
    public double? DecoderUtilizationRatio { get; init; }

    public ulong? MemoryTotalBytes { get; init; }
    public ulong? MemoryUsedBytes { get; init; }
    public ulong? MemoryFreeBytes { get; init; }
    public ulong? MemoryReservedBytes { get; init; }

    public double? TemperatureCelsius { get; init; }
    public double? MemoryTemperatureCelsius { get; init; }
    public double? ShutdownTemperatureCelsius { get; init; }
    public double? SlowdownTemperatureCelsius { get; init; }
    public double? GpuMaxTemperatureCelsius { get; init; }
    public double? MemoryMaxTemperatureCelsius { get; init; }

    public double? PowerUsageWatts { get; init; }
    public double? PowerLimitWatts { get; init; }
    public double? PowerDefaultLimitWatts { get; init; }
    public double? EnergyConsumedJoules { get; init; }

    /// <summary>
    /// Energy used between two readings of NVML's energy counter (J). A lower counter than last time means the
    /// driver reset it (a reload, a GPU reset): what it shows now is what was used since. The one rule for every
    /// consumer of the counter (power cost, the rental ledger).
    /// </summary>
    public static double EnergySince(double lastCounter, double counter) => counter >= lastCounter ? counter - lastCounter : counter;

    /// <summary>Fan speed per fan index as a ratio of the maximum (may exceed 1).</summary>
    public IReadOnlyList<(int Fan, double Ratio)> Fans { get; init; } = [];

    public IReadOnlyDictionary<GpuClock, double> ClocksHz { get; init; } = EmptyClocks;
    public IReadOnlyDictionary<GpuClock, double> MaxClocksHz { get; init; } = EmptyClocks;

    public int? PerformanceState { get; init; }
    public ClockEventReasons? ClockEventReasons { get; init; }

    public int? PcieLinkGeneration { get; init; }
    public int? PcieLinkGenerationMax { get; init; }
    public int? PcieLinkWidth { get; init; }
    public int? PcieLinkWidthMax { get; init; }
    public ulong? PcieReplayCount { get; init; }

    public bool? PersistenceMode { get; init; }
    public bool? EccEnabled { get; init; }
    public ulong? EccVolatileCorrected { get; init; }
    public ulong? EccVolatileUncorrected { get; init; }
    public ulong? EccAggregateCorrected { get; init; }
    public ulong? EccAggregateUncorrected { get; init; }

    public uint? RemappedRowsCorrectable { get; init; }
    public uint? RemappedRowsUncorrectable { get; init; }
    public bool? RowRemapPending { get; init; }
    public bool? RowRemapFailed { get; init; }

    /// <summary>
    /// Profiling figures from NVML GPM (Hopper and newer), each over the last sampling interval: graphics engine, any
    /// tensor pipe and DRAM interface active (ratios 0–1), PCIe and NVLink traffic (bytes per second). Absent on GPUs
    /// without GPM, on drivers without its exports, and at a GPU's first cycle.
    /// </summary>
    public double? GraphicsEngineActiveRatio { get; init; }
    public double? TensorActiveRatio { get; init; }
    public double? DramActiveRatio { get; init; }
    public double? PcieTransmitBytesPerSecond { get; init; }
    public double? PcieReceiveBytesPerSecond { get; init; }
    public double? NvlinkTransmitBytesPerSecond { get; init; }
    public double? NvlinkReceiveBytesPerSecond { get; init; }

    /// <summary>Compute processes on this GPU (host PIDs) and their GPU memory, when NVML reports them.</summary>
    public IReadOnlyList<GpuProcess> Processes { get; init; } = [];

    private static readonly IReadOnlyDictionary<GpuClock, double> EmptyClocks = new Dictionary<GpuClock, double>();
}

/// <summary>A compute process on a GPU, as NVML reports it (host PID namespace).</summary>
public readonly record struct GpuProcess(int Pid, ulong? UsedMemoryBytes);

/// <summary>
/// XID error tally for one GPU and XID code since the agent started, from NVML events and the kernel log (an event
/// both report counts once). A GPU NVML has never identified (known only from the kernel log) has an empty
/// <see cref="Uuid"/>, <see cref="GpuIndex"/> -1 and its <see cref="PciAddress"/>.
/// </summary>
public readonly record struct XidCount(string Uuid, int GpuIndex, ulong Xid, ulong Count, DateTimeOffset LastSeen)
{
    /// <summary>The GPU's PCI address in the kernel's form (<c>0000:01:00</c>), when the kernel log named it.</summary>
    public string? PciAddress { get; init; }
}

/// <summary>NVML failures, counted by function and return code since the agent started.</summary>
public readonly record struct NvmlErrorCount(string Function, string Code, ulong Count);

/// <summary>Everything the GPU sampler saw in one cycle. Immutable.</summary>
public sealed record GpuSample
{
    public static GpuSample Unavailable(string reason) => new() { NvmlUp = false, Problem = reason };

    /// <summary>NVML is loaded and initialised.</summary>
    public bool NvmlUp { get; init; }

    /// <summary>Why NVML is not usable, when <see cref="NvmlUp"/> is false.</summary>
    public string? Problem { get; init; }

    public string? DriverVersion { get; init; }
    public string? NvmlVersion { get; init; }
    public string? CudaVersion { get; init; }

    public IReadOnlyList<GpuReading> Gpus { get; init; } = [];
    public IReadOnlyList<XidCount> Xids { get; init; } = [];
    public IReadOnlyList<NvmlErrorCount> Errors { get; init; } = [];
}
