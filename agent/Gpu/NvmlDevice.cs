using static VastHostAgent.Interop.Nvml;

namespace VastHostAgent.Gpu;

/// <summary>What the session knows about one opened GPU, from one NVML initialisation to the next.</summary>
internal sealed class NvmlDevice(nint handle, int index, string uuid)
{
    public nint Handle { get; } = handle;

    /// <summary>The NVML index it was opened by (known before the identity reads).</summary>
    public int Index { get; } = index;

    /// <summary>Its UUID (read first: the identity reads may already find the GPU lost).</summary>
    public string Uuid { get; } = uuid;

    /// <summary>Set once the identity reads are done (null while they run).</summary>
    public GpuIdentity Identity { get; set; } = null!;

    /// <summary>Exports NVML answered NOT_SUPPORTED for on this GPU: not asked again until the next initialisation.</summary>
    public HashSet<string> Unsupported { get; } = new(StringComparer.Ordinal);

    /// <summary>The code that took the GPU down in this cycle (lost, reset required, not found); null while it answers.</summary>
    public Return? Down { get; set; }

    /// <summary>The last down code logged, so a GPU that stays down is logged once.</summary>
    public Return? LoggedDown { get; set; }

    /// <summary>Readings that do not change while the driver runs, read once per initialisation.</summary>
    public DeviceStatics Statics { get; set; } = new();

    /// <summary>How many compute processes the last process list had (the next list's first buffer size).</summary>
    public int LastProcessCount { get; set; }

    /// <summary>This GPU's GPM state: support as NVML answered it, and the samples it keeps between cycles.</summary>
    public GpmState Gpm;

    /// <summary>The reading of a GPU that went down: identity, up = 0 and the NVML code, nothing else.</summary>
    public GpuReading DownReading() => new() { Identity = Identity, Up = false, DownReason = NvmlCodes.Name(Down!.Value) };
}

/// <summary>Whether a GPU supports GPM, as far as this initialisation knows.</summary>
internal enum GpmAvailability
{
    /// <summary>Not asked yet (asked at the GPU's first cycle).</summary>
    Unknown,
    Supported,
    Unsupported,
}

/// <summary>
/// A GPU's GPM samples: two NVML sample handles, alternately the previous cycle's and the current one's, so every
/// cycle computes its metrics over one sampling interval. Zero handles are not allocated; <see cref="NvmlGpm.Release"/>
/// frees them.
/// </summary>
internal struct GpmState
{
    public GpmAvailability Support;
    public nint Previous;
    public nint Current;

    /// <summary><see cref="Previous"/> holds a sample taken at the previous cycle (metrics can be computed).</summary>
    public bool HasPrevious;
}

/// <summary>A GPU's identity as the identity reads fill it; a failed read leaves the default.</summary>
internal struct DeviceIdentityParts(int index)
{
    public int Index = index;
    public string Name = "unknown";
    public string PciBusId = "";
    public int? MinorNumber;
    public string? VbiosVersion;
    public string? ComputeCapability;

    public readonly GpuIdentity ToIdentity(string uuid) =>
        new(Index, uuid, Name, PciBusId, MinorNumber, VbiosVersion, ComputeCapability);
}

/// <summary>Readings read once per initialisation (limits, maxima, fan count); null when NVML does not give them.</summary>
internal struct DeviceStatics()
{
    public double? ShutdownTemp;
    public double? SlowdownTemp;
    public double? GpuMaxTemp;
    public double? MemoryMaxTemp;
    public double? DefaultPowerLimitWatts;
    public int? PcieGenMax;
    public int? PcieWidthMax;
    public IReadOnlyDictionary<GpuClock, double> MaxClocks = new Dictionary<GpuClock, double>();

    /// <summary>Fans to ask for; with <see cref="LegacyFan"/>, 1 when the library has the fan-0 export, else 0.</summary>
    public int FanCount;

    /// <summary>NVML does not report a fan count (no export, or it failed): only fan 0 is read, by the unversioned export.</summary>
    public bool LegacyFan;
}

/// <summary>One GPU's readings of one cycle as the per-cycle reads fill them; null = absent.</summary>
internal struct GpuReadingBuilder(int fanCount)
{
    public double? Util, MemUtil, EncUtil, DecUtil, Temp, MemTemp, Power, PowerLimit, Energy;
    public double? GrActive, TensorActive, DramActive, PcieTx, PcieRx, NvlinkTx, NvlinkRx;
    public ulong? MemTotal, MemUsed, MemFree, MemReserved, PcieReplay, EccVolCorr, EccVolUnc, EccAggCorr, EccAggUnc;
    public List<(int Fan, double Ratio)> Fans = new(fanCount);
    public Dictionary<GpuClock, double> Clocks = new(4);
    public int? PState, PcieGen, PcieWidth;
    public ClockEventReasons? Reasons;
    public bool? Persistence, Ecc, RemapPending, RemapFailed;
    public uint? RemapCorr, RemapUnc;
    public IReadOnlyList<GpuProcess> Processes = [];

    public readonly GpuReading Build(NvmlDevice d) => new()
    {
        Identity = d.Identity,
        UtilizationRatio = Util,
        MemoryControllerUtilizationRatio = MemUtil,
        EncoderUtilizationRatio = EncUtil,
        DecoderUtilizationRatio = DecUtil,
        MemoryTotalBytes = MemTotal,
        MemoryUsedBytes = MemUsed,
        MemoryFreeBytes = MemFree,
        MemoryReservedBytes = MemReserved,
        TemperatureCelsius = Temp,
        MemoryTemperatureCelsius = MemTemp,
        ShutdownTemperatureCelsius = d.Statics.ShutdownTemp,
        SlowdownTemperatureCelsius = d.Statics.SlowdownTemp,
        GpuMaxTemperatureCelsius = d.Statics.GpuMaxTemp,
        MemoryMaxTemperatureCelsius = d.Statics.MemoryMaxTemp,
        PowerUsageWatts = Power,
        PowerLimitWatts = PowerLimit,
        PowerDefaultLimitWatts = d.Statics.DefaultPowerLimitWatts,
        EnergyConsumedJoules = Energy,
        Fans = Fans,
        ClocksHz = Clocks,
        MaxClocksHz = d.Statics.MaxClocks,
        PerformanceState = PState,
        ClockEventReasons = Reasons,
        PcieLinkGeneration = PcieGen,
        PcieLinkGenerationMax = d.Statics.PcieGenMax,
        PcieLinkWidth = PcieWidth,
        PcieLinkWidthMax = d.Statics.PcieWidthMax,
        PcieReplayCount = PcieReplay,
        PersistenceMode = Persistence,
        EccEnabled = Ecc,
        EccVolatileCorrected = EccVolCorr,
        EccVolatileUncorrected = EccVolUnc,
        EccAggregateCorrected = EccAggCorr,
        EccAggregateUncorrected = EccAggUnc,
        RemappedRowsCorrectable = RemapCorr,
        RemappedRowsUncorrectable = RemapUnc,
        RowRemapPending = RemapPending,
        RowRemapFailed = RemapFailed,
        Processes = Processes,
        GraphicsEngineActiveRatio = GrActive,
        TensorActiveRatio = TensorActive,
        DramActiveRatio = DramActive,
        PcieTransmitBytesPerSecond = PcieTx,
        PcieReceiveBytesPerSecond = PcieRx,
        NvlinkTransmitBytesPerSecond = NvlinkTx,
        NvlinkReceiveBytesPerSecond = NvlinkRx,
    };
}
