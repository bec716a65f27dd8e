using System.Globalization;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;

namespace VastHostAgent.Metrics;

/// <summary>
/// Core GPU readings under the names, units and labels of NVIDIA's dcgm-exporter (default counters CSV),
/// so NVIDIA's "DCGM Exporter Dashboard" (grafana.com 12239) works unchanged. Opt-in through
/// <c>metrics.dcgmCompatible</c>: these names break Prometheus naming rules on purpose (upper case,
/// non-base units, camelCase labels), so promtool's lint reports them.
/// </summary>
/// <remarks>
/// Values are DCGM's: the integer fields (utilisation %, MiB, MHz, °C, mJ) are printed as integers (MiB floored as
/// DCGM does), so exact-equality PromQL such as <c>DCGM_FI_DEV_GPU_UTIL == 56</c> matches. <c>device</c> is
/// <c>nvidia&lt;gpu index&gt;</c>, as dcgm-exporter prints it (not the minor number). The profiling fields
/// (<c>DCGM_FI_PROF_*</c>) come from NVML GPM, only on GPUs that support it.
/// </remarks>
internal sealed class DcgmCompatibleSeries : ISnapshotSeries
{
    private readonly TrackedGauge _util;
    private readonly TrackedGauge _memCopyUtil;
    private readonly TrackedGauge _encUtil;
    private readonly TrackedGauge _decUtil;
    private readonly TrackedGauge _fbUsed;
    private readonly TrackedGauge _fbFree;
    private readonly TrackedGauge _fbReserved;
    private readonly TrackedGauge _gpuTemp;
    private readonly TrackedGauge _memTemp;
    private readonly TrackedGauge _power;
    private readonly TrackedGauge _powerLimit;
    private readonly TrackedCounter _energy;
    private readonly TrackedGauge _smClock;
    private readonly TrackedGauge _memClock;
    private readonly TrackedCounter _pcieReplay;
    private readonly TrackedGauge _xid;
    private readonly TrackedCounter _remapCorr;
    private readonly TrackedCounter _remapUnc;
    private readonly TrackedGauge _remapFailure;
    private readonly TrackedGauge _fan;
    private readonly TrackedCounter _eccSbeVol;
    private readonly TrackedCounter _eccDbeVol;
    private readonly TrackedCounter _eccSbeAgg;
    private readonly TrackedCounter _eccDbeAgg;
    private readonly TrackedGauge _grActive;
    private readonly TrackedGauge _tensorActive;
    private readonly TrackedGauge _dramActive;
    private readonly TrackedGauge _pcieTx;
    private readonly TrackedGauge _pcieRx;
    private readonly TrackedGauge _nvlinkTx;
    private readonly TrackedGauge _nvlinkRx;

    private readonly string _hostname;

    /// <param name="f">The series factory.</param>
    /// <param name="hostname">The host-name label's value.</param>
    /// <param name="hostnameLabel">The host-name label's name: <c>Hostname</c> (released dcgm-exporter) or <c>hostname</c>.</param>
    public DcgmCompatibleSeries(SeriesFactory f, string hostname, string hostnameLabel = "Hostname")
    {
        _hostname = hostname;
        string[] labels = ["gpu", "UUID", "device", "modelName", hostnameLabel, "pci_bus_id", "DCGM_FI_DRIVER_VERSION"];
        TrackedGauge G(string name, string help) => f.Gauge(name, help, labels);

        TrackedCounter C(string name, string help) => f.Counter(name, help, labels);

        _util = G("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).");
        _memCopyUtil = G("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (in %).");
        _encUtil = G("DCGM_FI_DEV_ENC_UTIL", "Encoder utilization (in %).");
        _decUtil = G("DCGM_FI_DEV_DEC_UTIL", "Decoder utilization (in %).");
        _fbUsed = G("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).");
        _fbFree = G("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).");
        _fbReserved = G("DCGM_FI_DEV_FB_RESERVED", "Framebuffer memory reserved (in MiB).");
        _gpuTemp = G("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).");
        _memTemp = G("DCGM_FI_DEV_MEMORY_TEMP", "Memory temperature (in C).");
        _power = G("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).");
        _powerLimit = G("DCGM_FI_DEV_POWER_MGMT_LIMIT", "Power management limit (in W).");
        _energy = C("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "Total energy consumption since boot (in mJ).");
        _smClock = G("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).");
        _memClock = G("DCGM_FI_DEV_MEM_CLOCK", "Memory clock frequency (in MHz).");
        _pcieReplay = C("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "Total number of PCIe retries.");
        _xid = f.Gauge("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", [.. labels, "err_code", "err_msg"]);
        _remapCorr = C("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "Number of remapped rows for correctable errors.");
        _remapUnc = C("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "Number of remapped rows for uncorrectable errors.");
        _remapFailure = G("DCGM_FI_DEV_ROW_REMAP_FAILURE", "Whether remapping of rows has failed.");
        _fan = G("DCGM_FI_DEV_FAN_SPEED", "Fan speed (in %), first fan.");
        _eccSbeVol = C("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "Total number of single-bit volatile ECC errors.");
        _eccDbeVol = C("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "Total number of double-bit volatile ECC errors.");
        _eccSbeAgg = C("DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "Total number of single-bit persistent ECC errors.");
        _eccDbeAgg = C("DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "Total number of double-bit persistent ECC errors.");
        _grActive = G("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "Ratio of time the graphics engine is active.");
        _tensorActive = G("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "Ratio of cycles any tensor pipe is active.");
        _dramActive = G("DCGM_FI_PROF_DRAM_ACTIVE", "Ratio of cycles the device memory interface is active sending or receiving data.");
        _pcieTx = G("DCGM_FI_PROF_PCIE_TX_BYTES", "The rate of data transmitted over the PCIe bus - including both protocol headers and data payloads - in bytes per second.");
        _pcieRx = G("DCGM_FI_PROF_PCIE_RX_BYTES", "The rate of data received over the PCIe bus - including both protocol headers and data payloads - in bytes per second.");
        _nvlinkTx = G("DCGM_FI_PROF_NVLINK_TX_BYTES", "The rate of data transmitted over NVLink, in bytes per second.");
        _nvlinkRx = G("DCGM_FI_PROF_NVLINK_RX_BYTES", "The rate of data received over NVLink, in bytes per second.");
    }

    /// <summary>The dcgm-exporter family names this class writes (for documentation tests).</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL",
        "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_RESERVED", "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_POWER_MGMT_LIMIT",
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK",
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_ROW_REMAP_FAILURE", "DCGM_FI_DEV_FAN_SPEED",
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
        "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
        "DCGM_FI_PROF_DRAM_ACTIVE", "DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_PCIE_RX_BYTES",
        "DCGM_FI_PROF_NVLINK_TX_BYTES", "DCGM_FI_PROF_NVLINK_RX_BYTES",
    ];

    public void Apply(HostSnapshot snapshot)
    {
        if (snapshot.Gpu is not { } sample)
        {
            return;
        }

        IReadOnlyList<XidCount>? xids = null;
        foreach (var r in sample.Gpus)
        {
            if (!r.Up)
            {
                continue;
            }

            var id = r.Identity;
            var gpu = id.Index.ToString(CultureInfo.InvariantCulture);
            string[] l = [gpu, id.Uuid, "nvidia" + gpu, id.Name, _hostname, id.PciBusId, sample.DriverVersion ?? ""];
            _util.Set(Percent(r.UtilizationRatio), l);
            _memCopyUtil.Set(Percent(r.MemoryControllerUtilizationRatio), l);
            _encUtil.Set(Percent(r.EncoderUtilizationRatio), l);
            _decUtil.Set(Percent(r.DecoderUtilizationRatio), l);
            _fbUsed.Set(MiB(r.MemoryUsedBytes), l);
            _fbFree.Set(MiB(r.MemoryFreeBytes), l);
            _fbReserved.Set(MiB(r.MemoryReservedBytes), l);
            _gpuTemp.Set(Whole(r.TemperatureCelsius), l);
            _memTemp.Set(Whole(r.MemoryTemperatureCelsius), l);
            _power.Set(r.PowerUsageWatts, l);
            _powerLimit.Set(r.PowerLimitWatts, l);
            _energy.Set(Whole(r.EnergyConsumedJoules * 1000), l);
            _smClock.Set(r.ClocksHz.TryGetValue(GpuClock.Sm, out var sm) ? Whole(sm / 1e6) : null, l);
            _memClock.Set(r.ClocksHz.TryGetValue(GpuClock.Memory, out var mem) ? Whole(mem / 1e6) : null, l);
            _pcieReplay.Set(r.PcieReplayCount, l);
            _remapCorr.Set(r.RemappedRowsCorrectable, l);
            _remapUnc.Set(r.RemappedRowsUncorrectable, l);
            _remapFailure.Set(r.RowRemapFailed is null ? null : r.RowRemapFailed.Value ? 1 : 0, l);
            _fan.Set(r.Fans.Count > 0 ? Percent(r.Fans[0].Ratio) : null, l);
            _eccSbeVol.Set(r.EccVolatileCorrected, l);
            _eccDbeVol.Set(r.EccVolatileUncorrected, l);
            _eccSbeAgg.Set(r.EccAggregateCorrected, l);
            _eccDbeAgg.Set(r.EccAggregateUncorrected, l);
            _grActive.Set(r.GraphicsEngineActiveRatio, l);
            _tensorActive.Set(r.TensorActiveRatio, l);
            _dramActive.Set(r.DramActiveRatio, l);
            _pcieTx.Set(Whole(r.PcieTransmitBytesPerSecond), l);
            _pcieRx.Set(Whole(r.PcieReceiveBytesPerSecond), l);
            _nvlinkTx.Set(Whole(r.NvlinkTransmitBytesPerSecond), l);
            _nvlinkRx.Set(Whole(r.NvlinkReceiveBytesPerSecond), l);

            // The last XID of the GPU (NVML events or the kernel log), as DCGM keeps it; 0 "No Error" before any.
            xids ??= snapshot.AllXids;
            var last = 0UL;
            var lastSeen = DateTimeOffset.MinValue;
            foreach (var x in xids)
            {
                if (x.Uuid == id.Uuid && x.LastSeen >= lastSeen)
                {
                    (last, lastSeen) = (x.Xid, x.LastSeen);
                }
            }

            _xid.Set(last, [.. l, last.ToString(CultureInfo.InvariantCulture), XidCatalog.Describe(last)]);
        }
    }

    /// <summary>A ratio read from an integer percentage, back as that integer (0.56 × 100 is 56.00000000000001).</summary>
    private static double? Percent(double? ratio) => ratio is { } r ? Math.Round(r * 100) : null;

    /// <summary>Bytes in whole MiB, floored as DCGM reports framebuffer sizes.</summary>
    private static double? MiB(ulong? bytes) => bytes is { } b ? (double)(b / (1024 * 1024)) : null;

    private static double? Whole(double? value) => value is { } v ? Math.Round(v) : null;
}
