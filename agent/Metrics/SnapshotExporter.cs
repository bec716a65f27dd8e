using System.Globalization;
using Microsoft.Extensions.Options;
using Prometheus;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;
using VastHostAgent.Vast;

namespace VastHostAgent.Metrics;

/// <summary>
/// Turns snapshots into Prometheus series and renders the exposition text. The registry is written only
/// here, under one lock, and rendered under the same lock, so every scrape sees one whole snapshot.
/// A rendering is cached per snapshot generation: concurrent scrapes share it and never wait on a sampler.
/// </summary>
public sealed class SnapshotExporter : IDisposable
{
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _renderGate = new(1, 1);
    private readonly CollectorRegistry _registry;
    private readonly MetricsOptions _options;
    private readonly TimeProvider _time;
    private readonly string _hostname;
    private readonly List<Action> _sweeps = [];
    private long _appliedGeneration = -1;
    private long _version;
    private Rendering? _cached;

    // Self
    private readonly TrackedGauge _nvmlUp;
    private readonly TrackedGauge _gpuCount;
    private readonly TrackedGauge _collectorUp;
    private readonly TrackedGauge _collectorLastSuccess;
    private readonly TrackedGauge _collectorDuration;
    private readonly TrackedGauge _collectorStale;
    private readonly TrackedCounter _nvmlErrors;
    private readonly TrackedCounter _stateRecoveries;
    private readonly TrackedGauge _stateRecovering;
    private readonly TrackedCounter _loopFailures;
    private readonly TrackedGauge _loopFailing;

    // GPU
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
    private readonly TrackedCounter _xidTotal;
    private readonly TrackedGauge _xidLast;

    // Host
    private readonly TrackedGauge _hwmonTemp;
    private readonly TrackedGauge _hwmonFan;
    private readonly TrackedGauge _diskTotal;
    private readonly TrackedGauge _diskFree;
    private readonly TrackedGauge _diskAvailable;

    private readonly DcgmCompatibleSeries? _dcgm;
    private readonly ContainerSeries? _containers;
    private readonly VastSeries? _vast;

    public SnapshotExporter(IOptions<MetricsOptions> options, TimeProvider time)
        : this(options, Microsoft.Extensions.Options.Options.Create(new DockerOptions { Enabled = false }), Microsoft.Extensions.Options.Options.Create(new VastOptions()), time)
    {
    }

    public SnapshotExporter(IOptions<MetricsOptions> options, IOptions<DockerOptions> docker, IOptions<VastOptions> vast, TimeProvider time)
    {
        _options = options.Value;
        _time = time;
        _hostname = string.IsNullOrWhiteSpace(_options.Hostname) ? Environment.MachineName : _options.Hostname;
        _registry = Prometheus.Metrics.NewCustomRegistry();
        var f = Prometheus.Metrics.WithCustomRegistry(_registry);

        var build = f.CreateGauge("vasthost_build_info", "Agent build: version, git revision and .NET runtime. Always 1.", "version", "revision", "dotnet");
        build.WithLabels(BuildInfo.Version, BuildInfo.Revision, Environment.Version.ToString()).Set(1);

        // Both absent with gpu.enabled = false (a machine without NVIDIA GPUs is not "NVML down").
        _nvmlUp = Gauge(f, "vasthost_nvml_up", "1 when the NVML library is loaded and initialised, else 0.");
        _gpuCount = Gauge(f, "vasthost_gpus", "Number of GPUs NVML reports (0 while NVML is down).");
        _collectorUp = Gauge(f, "vasthost_collector_up", "1 when the collector's last run succeeded, else 0.", "collector");
        _collectorLastSuccess = Gauge(f, "vasthost_collector_last_success_timestamp_seconds", "Unix time of the collector's last successful run.", "collector");
        _collectorDuration = Gauge(f, "vasthost_collector_duration_seconds", "Duration of the collector's last run.", "collector");
        _collectorStale = Gauge(f, "vasthost_collector_stale", "1 while a run of the collector has been in progress longer than its stale time (its readings are marked stale), else 0.", "collector");
        _stateRecoveries = Counter(f, "vasthost_state_file_recoveries_total", "State files found unusable (empty, damaged, incomplete), set aside and re-established from Vast since the agent started, by file.", "file");
        _stateRecovering = Gauge(f, "vasthost_state_file_recovering", "1 while a state file was found unusable and the agent has not yet re-established it from Vast (no change is made to the machine meanwhile), by file.", "file");
        _loopFailures = Counter(f, "vasthost_loop_failures_total", "Iterations of a long-running loop that ended in an unexpected exception (the loop backs off and goes on), by loop.", "loop");
        _loopFailing = Gauge(f, "vasthost_loop_failing", "1 while a loop has failed 3 or more times in a row, by loop.", "loop");
        _nvmlErrors = Counter(f, "vasthost_nvml_errors_total", "NVML calls that failed, by function and NVML return code (NOT_SUPPORTED is not an error).", "function", "code");

        string[] g = ["gpu", "uuid"];
        _gpuInfo = Gauge(f, "vasthost_gpu_info", "GPU identity. Always 1; join on uuid for names.", "gpu", "uuid", "name", "pci_bus_id", "minor_number", "driver_version", "cuda_version", "vbios_version", "compute_capability");
        _gpuUp = Gauge(f, "vasthost_gpu_up", "1 while NVML can read the GPU; 0 when it is lost, needs a reset, or has disappeared.", g);
        _util = Gauge(f, "vasthost_gpu_utilization_ratio", "Fraction of the last sample period in which a kernel ran on the GPU.", g);
        _memUtil = Gauge(f, "vasthost_gpu_memory_controller_utilization_ratio", "Fraction of the last sample period in which device memory was read or written.", g);
        _encUtil = Gauge(f, "vasthost_gpu_encoder_utilization_ratio", "Video encoder utilisation.", g);
        _decUtil = Gauge(f, "vasthost_gpu_decoder_utilization_ratio", "Video decoder utilisation.", g);
        _memTotal = Gauge(f, "vasthost_gpu_memory_total_bytes", "Installed device memory.", g);
        _memUsed = Gauge(f, "vasthost_gpu_memory_used_bytes", "Device memory allocated (excludes driver-reserved memory where the driver reports it separately).", g);
        _memFree = Gauge(f, "vasthost_gpu_memory_free_bytes", "Device memory free.", g);
        _memReserved = Gauge(f, "vasthost_gpu_memory_reserved_bytes", "Device memory reserved by the driver and firmware.", g);
        _temp = Gauge(f, "vasthost_gpu_temperature_celsius", "GPU core temperature.", g);
        _memTemp = Gauge(f, "vasthost_gpu_memory_temperature_celsius", "GPU memory (HBM) temperature.", g);
        _tempThreshold = Gauge(f, "vasthost_gpu_temperature_threshold_celsius", "Temperature thresholds: shutdown, slowdown, gpu_max, memory_max.", "gpu", "uuid", "threshold");
        _power = Gauge(f, "vasthost_gpu_power_usage_watts", "Power draw of the board.", g);
        _powerLimit = Gauge(f, "vasthost_gpu_power_limit_watts", "Power limit the driver enforces.", g);
        _powerDefaultLimit = Gauge(f, "vasthost_gpu_power_default_limit_watts", "Default power limit of the board.", g);
        _energy = Counter(f, "vasthost_gpu_energy_consumed_joules_total", "Energy consumed since the driver was loaded.", g);
        _fan = Gauge(f, "vasthost_gpu_fan_speed_ratio", "Intended fan speed as a fraction of the maximum (can exceed 1).", "gpu", "uuid", "fan");
        _clock = Gauge(f, "vasthost_gpu_clock_hz", "Current clock frequency by domain: graphics, sm, memory, video.", "gpu", "uuid", "clock");
        _clockMax = Gauge(f, "vasthost_gpu_clock_max_hz", "Maximum clock frequency by domain.", "gpu", "uuid", "clock");
        _pstate = Gauge(f, "vasthost_gpu_performance_state", "Performance state, 0 (maximum) to 15 (minimum).", g);
        _clockEvent = Gauge(f, "vasthost_gpu_clock_event_active", "1 while the reason holds clocks down (throttling), else 0.", "gpu", "uuid", "reason");
        _pcieGen = Gauge(f, "vasthost_gpu_pcie_link_generation", "Current PCIe link generation.", g);
        _pcieGenMax = Gauge(f, "vasthost_gpu_pcie_link_generation_max", "Maximum PCIe link generation of the GPU and system.", g);
        _pcieWidth = Gauge(f, "vasthost_gpu_pcie_link_width", "Current PCIe link width (lanes).", g);
        _pcieWidthMax = Gauge(f, "vasthost_gpu_pcie_link_width_max", "Maximum PCIe link width (lanes).", g);
        _pcieReplay = Counter(f, "vasthost_gpu_pcie_replay_errors_total", "PCIe replays (link-level retransmissions).", g);
        _persistence = Gauge(f, "vasthost_gpu_persistence_mode_enabled", "1 when persistence mode is on.", g);
        _eccEnabled = Gauge(f, "vasthost_gpu_ecc_enabled", "1 when ECC is on.", g);
        _eccVolatile = Counter(f, "vasthost_gpu_ecc_errors_volatile_total", "ECC errors since the driver was loaded, by error_type: corrected, uncorrected.", "gpu", "uuid", "error_type");
        _eccAggregate = Counter(f, "vasthost_gpu_ecc_errors_aggregate_total", "ECC errors over the GPU's lifetime, by error_type: corrected, uncorrected.", "gpu", "uuid", "error_type");
        _remapped = Gauge(f, "vasthost_gpu_remapped_rows", "Memory rows remapped, by error_type: correctable, uncorrectable.", "gpu", "uuid", "error_type");
        _remapPending = Gauge(f, "vasthost_gpu_row_remap_pending", "1 when a row remap waits for a GPU reset.", g);
        _remapFailed = Gauge(f, "vasthost_gpu_row_remap_failed", "1 when a row remap has failed.", g);
        _xidTotal = Counter(f, "vasthost_gpu_xid_errors_total", "XID errors reported by NVML events since the agent started, by XID code.", "gpu", "uuid", "xid");
        _xidLast = Gauge(f, "vasthost_gpu_xid_last_timestamp_seconds", "Unix time of the last XID error with this code.", "gpu", "uuid", "xid");

        _hwmonTemp = Gauge(f, "vasthost_hwmon_temperature_celsius", "Board sensor temperature from hwmon.", "chip", "sensor");
        _hwmonFan = Gauge(f, "vasthost_hwmon_fan_rpm", "Board fan speed from hwmon, in revolutions per minute.", "chip", "sensor");
        _diskTotal = Gauge(f, "vasthost_disk_total_bytes", "Size of the filesystem holding Docker's data root.", "path");
        _diskFree = Gauge(f, "vasthost_disk_free_bytes", "Free space on the filesystem holding Docker's data root.", "path");
        _diskAvailable = Gauge(f, "vasthost_disk_available_bytes", "Space available to unprivileged users on the filesystem holding Docker's data root.", "path");

        if (docker.Value.Enabled)
        {
            _containers = new ContainerSeries(f, (n, h, l) => Gauge(f, n, h, l), (n, h, l) => Counter(f, n, h, l), docker.Value.ExportLabels);
        }

        if (vast.Value.Enabled)
        {
            _vast = new VastSeries(f, (n, h, l) => Gauge(f, n, h, l), time);
        }

        if (_options.DcgmCompatible)
        {
            _dcgm = new DcgmCompatibleSeries(f, _sweeps);
        }
    }

    public void Dispose() => _renderGate.Dispose();

    /// <summary>The registry, for features that add their own long-lived instruments.</summary>
    public CollectorRegistry Registry => _registry;

    /// <summary>The factory for long-lived instruments (client request counters and the like).</summary>
    public IMetricFactory Factory => Prometheus.Metrics.WithCustomRegistry(_registry);

    /// <summary>Registers a sweep to run after every apply (for features that keep their own tracked families).</summary>
    internal TrackedGauge CreateTrackedGauge(string name, string help, params string[] labels) =>
        Gauge(Factory, name, help, labels);

    internal TrackedCounter CreateTrackedCounter(string name, string help, params string[] labels) =>
        Counter(Factory, name, help, labels);

    /// <summary>Writes a snapshot into the registry. Older generations are ignored.</summary>
    public void Apply(HostSnapshot snapshot)
    {
        lock (_gate)
        {
            if (snapshot.Generation <= _appliedGeneration)
            {
                return;
            }

            ApplyCollectors(snapshot);
            ApplyGpus(snapshot.Gpu);
            ApplyHost(snapshot);
            _containers?.Apply(snapshot);
            _vast?.Apply(snapshot);
            _dcgm?.Apply(snapshot.Gpu, _hostname);
            foreach (var sweep in _sweeps)
            {
                sweep();
            }

            _appliedGeneration = snapshot.Generation;
            _version++;
        }
    }

    /// <summary>Marks the registry changed by a feature's own instruments so the next scrape re-renders.</summary>
    public void Touch()
    {
        lock (_gate)
        {
            _version++;
        }
    }

    /// <summary>Renders the exposition text (Prometheus text format 0.0.4). Reuses the last rendering while nothing changed.</summary>
    public async Task<ReadOnlyMemory<byte>> RenderAsync(CancellationToken cancellationToken)
    {
        var cached = Volatile.Read(ref _cached);
        if (cached is not null && cached.Version == Volatile.Read(ref _version) && !cached.Expired(_time))
        {
            return cached.Bytes;
        }

        await _renderGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            cached = Volatile.Read(ref _cached);
            if (cached is not null && cached.Version == Volatile.Read(ref _version) && !cached.Expired(_time))
            {
                return cached.Bytes;
            }

            var stream = new MemoryStream(cached?.Bytes.Length + 1024 ?? 16 * 1024);
            long version;
            lock (_gate)
            {
                version = _version;
                // prometheus-net serialises synchronously into a MemoryStream; holding the lock keeps the
                // snapshot whole (no half-applied update is ever visible).
                _registry.CollectAndExportAsTextAsync(stream, cancellationToken).GetAwaiter().GetResult();
            }

            var rendering = new Rendering(version, stream.GetBuffer().AsMemory(0, (int)stream.Length), _time.GetUtcNow());
            Volatile.Write(ref _cached, rendering);
            return rendering.Bytes;
        }
        finally
        {
            _renderGate.Release();
        }
    }

    private void ApplyCollectors(HostSnapshot snapshot)
    {
        foreach (var (loop, status) in snapshot.Loops)
        {
            _loopFailures.Set(status.Failures, loop);
            _loopFailing.Set(status.Failing ? 1 : 0, loop);
        }

        foreach (var (file, status) in snapshot.StateFiles)
        {
            _stateRecoveries.Set(status.Recovered, file);
            _stateRecovering.Set(status.Recovery is null ? 0 : 1, file);
        }

        foreach (var (name, status) in snapshot.Collectors)
        {
            _collectorUp.Set(status.Ok ? 1 : 0, name);
            _collectorDuration.Set(status.LastDuration.TotalSeconds, name);
            _collectorStale.Set(status.Stale ? 1 : 0, name);
            if (status.LastSuccess is { } success)
            {
                _collectorLastSuccess.Set(success.ToUnixTimeMilliseconds() / 1000.0, name);
            }
        }
    }

    private void ApplyGpus(GpuSample? sample)
    {
        if (sample is null)
        {
            return; // gpu.enabled = false, or before the first sample
        }

        _nvmlUp.Set(sample.NvmlUp ? 1 : 0);
        _gpuCount.Set(sample.Gpus.Count(g => g.Up));

        foreach (var e in sample.Errors)
        {
            _nvmlErrors.Set(e.Count, e.Function, e.Code);
        }

        foreach (var x in sample.Xids)
        {
            var xid = x.Xid.ToString(CultureInfo.InvariantCulture);
            var gpu = x.GpuIndex.ToString(CultureInfo.InvariantCulture);
            _xidTotal.Set(x.Count, gpu, x.Uuid, xid);
            _xidLast.Set(x.LastSeen.ToUnixTimeMilliseconds() / 1000.0, gpu, x.Uuid, xid);
        }

        foreach (var r in sample.Gpus)
        {
            var id = r.Identity;
            var gpu = id.Index.ToString(CultureInfo.InvariantCulture);
            var uuid = id.Uuid;
            _gpuInfo.Set(1, gpu, uuid, id.Name, id.PciBusId,
                id.MinorNumber?.ToString(CultureInfo.InvariantCulture) ?? "",
                sample.DriverVersion ?? "", sample.CudaVersion ?? "", id.VbiosVersion ?? "", id.ComputeCapability ?? "");
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
        }
    }

    private void ApplyHost(HostSnapshot snapshot)
    {
        foreach (var s in snapshot.Sensors ?? [])
        {
            (s.Kind == Host.SensorKind.Temperature ? _hwmonTemp : _hwmonFan).Set(s.Value, s.Chip, s.Sensor);
        }

        if (snapshot.Disk is { } disk)
        {
            _diskTotal.Set(disk.TotalBytes, disk.Path);
            _diskFree.Set(disk.FreeBytes, disk.Path);
            _diskAvailable.Set(disk.AvailableBytes, disk.Path);
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

    private TrackedGauge Gauge(IMetricFactory f, string name, string help, params string[] labels)
    {
        var gauge = new TrackedGauge(f, name, help, labels);
        _sweeps.Add(gauge.Sweep);
        return gauge;
    }

    private TrackedCounter Counter(IMetricFactory f, string name, string help, params string[] labels)
    {
        var counter = new TrackedCounter(f, name, help, labels);
        _sweeps.Add(counter.Sweep);
        return counter;
    }

    private sealed record Rendering(long Version, ReadOnlyMemory<byte> Bytes, DateTimeOffset RenderedAt)
    {
        // Instruments outside the snapshot (process figures, API client counters) refresh at least this often.
        public bool Expired(TimeProvider time) => time.GetUtcNow() - RenderedAt > TimeSpan.FromSeconds(1);
    }
}
