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
internal sealed class DcgmCompatibleSeries : ISnapshotSeries
{
    private static readonly string[] Labels = ["gpu", "UUID", "device", "modelName", "Hostname", "pci_bus_id", "DCGM_FI_DRIVER_VERSION"];

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

    private readonly string _hostname;

    public DcgmCompatibleSeries(SeriesFactory f, string hostname)
    {
        _hostname = hostname;
        TrackedGauge G(string name, string help) => f.Gauge(name, help, Labels);

        TrackedCounter C(string name, string help) => f.Counter(name, help, Labels);

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
        _xid = G("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.");
        _remapCorr = C("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "Number of remapped rows for correctable errors.");
        _remapUnc = C("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "Number of remapped rows for uncorrectable errors.");
        _remapFailure = G("DCGM_FI_DEV_ROW_REMAP_FAILURE", "Whether remapping of rows has failed.");
        _fan = G("DCGM_FI_DEV_FAN_SPEED", "Fan speed (in %), first fan.");
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
    ];

    public void Apply(HostSnapshot snapshot) => Apply(snapshot.Gpu, _hostname);

    private void Apply(GpuSample? sample, string hostname)
    {
        if (sample is null)
        {
            return;
        }

        const double MiB = 1024 * 1024;
        foreach (var r in sample.Gpus)
        {
            if (!r.Up)
            {
                continue;
            }

            var id = r.Identity;
            string[] l =
            [
                id.Index.ToString(CultureInfo.InvariantCulture),
                id.Uuid,
                "nvidia" + (id.MinorNumber ?? id.Index).ToString(CultureInfo.InvariantCulture),
                id.Name,
                hostname,
                id.PciBusId,
                sample.DriverVersion ?? "",
            ];
            _util.Set(r.UtilizationRatio * 100, l);
            _memCopyUtil.Set(r.MemoryControllerUtilizationRatio * 100, l);
            _encUtil.Set(r.EncoderUtilizationRatio * 100, l);
            _decUtil.Set(r.DecoderUtilizationRatio * 100, l);
            _fbUsed.Set(r.MemoryUsedBytes / MiB, l);
            _fbFree.Set(r.MemoryFreeBytes / MiB, l);
            _fbReserved.Set(r.MemoryReservedBytes / MiB, l);
            _gpuTemp.Set(r.TemperatureCelsius, l);
            _memTemp.Set(r.MemoryTemperatureCelsius, l);
            _power.Set(r.PowerUsageWatts, l);
            _powerLimit.Set(r.PowerLimitWatts, l);
            _energy.Set(r.EnergyConsumedJoules * 1000, l);
            _smClock.Set(r.ClocksHz.TryGetValue(GpuClock.Sm, out var sm) ? sm / 1e6 : null, l);
            _memClock.Set(r.ClocksHz.TryGetValue(GpuClock.Memory, out var mem) ? mem / 1e6 : null, l);
            _pcieReplay.Set(r.PcieReplayCount, l);
            _remapCorr.Set(r.RemappedRowsCorrectable, l);
            _remapUnc.Set(r.RemappedRowsUncorrectable, l);
            _remapFailure.Set(r.RowRemapFailed is null ? null : r.RowRemapFailed.Value ? 1 : 0, l);
            _fan.Set(r.Fans.Count > 0 ? r.Fans[0].Ratio * 100 : null, l);

            var last = sample.Xids.Where(x => x.Uuid == id.Uuid).OrderByDescending(x => x.LastSeen).FirstOrDefault();
            _xid.Set(last.Uuid is null ? 0 : last.Xid, l);
        }
    }
}
