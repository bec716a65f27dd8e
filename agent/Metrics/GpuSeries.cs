using System.Globalization;
using VastHostAgent.Gpu;
using VastHostAgent.GpuCount;
using VastHostAgent.Kernel;

namespace VastHostAgent.Metrics;

/// <summary>NVML readings per GPU (labels <c>gpu</c>, <c>uuid</c>), NVML's own health, errors, and XIDs from NVML events and the kernel log.</summary>
internal sealed class GpuSeries : ISnapshotSeries
{
    private readonly TrackedGauge _nvmlUp;
    private readonly TrackedCounter _nvmlErrors;
    private readonly TrackedGauge _gpuInfo;
    private readonly TrackedGauge _gpuUp;
    private readonly TrackedGauge _util;
    private readonly TrackedGauge _memUtil;
    private readonly TrackedGauge _encUtil;
    private readonly TrackedGauge _decUtil;
    private readonly TrackedGauge _memTotal;
    private readonly TrackedGauge _memUsed;
    private readonly TrackedGauge _memFree;
    private readonly TrackedGauge _memReserved;
    private readonly TrackedGauge _temp;
    private readonly TrackedGauge _memTemp;
    private readonly TrackedGauge _tempThreshold;
    private readonly TrackedGauge _power;
    private readonly TrackedGauge _powerLimit;
    private readonly TrackedGauge _powerDefaultLimit;
    private readonly TrackedCounter _energy;
    private readonly TrackedGauge _fan;
    private readonly TrackedGauge _clock;
    private readonly TrackedGauge _clockMax;
    private readonly TrackedGauge _pstate;
    private readonly TrackedGauge _clockEvent;
    private readonly TrackedGauge _pcieGen;
    private readonly TrackedGauge _pcieGenMax;
    private readonly TrackedGauge _pcieWidth;
    private readonly TrackedGauge _pcieWidthMax;
    private readonly TrackedCounter _pcieReplay;
    private readonly TrackedGauge _persistence;
    private readonly TrackedGauge _eccEnabled;
    private readonly TrackedCounter _eccVolatile;
    private readonly TrackedCounter _eccAggregate;
    private readonly TrackedGauge _remapped;
    private readonly TrackedGauge _remapPending;
    private readonly TrackedGauge _remapFailed;
    private readonly TrackedGauge _grActive;
    private readonly TrackedGauge _tensorActive;
    private readonly TrackedGauge _dramActive;
    private readonly TrackedGauge _pcieTx;
    private readonly TrackedGauge _pcieRx;
    private readonly TrackedGauge _nvlinkTx;
    private readonly TrackedGauge _nvlinkRx;
    private readonly TrackedCounter _xidTotal;
    private readonly TrackedGauge _xidLast;
    private readonly TrackedGauge _kernelLogUp;
    private readonly TrackedCounter _kernelXidTotal;
    private readonly TrackedGauge _kernelXidLast;

    public GpuSeries(SeriesFactory f)
    {
        // Both absent with gpu.enabled = false (a machine without NVIDIA GPUs is not "NVML down").
        _nvmlUp = f.Gauge("vasthost_nvml_up", "1 when the NVML library is loaded and initialised, else 0.");
        _nvmlErrors = f.Counter("vasthost_nvml_errors_total", "NVML calls that failed, by function and NVML return code (NOT_SUPPORTED is not an error).", "function", "code");

        string[] g = ["gpu", "uuid"];
        _gpuInfo = f.Gauge("vasthost_gpu_info", "GPU identity. Always 1; join on uuid for names.", "gpu", "uuid", "name", "pci_bus_id", "minor_number", "driver_version", "cuda_version", "vbios_version", "compute_capability");
        _gpuUp = f.Gauge("vasthost_gpu_up", "1 while NVML can read the GPU; 0 when it is lost, needs a reset, or has disappeared.", g);
        _util = f.Gauge("vasthost_gpu_utilization_ratio", "Fraction of the last sample period in which a kernel ran on the GPU.", g);
        _memUtil = f.Gauge("vasthost_gpu_memory_controller_utilization_ratio", "Fraction of the last sample period in which device memory was read or written.", g);
        _encUtil = f.Gauge("vasthost_gpu_encoder_utilization_ratio", "Video encoder utilisation.", g);
        _decUtil = f.Gauge("vasthost_gpu_decoder_utilization_ratio", "Video decoder utilisation.", g);
        _memTotal = f.Gauge("vasthost_gpu_memory_total_bytes", "Installed device memory.", g);
        _memUsed = f.Gauge("vasthost_gpu_memory_used_bytes", "Device memory allocated (excludes driver-reserved memory where the driver reports it separately).", g);
        _memFree = f.Gauge("vasthost_gpu_memory_free_bytes", "Device memory free.", g);
        _memReserved = f.Gauge("vasthost_gpu_memory_reserved_bytes", "Device memory reserved by the driver and firmware.", g);
        _temp = f.Gauge("vasthost_gpu_temperature_celsius", "GPU core temperature.", g);
        _memTemp = f.Gauge("vasthost_gpu_memory_temperature_celsius", "GPU memory (HBM) temperature.", g);
        _tempThreshold = f.Gauge("vasthost_gpu_temperature_threshold_celsius", "Temperature thresholds: shutdown, slowdown, gpu_max, memory_max.", "gpu", "uuid", "threshold");
        _power = f.Gauge("vasthost_gpu_power_usage_watts", "Power draw of the board.", g);
        _powerLimit = f.Gauge("vasthost_gpu_power_limit_watts", "Power limit the driver enforces.", g);
        _powerDefaultLimit = f.Gauge("vasthost_gpu_power_default_limit_watts", "Default power limit of the board.", g);
        _energy = f.Counter("vasthost_gpu_energy_consumed_joules_total", "Energy consumed since the driver was loaded.", g);
        _fan = f.Gauge("vasthost_gpu_fan_speed_ratio", "Intended fan speed as a fraction of the maximum (can exceed 1).", "gpu", "uuid", "fan");
        _clock = f.Gauge("vasthost_gpu_clock_hz", "Current clock frequency by domain: graphics, sm, memory, video.", "gpu", "uuid", "clock");
        _clockMax = f.Gauge("vasthost_gpu_clock_max_hz", "Maximum clock frequency by domain.", "gpu", "uuid", "clock");
        _pstate = f.Gauge("vasthost_gpu_performance_state", "Performance state, 0 (maximum) to 15 (minimum).", g);
        _clockEvent = f.Gauge("vasthost_gpu_clock_event_active", "1 while the reason holds clocks down (throttling), else 0.", "gpu", "uuid", "reason");
        _pcieGen = f.Gauge("vasthost_gpu_pcie_link_generation", "Current PCIe link generation.", g);
        _pcieGenMax = f.Gauge("vasthost_gpu_pcie_link_generation_max", "Maximum PCIe link generation of the GPU and system.", g);
        _pcieWidth = f.Gauge("vasthost_gpu_pcie_link_width", "Current PCIe link width (lanes).", g);
        _pcieWidthMax = f.Gauge("vasthost_gpu_pcie_link_width_max", "Maximum PCIe link width (lanes).", g);
        _pcieReplay = f.Counter("vasthost_gpu_pcie_replay_errors_total", "PCIe replays (link-level retransmissions).", g);
        _persistence = f.Gauge("vasthost_gpu_persistence_mode_enabled", "1 when persistence mode is on.", g);
        _eccEnabled = f.Gauge("vasthost_gpu_ecc_enabled", "1 when ECC is on.", g);
        _eccVolatile = f.Counter("vasthost_gpu_ecc_errors_volatile_total", "ECC errors since the driver was loaded, by error_type: corrected, uncorrected.", "gpu", "uuid", "error_type");
        _eccAggregate = f.Counter("vasthost_gpu_ecc_errors_aggregate_total", "ECC errors over the GPU's lifetime, by error_type: corrected, uncorrected.", "gpu", "uuid", "error_type");
        _remapped = f.Gauge("vasthost_gpu_remapped_rows", "Memory rows remapped, by error_type: correctable, uncorrectable.", "gpu", "uuid", "error_type");
        _remapPending = f.Gauge("vasthost_gpu_row_remap_pending", "1 when a row remap waits for a GPU reset.", g);
        _remapFailed = f.Gauge("vasthost_gpu_row_remap_failed", "1 when a row remap has failed.", g);
        // NVML GPM (Hopper and newer), over the last sampling interval; absent where the GPU or driver has no GPM.
        _grActive = f.Gauge("vasthost_gpu_graphics_engine_active_ratio", "Fraction of the last sampling interval the graphics engine was active (NVML GPM).", g);
        _tensorActive = f.Gauge("vasthost_gpu_tensor_active_ratio", "Fraction of the last sampling interval any tensor pipe was active (NVML GPM).", g);
        _dramActive = f.Gauge("vasthost_gpu_dram_active_ratio", "Fraction of the last sampling interval the device memory interface was active (NVML GPM).", g);
        _pcieTx = f.Gauge("vasthost_gpu_pcie_transmit_bytes_per_second", "PCIe traffic from the GPU over the last sampling interval, headers included (NVML GPM).", g);
        _pcieRx = f.Gauge("vasthost_gpu_pcie_receive_bytes_per_second", "PCIe traffic to the GPU over the last sampling interval, headers included (NVML GPM).", g);
        _nvlinkTx = f.Gauge("vasthost_gpu_nvlink_transmit_bytes_per_second", "NVLink traffic from the GPU over the last sampling interval, all links (NVML GPM).", g);
        _nvlinkRx = f.Gauge("vasthost_gpu_nvlink_receive_bytes_per_second", "NVLink traffic to the GPU over the last sampling interval, all links (NVML GPM).", g);
        _xidTotal = f.Counter("vasthost_gpu_xid_errors_total", "XID errors since the agent started, by XID code, from NVML events and the kernel log (an XID both report counts once).", "gpu", "uuid", "xid");
        _xidLast = f.Gauge("vasthost_gpu_xid_last_timestamp_seconds", "Unix time of the last XID error with this code.", "gpu", "uuid", "xid");

        // Absent while the kernel-log source is off (gpu.enabled false or gpu.kmsgPath empty).
        _kernelLogUp = f.Gauge("vasthost_kernel_log_up", "1 while the kernel log (gpu.kmsgPath) is being read for XIDs, 0 when it cannot be read.");
        string[] k = ["pci_address", "gpu", "uuid", "xid"];
        _kernelXidTotal = f.Counter("vasthost_gpu_kernel_xid_errors_total", "XID lines read from the kernel log since the agent started, by the PCI address the driver names (gpu and uuid empty while NVML has never identified that GPU) and XID code.", k);
        _kernelXidLast = f.Gauge("vasthost_gpu_kernel_xid_last_timestamp_seconds", "Unix time of the last kernel log XID line with this PCI address and code.", k);
    }

    public void Apply(HostSnapshot snapshot)
    {
        Apply(snapshot.Gpu, snapshot.GpuCount);

        // XIDs of both sources: those of a GPU NVML knows under its index and UUID (from the kernel log too while NVML hangs).
        foreach (var x in snapshot.AllXids)
        {
            if (x.Uuid.Length == 0)
            {
                continue; // known only by its PCI address: vasthost_gpu_kernel_xid_*
            }

            var xid = x.Xid.ToString(CultureInfo.InvariantCulture);
            var gpu = x.GpuIndex.ToString(CultureInfo.InvariantCulture);
            _xidTotal.Set(x.Count, gpu, x.Uuid, xid);
            _xidLast.Set(x.LastSeen.ToUnixTimeMilliseconds() / 1000.0, gpu, x.Uuid, xid);
        }

        if (snapshot.KernelLog is { } kernel)
        {
            _kernelLogUp.Set(kernel.Up ? 1 : 0);
            foreach (var x in kernel.KernelXids)
            {
                string[] labels = [x.PciAddress, x.GpuIndex < 0 ? "" : x.GpuIndex.ToString(CultureInfo.InvariantCulture), x.Uuid, x.Xid.ToString(CultureInfo.InvariantCulture)];
                _kernelXidTotal.Set(x.Count, labels);
                _kernelXidLast.Set(x.LastSeen.ToUnixTimeMilliseconds() / 1000.0, labels);
            }
        }
    }

    private void Apply(GpuSample? sample, GpuCountSample? count)
    {
        if (sample is null)
        {
            return; // gpu.enabled = false, or before the first sample
        }

        _nvmlUp.Set(sample.NvmlUp ? 1 : 0);

        foreach (var e in sample.Errors)
        {
            _nvmlErrors.Set(e.Count, e.Function, e.Code);
        }

        foreach (var r in sample.Gpus)
        {
            var id = r.Identity;
            var gpu = id.Index.ToString(CultureInfo.InvariantCulture);
            var uuid = id.Uuid;
            _gpuInfo.Set(1, gpu, uuid, id.Name, id.PciBusId,
                id.MinorNumber?.ToString(CultureInfo.InvariantCulture) ?? "",
                sample.DriverVersion ?? "", sample.CudaVersion ?? "", id.VbiosVersion ?? "", id.ComputeCapability ?? "");
            if (!r.Up && count is not null && count.IsPassthrough(id.PciBusId))
            {
                continue; // handed to vfio-pci for a VM rental: not lost (vasthost_gpu_pci_state_info says where it is)
            }

            _gpuUp.Set(r.Up ? 1 : 0, gpu, uuid);
            if (!r.Up)
            {
                continue;
            }

            _util.Set(r.UtilizationRatio, gpu, uuid);
            _memUtil.Set(r.MemoryControllerUtilizationRatio, gpu, uuid);
            _encUtil.Set(r.EncoderUtilizationRatio, gpu, uuid);
            _decUtil.Set(r.DecoderUtilizationRatio, gpu, uuid);
            _memTotal.Set(r.MemoryTotalBytes, gpu, uuid);
            _memUsed.Set(r.MemoryUsedBytes, gpu, uuid);
            _memFree.Set(r.MemoryFreeBytes, gpu, uuid);
            _memReserved.Set(r.MemoryReservedBytes, gpu, uuid);
            _temp.Set(r.TemperatureCelsius, gpu, uuid);
            _memTemp.Set(r.MemoryTemperatureCelsius, gpu, uuid);
            _tempThreshold.Set(r.ShutdownTemperatureCelsius, gpu, uuid, "shutdown");
            _tempThreshold.Set(r.SlowdownTemperatureCelsius, gpu, uuid, "slowdown");
            _tempThreshold.Set(r.GpuMaxTemperatureCelsius, gpu, uuid, "gpu_max");
            _tempThreshold.Set(r.MemoryMaxTemperatureCelsius, gpu, uuid, "memory_max");
            _power.Set(r.PowerUsageWatts, gpu, uuid);
            _powerLimit.Set(r.PowerLimitWatts, gpu, uuid);
            _powerDefaultLimit.Set(r.PowerDefaultLimitWatts, gpu, uuid);
            _energy.Set(r.EnergyConsumedJoules, gpu, uuid);
            foreach (var (fan, ratio) in r.Fans)
            {
                _fan.Set(ratio, gpu, uuid, fan.ToString(CultureInfo.InvariantCulture));
            }

            foreach (var (clock, hz) in r.ClocksHz)
            {
                _clock.Set(hz, gpu, uuid, ClockLabel(clock));
            }

            foreach (var (clock, hz) in r.MaxClocksHz)
            {
                _clockMax.Set(hz, gpu, uuid, ClockLabel(clock));
            }

            _pstate.Set(r.PerformanceState, gpu, uuid);
            if (r.ClockEventReasons is { } reasons)
            {
                foreach (var (flag, label) in ReasonLabels)
                {
                    _clockEvent.Set((reasons & flag) != 0 ? 1 : 0, gpu, uuid, label);
                }
            }

            _pcieGen.Set(r.PcieLinkGeneration, gpu, uuid);
            _pcieGenMax.Set(r.PcieLinkGenerationMax, gpu, uuid);
            _pcieWidth.Set(r.PcieLinkWidth, gpu, uuid);
            _pcieWidthMax.Set(r.PcieLinkWidthMax, gpu, uuid);
            _pcieReplay.Set(r.PcieReplayCount, gpu, uuid);
            _persistence.Set(Bool(r.PersistenceMode), gpu, uuid);
            _eccEnabled.Set(Bool(r.EccEnabled), gpu, uuid);
            _eccVolatile.Set(r.EccVolatileCorrected, gpu, uuid, "corrected");
            _eccVolatile.Set(r.EccVolatileUncorrected, gpu, uuid, "uncorrected");
            _eccAggregate.Set(r.EccAggregateCorrected, gpu, uuid, "corrected");
            _eccAggregate.Set(r.EccAggregateUncorrected, gpu, uuid, "uncorrected");
            _remapped.Set(r.RemappedRowsCorrectable, gpu, uuid, "correctable");
            _remapped.Set(r.RemappedRowsUncorrectable, gpu, uuid, "uncorrectable");
            _remapPending.Set(Bool(r.RowRemapPending), gpu, uuid);
            _remapFailed.Set(Bool(r.RowRemapFailed), gpu, uuid);
            _grActive.Set(r.GraphicsEngineActiveRatio, gpu, uuid);
            _tensorActive.Set(r.TensorActiveRatio, gpu, uuid);
            _dramActive.Set(r.DramActiveRatio, gpu, uuid);
            _pcieTx.Set(r.PcieTransmitBytesPerSecond, gpu, uuid);
            _pcieRx.Set(r.PcieReceiveBytesPerSecond, gpu, uuid);
            _nvlinkTx.Set(r.NvlinkTransmitBytesPerSecond, gpu, uuid);
            _nvlinkRx.Set(r.NvlinkReceiveBytesPerSecond, gpu, uuid);
        }
    }

    private static double? Bool(bool? value) => value is null ? null : value.Value ? 1 : 0;

    internal static string ClockLabel(GpuClock clock) => clock switch
    {
        GpuClock.Graphics => "graphics",
        GpuClock.Sm => "sm",
        GpuClock.Memory => "memory",
        _ => "video",
    };

    internal static readonly (ClockEventReasons Flag, string Label)[] ReasonLabels =
    [
        (ClockEventReasons.GpuIdle, "gpu_idle"),
        (ClockEventReasons.ApplicationsClocksSetting, "applications_clocks_setting"),
        (ClockEventReasons.SwPowerCap, "sw_power_cap"),
        (ClockEventReasons.HwSlowdown, "hw_slowdown"),
        (ClockEventReasons.SyncBoost, "sync_boost"),
        (ClockEventReasons.SwThermalSlowdown, "sw_thermal_slowdown"),
        (ClockEventReasons.HwThermalSlowdown, "hw_thermal_slowdown"),
        (ClockEventReasons.HwPowerBrakeSlowdown, "hw_power_brake_slowdown"),
        (ClockEventReasons.DisplayClockSetting, "display_clock_setting"),
    ];
}
