using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Interop;
using VastHostAgent.Kernel;
using static VastHostAgent.Interop.Nvml;

namespace VastHostAgent.Gpu;

/// <summary>Reads every GPU through NVML. Called by one sampling loop; not for concurrent use.</summary>
public interface IGpuTelemetry
{
    /// <summary>Reads all GPUs once. Never throws for NVML failures: they are reflected in the sample.</summary>
    GpuSample Sample();
}

/// <summary>
/// NVML session owner: loads the library, initialises once, caches GPU identity and static readings,
/// re-initialises when NVML asks for it, and reads the per-cycle values. A reading NVML reports as
/// NOT_SUPPORTED is remembered per GPU and not asked again until the next initialisation.
/// </summary>
internal sealed unsafe partial class NvmlGpuTelemetry : IGpuTelemetry, IDisposable
{
    private static readonly TimeSpan LibraryRetryInterval = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan InitRetryMin = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan InitRetryMax = TimeSpan.FromMinutes(5);

    private readonly GpuOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly LoopHealth? _loops;
    private readonly ConcurrentDictionary<(string Uuid, ulong Xid), XidTally> _xids = new();
    private readonly Dictionary<(string Function, Return Code), ulong> _errors = [];
    private readonly Dictionary<string, GpuIdentity> _everSeen = new(StringComparer.Ordinal);

    private NvmlExports _exports;
    private List<DeviceState> _devices = [];

    // Indices NVML lists but cannot open (a GPU lost or needing a reset before this initialisation): reported
    // with up = 0 and the NVML code, tried again at every sample, and counted so the device count matches.
    private List<(int Index, Return Code)> _unopened = [];
    private XidWatcher? _xidWatcher;
    private bool _initialised;
    private bool _reinitRequested;
    private string? _problem;
    private DateTimeOffset _nextAttempt;
    private TimeSpan _initBackoff = InitRetryMin;
    private Return _lastInitCode = Return.Success;
    private bool _libraryProblemLogged;
    private string? _driverVersion;
    private string? _nvmlVersion;
    private string? _cudaVersion;

    public NvmlGpuTelemetry(IOptions<GpuOptions> options, TimeProvider time, ILogger<NvmlGpuTelemetry> logger, LoopHealth? loops = null)
    {
        _loops = loops;
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    public GpuSample Sample()
    {
        if (!EnsureInitialised())
        {
            return GpuSample.Unavailable(_problem ?? "NVML is not initialised") with
            {
                Gpus = MissingGpus(present: []),
                Xids = XidSnapshot(),
                Errors = ErrorSnapshot(),
            };
        }

        var readings = new List<GpuReading>(_devices.Count);
        foreach (var device in _devices)
        {
            readings.Add(ReadDevice(device));
        }

        readings.AddRange(MissingGpus(_devices));
        readings.AddRange(UnopenedGpus());

        if (!_reinitRequested)
        {
            var count = 0u;
            var rc = _exports.CountV2 ? nvmlDeviceGetCount_v2(&count) : nvmlDeviceGetCount(&count);
            if (Check(null, "nvmlDeviceGetCount", rc) && count != _devices.Count + _unopened.Count)
            {
                GpuLog.DeviceCountChanged(_logger, _devices.Count + _unopened.Count, (int)count);
                _reinitRequested = true;
            }
        }

        var sample = new GpuSample
        {
            NvmlUp = true,
            DriverVersion = _driverVersion,
            NvmlVersion = _nvmlVersion,
            CudaVersion = _cudaVersion,
            Gpus = readings,
            Xids = XidSnapshot(),
            Errors = ErrorSnapshot(),
        };

        if (_reinitRequested)
        {
            GpuLog.Reinitialising(_logger);
            Shutdown();
            _nextAttempt = _time.GetUtcNow();
        }

        return sample;
    }

    public void Dispose() => Shutdown();

    private bool EnsureInitialised()
    {
        if (_initialised)
        {
            return true;
        }

        var now = _time.GetUtcNow();
        if (now < _nextAttempt)
        {
            return false;
        }

        if (!NvmlLibrary.TryLoad(_options.NvmlLibrary, out var loadError))
        {
            _problem = $"NVML library not available: {loadError}";
            _nextAttempt = now + LibraryRetryInterval;
            if (!_libraryProblemLogged)
            {
                GpuLog.LibraryUnavailable(_logger, loadError!);
                _libraryProblemLogged = true;
            }

            return false;
        }

        _exports = NvmlExports.Probe();
        var rc = _exports.InitV2 ? nvmlInit_v2() : nvmlInit();
        if (rc != Return.Success)
        {
            CountError(_exports.InitV2 ? "nvmlInit_v2" : "nvmlInit", rc);
            _problem = $"nvmlInit failed: {NvmlCodes.Name(rc)} ({ErrorString(rc)})";
            _nextAttempt = now + _initBackoff;
            _initBackoff = TimeSpan.FromTicks(Math.Min(_initBackoff.Ticks * 2, InitRetryMax.Ticks));
            if (rc != _lastInitCode)
            {
                GpuLog.InitFailed(_logger, NvmlCodes.Name(rc), ErrorString(rc), _nextAttempt - now);
                _lastInitCode = rc;
            }

            return false;
        }

        _lastInitCode = Return.Success;
        _initBackoff = InitRetryMin;
        _problem = null;
        _initialised = true;
        _reinitRequested = false;

        _driverVersion = ReadSystemString(&nvmlSystemGetDriverVersion, SystemDriverVersionBufferSize, "nvmlSystemGetDriverVersion");
        _nvmlVersion = ReadSystemString(&nvmlSystemGetNVMLVersion, SystemNvmlVersionBufferSize, "nvmlSystemGetNVMLVersion");
        _cudaVersion = ReadCudaVersion();

        _devices = ResolveDevices();
        foreach (var device in _devices)
        {
            _everSeen[device.Identity.Uuid] = device.Identity;
        }

        GpuLog.Ready(_logger, _devices.Count, _driverVersion ?? "unknown", _cudaVersion ?? "unknown", NvmlLibrary.LoadedFrom ?? _options.NvmlLibrary);

        if (_options.XidEvents && _devices.Count > 0)
        {
            _xidWatcher = new XidWatcher(_devices.Select(d => (d.Handle, d.Identity)).ToList(), _exports.EventWaitV2, _xids, _time, _logger, _loops);
            _xidWatcher.Start();
        }

        return true;
    }

    private void Shutdown()
    {
        _xidWatcher?.Dispose();
        _xidWatcher = null;
        if (_initialised)
        {
            _ = nvmlShutdown();
        }

        _initialised = false;
        _reinitRequested = false;
        _devices = [];
        _unopened = [];
    }

    private List<DeviceState> ResolveDevices()
    {
        var count = 0u;
        var rc = _exports.CountV2 ? nvmlDeviceGetCount_v2(&count) : nvmlDeviceGetCount(&count);
        if (!Check(null, "nvmlDeviceGetCount", rc))
        {
            return [];
        }

        var devices = new List<DeviceState>((int)count);
        var uuidBuffer = stackalloc byte[DeviceUuidBufferSize];
        _unopened = [];
        for (var i = 0u; i < count; i++)
        {
            nint handle;
            rc = _exports.HandleByIndexV2 ? nvmlDeviceGetHandleByIndex_v2(i, &handle) : nvmlDeviceGetHandleByIndex(i, &handle);
            if (rc != Return.Success)
            {
                CountError("nvmlDeviceGetHandleByIndex", rc);
                GpuLog.DeviceUnavailable(_logger, (int)i, NvmlCodes.Name(rc));
                _unopened.Add(((int)i, rc));
                continue;
            }

            var device = new DeviceState(handle);
            var uuidRc = nvmlDeviceGetUUID(handle, uuidBuffer, DeviceUuidBufferSize);
            var uuid = uuidRc == Return.Success ? DecodeString(new ReadOnlySpan<byte>(uuidBuffer, DeviceUuidBufferSize)) : null;
            if (uuidRc != Return.Success)
            {
                CountError("nvmlDeviceGetUUID", uuidRc);
            }

            if (string.IsNullOrEmpty(uuid))
            {
                GpuLog.DeviceUnavailable(_logger, (int)i, uuidRc == Return.Success ? "no UUID" : NvmlCodes.Name(uuidRc));
                _unopened.Add(((int)i, uuidRc == Return.Success ? Return.Unknown : uuidRc));
                continue;
            }

            var name = ReadDeviceString(device, &nvmlDeviceGetName, DeviceNameBufferSize, "nvmlDeviceGetName") ?? "unknown";
            var index = (int)i;
            uint nvmlIndex;
            if (Call(device, "nvmlDeviceGetIndex", nvmlDeviceGetIndex(handle, &nvmlIndex)))
            {
                index = (int)nvmlIndex;
            }

            string pciBusId = "";
            PciInfo pci;
            if (Call(device, "nvmlDeviceGetPciInfo_v3", nvmlDeviceGetPciInfo_v3(handle, &pci)))
            {
                pciBusId = DecodeString(new ReadOnlySpan<byte>(pci.BusId, 32));
            }

            uint minor;
            int? minorNumber = Call(device, "nvmlDeviceGetMinorNumber", nvmlDeviceGetMinorNumber(handle, &minor)) ? (int)minor : null;
            var vbios = ReadDeviceString(device, &nvmlDeviceGetVbiosVersion, DeviceVbiosVersionBufferSize, "nvmlDeviceGetVbiosVersion");
            int major, minorCc;
            string? cc = Call(device, "nvmlDeviceGetCudaComputeCapability", nvmlDeviceGetCudaComputeCapability(handle, &major, &minorCc))
                ? FormattableString.Invariant($"{major}.{minorCc}")
                : null;

            device.Identity = new GpuIdentity(index, uuid, name, pciBusId, minorNumber, vbios, cc);
            ReadStatics(device);
            devices.Add(device);
        }

        devices.Sort((a, b) => a.Identity.Index.CompareTo(b.Identity.Index));
        return devices;
    }

    private void ReadStatics(DeviceState s)
    {
        var h = s.Handle;
        uint v;
        s.ShutdownTemp = Call(s, "nvmlDeviceGetTemperatureThreshold", nvmlDeviceGetTemperatureThreshold(h, TemperatureThreshold.Shutdown, &v)) ? v : null;
        s.SlowdownTemp = Call(s, "nvmlDeviceGetTemperatureThreshold", nvmlDeviceGetTemperatureThreshold(h, TemperatureThreshold.Slowdown, &v)) ? v : null;
        s.GpuMaxTemp = Call(s, "nvmlDeviceGetTemperatureThreshold", nvmlDeviceGetTemperatureThreshold(h, TemperatureThreshold.GpuMax, &v)) ? v : null;
        s.MemoryMaxTemp = Call(s, "nvmlDeviceGetTemperatureThreshold", nvmlDeviceGetTemperatureThreshold(h, TemperatureThreshold.MemoryMax, &v)) ? v : null;
        // The threshold calls share one name; a NOT_SUPPORTED for one threshold must not hide the others.
        s.Unsupported.Remove("nvmlDeviceGetTemperatureThreshold");

        s.DefaultPowerLimitWatts = Call(s, "nvmlDeviceGetPowerManagementDefaultLimit", nvmlDeviceGetPowerManagementDefaultLimit(h, &v)) ? v / 1000.0 : null;
        s.PcieGenMax = Call(s, "nvmlDeviceGetMaxPcieLinkGeneration", nvmlDeviceGetMaxPcieLinkGeneration(h, &v)) ? (int)v : null;
        s.PcieWidthMax = Call(s, "nvmlDeviceGetMaxPcieLinkWidth", nvmlDeviceGetMaxPcieLinkWidth(h, &v)) ? (int)v : null;

        var max = new Dictionary<GpuClock, double>();
        foreach (var clock in AllClocks)
        {
            if (Call(s, "nvmlDeviceGetMaxClockInfo", nvmlDeviceGetMaxClockInfo(h, ToNative(clock), &v)) && v > 0)
            {
                max[clock] = v * 1e6;
            }

            s.Unsupported.Remove("nvmlDeviceGetMaxClockInfo");
        }

        s.MaxClocks = max;

        if (_exports.NumFans && Call(s, "nvmlDeviceGetNumFans", nvmlDeviceGetNumFans(h, &v)))
        {
            s.FanCount = (int)v;
        }
        else
        {
            s.FanCount = _exports.FanSpeedV1 ? 1 : 0;
            s.LegacyFan = true;
        }
    }

    private GpuReading ReadDevice(DeviceState d)
    {
        var h = d.Handle;
        d.Down = null;
        var r = new Builder();
        uint u, u2;
        ulong ul;
        int i;

        Utilization util;
        if (Can(d, "nvmlDeviceGetUtilizationRates") && Call(d, "nvmlDeviceGetUtilizationRates", nvmlDeviceGetUtilizationRates(h, &util)))
        {
            r.Util = util.Gpu / 100.0;
            r.MemUtil = util.Memory / 100.0;
        }

        if (d.Down is null && Can(d, "nvmlDeviceGetTemperature") && Call(d, "nvmlDeviceGetTemperature", nvmlDeviceGetTemperature(h, 0, &u)))
        {
            r.Temp = u;
        }

        if (d.Down is null)
        {
            ReadMemory(d, ref r);
        }

        if (d.Down is not null)
        {
            return Down(d);
        }

        if (Can(d, "nvmlDeviceGetEncoderUtilization") && Call(d, "nvmlDeviceGetEncoderUtilization", nvmlDeviceGetEncoderUtilization(h, &u, &u2)))
        {
            r.EncUtil = u / 100.0;
        }

        if (Can(d, "nvmlDeviceGetDecoderUtilization") && Call(d, "nvmlDeviceGetDecoderUtilization", nvmlDeviceGetDecoderUtilization(h, &u, &u2)))
        {
            r.DecUtil = u / 100.0;
        }

        if (!d.Unsupported.Contains("nvmlDeviceGetFieldValues"))
        {
            FieldValue field = default;
            field.FieldId = FieldMemoryTemperature;
            if (Can(d, "nvmlDeviceGetFieldValues") && Call(d, "nvmlDeviceGetFieldValues", nvmlDeviceGetFieldValues(h, 1, &field)))
            {
                if (field.NvmlReturn == Return.Success)
                {
                    r.MemTemp = FieldAsDouble(field);
                }
                else if (field.NvmlReturn == Return.NotSupported)
                {
                    d.Unsupported.Add("nvmlDeviceGetFieldValues");
                }
                else
                {
                    Check(d, "nvmlDeviceGetFieldValues", field.NvmlReturn);
                }
            }
        }

        if (Can(d, "nvmlDeviceGetPowerUsage") && Call(d, "nvmlDeviceGetPowerUsage", nvmlDeviceGetPowerUsage(h, &u)))
        {
            r.Power = u / 1000.0;
        }

        if (Can(d, "nvmlDeviceGetEnforcedPowerLimit") && Call(d, "nvmlDeviceGetEnforcedPowerLimit", nvmlDeviceGetEnforcedPowerLimit(h, &u)))
        {
            r.PowerLimit = u / 1000.0;
        }

        if (Can(d, "nvmlDeviceGetTotalEnergyConsumption") && Call(d, "nvmlDeviceGetTotalEnergyConsumption", nvmlDeviceGetTotalEnergyConsumption(h, &ul)))
        {
            r.Energy = ul / 1000.0;
        }

        r.Fans = ReadFans(d);

        var clocks = new Dictionary<GpuClock, double>(4);
        foreach (var clock in AllClocks)
        {
            if (Can(d, "nvmlDeviceGetClockInfo") && Call(d, "nvmlDeviceGetClockInfo", nvmlDeviceGetClockInfo(h, ToNative(clock), &u)))
            {
                clocks[clock] = u * 1e6;
            }
        }

        r.Clocks = clocks;

        if (Can(d, "nvmlDeviceGetPerformanceState") && Call(d, "nvmlDeviceGetPerformanceState", nvmlDeviceGetPerformanceState(h, &i)) && i is >= 0 and <= 15)
        {
            r.PState = i;
        }

        if (_exports.ClocksEventReasons
            ? Can(d, "nvmlDeviceGetCurrentClocksEventReasons") && Call(d, "nvmlDeviceGetCurrentClocksEventReasons", nvmlDeviceGetCurrentClocksEventReasons(h, &ul))
            : Can(d, "nvmlDeviceGetCurrentClocksThrottleReasons") && Call(d, "nvmlDeviceGetCurrentClocksThrottleReasons", nvmlDeviceGetCurrentClocksThrottleReasons(h, &ul)))
        {
            r.Reasons = (ClockEventReasons)ul;
        }

        if (Can(d, "nvmlDeviceGetCurrPcieLinkGeneration") && Call(d, "nvmlDeviceGetCurrPcieLinkGeneration", nvmlDeviceGetCurrPcieLinkGeneration(h, &u)))
        {
            r.PcieGen = (int)u;
        }

        if (Can(d, "nvmlDeviceGetCurrPcieLinkWidth") && Call(d, "nvmlDeviceGetCurrPcieLinkWidth", nvmlDeviceGetCurrPcieLinkWidth(h, &u)))
        {
            r.PcieWidth = (int)u;
        }

        if (Can(d, "nvmlDeviceGetPcieReplayCounter") && Call(d, "nvmlDeviceGetPcieReplayCounter", nvmlDeviceGetPcieReplayCounter(h, &u)))
        {
            r.PcieReplay = u;
        }

        if (Can(d, "nvmlDeviceGetPersistenceMode") && Call(d, "nvmlDeviceGetPersistenceMode", nvmlDeviceGetPersistenceMode(h, &i)))
        {
            r.Persistence = i != 0;
        }

        int pending;
        if (Can(d, "nvmlDeviceGetEccMode") && Call(d, "nvmlDeviceGetEccMode", nvmlDeviceGetEccMode(h, &i, &pending)))
        {
            r.Ecc = i != 0;
        }

        if (r.Ecc == true)
        {
            r.EccVolCorr = ReadEcc(d, MemoryErrorType.Corrected, EccCounterType.Volatile);
            r.EccVolUnc = ReadEcc(d, MemoryErrorType.Uncorrected, EccCounterType.Volatile);
            r.EccAggCorr = ReadEcc(d, MemoryErrorType.Corrected, EccCounterType.Aggregate);
            r.EccAggUnc = ReadEcc(d, MemoryErrorType.Uncorrected, EccCounterType.Aggregate);
        }

        uint corr, unc, isPending, failed;
        if (Can(d, "nvmlDeviceGetRemappedRows") && Call(d, "nvmlDeviceGetRemappedRows", nvmlDeviceGetRemappedRows(h, &corr, &unc, &isPending, &failed)))
        {
            r.RemapCorr = corr;
            r.RemapUnc = unc;
            r.RemapPending = isPending != 0;
            r.RemapFailed = failed != 0;
        }

        var processes = _options.Processes ? ReadProcesses(d) : [];

        if (d.Down is not null)
        {
            return Down(d);
        }

        return new GpuReading
        {
            Identity = d.Identity,
            UtilizationRatio = r.Util,
            MemoryControllerUtilizationRatio = r.MemUtil,
            EncoderUtilizationRatio = r.EncUtil,
            DecoderUtilizationRatio = r.DecUtil,
            MemoryTotalBytes = r.MemTotal,
            MemoryUsedBytes = r.MemUsed,
            MemoryFreeBytes = r.MemFree,
            MemoryReservedBytes = r.MemReserved,
            TemperatureCelsius = r.Temp,
            MemoryTemperatureCelsius = r.MemTemp,
            ShutdownTemperatureCelsius = d.ShutdownTemp,
            SlowdownTemperatureCelsius = d.SlowdownTemp,
            GpuMaxTemperatureCelsius = d.GpuMaxTemp,
            MemoryMaxTemperatureCelsius = d.MemoryMaxTemp,
            PowerUsageWatts = r.Power,
            PowerLimitWatts = r.PowerLimit,
            PowerDefaultLimitWatts = d.DefaultPowerLimitWatts,
            EnergyConsumedJoules = r.Energy,
            Fans = r.Fans,
            ClocksHz = r.Clocks,
            MaxClocksHz = d.MaxClocks,
            PerformanceState = r.PState,
            ClockEventReasons = r.Reasons,
            PcieLinkGeneration = r.PcieGen,
            PcieLinkGenerationMax = d.PcieGenMax,
            PcieLinkWidth = r.PcieWidth,
            PcieLinkWidthMax = d.PcieWidthMax,
            PcieReplayCount = r.PcieReplay,
            PersistenceMode = r.Persistence,
            EccEnabled = r.Ecc,
            EccVolatileCorrected = r.EccVolCorr,
            EccVolatileUncorrected = r.EccVolUnc,
            EccAggregateCorrected = r.EccAggCorr,
            EccAggregateUncorrected = r.EccAggUnc,
            RemappedRowsCorrectable = r.RemapCorr,
            RemappedRowsUncorrectable = r.RemapUnc,
            RowRemapPending = r.RemapPending,
            RowRemapFailed = r.RemapFailed,
            Processes = processes,
        };
    }

    private static GpuReading Down(DeviceState d) =>
        new() { Identity = d.Identity, Up = false, DownReason = NvmlCodes.Name(d.Down!.Value) };

    /// <summary>
    /// GPUs NVML lists but could not open at this initialisation (lost before the agent started): up = 0 with
    /// the NVML code, under their index (those seen earlier in this process are MissingGpus' to report). One
    /// handle call each per sample notices a recovery, which re-initialises.
    /// </summary>
    private List<GpuReading> UnopenedGpus()
    {
        var readings = new List<GpuReading>(_unopened.Count);
        foreach (var (index, code) in _unopened)
        {
            nint handle;
            var rc = _exports.HandleByIndexV2 ? nvmlDeviceGetHandleByIndex_v2((uint)index, &handle) : nvmlDeviceGetHandleByIndex((uint)index, &handle);
            if (rc == Return.Success && !_reinitRequested)
            {
                GpuLog.DeviceRecovered(_logger, index);
                _reinitRequested = true;
            }

            if (_everSeen.Values.Any(g => g.Index == index && _devices.All(d => d.Identity.Uuid != g.Uuid)))
            {
                continue; // seen earlier in this process: MissingGpus reports it under its UUID
            }

            var identity = new GpuIdentity(index, "", "unknown", "", null, null, null);
            readings.Add(new GpuReading { Identity = identity, Up = false, DownReason = NvmlCodes.Name(code) });
        }

        return readings;
    }

    private List<GpuReading> MissingGpus(IReadOnlyList<DeviceState> present)
    {
        // GPUs seen earlier in this process that NVML no longer lists (fallen off the bus, or NVML itself
        // down) stay visible with up = 0 instead of silently disappearing.
        var missing = new List<GpuReading>();
        foreach (var (uuid, identity) in _everSeen)
        {
            if (!present.Any(d => d.Identity.Uuid == uuid))
            {
                missing.Add(new GpuReading { Identity = identity, Up = false, DownReason = _initialised ? "NOT_FOUND" : "NVML_UNAVAILABLE" });
            }
        }

        missing.Sort((a, b) => a.Identity.Index.CompareTo(b.Identity.Index));
        return missing;
    }

    private void ReadMemory(DeviceState d, ref Builder r)
    {
        var h = d.Handle;
        if (_exports.MemoryInfoV2 && Can(d, "nvmlDeviceGetMemoryInfo_v2"))
        {
            var m2 = new MemoryV2 { Version = MemoryV2Version };
            var rc = nvmlDeviceGetMemoryInfo_v2(h, &m2);
            if (rc == Return.Success)
            {
                r.MemTotal = m2.Total;
                r.MemUsed = m2.Used;
                r.MemFree = m2.Free;
                r.MemReserved = m2.Reserved;
                return;
            }

            if (rc is not (Return.NotSupported or Return.ArgumentVersionMismatch or Return.FunctionNotFound))
            {
                Check(d, "nvmlDeviceGetMemoryInfo_v2", rc);
                return;
            }

            // An older driver behind a newer export: fall back to v1 for good (used then includes reserved).
            d.Unsupported.Add("nvmlDeviceGetMemoryInfo_v2");
        }

        Memory m;
        if (Can(d, "nvmlDeviceGetMemoryInfo") && Call(d, "nvmlDeviceGetMemoryInfo", nvmlDeviceGetMemoryInfo(h, &m)))
        {
            r.MemTotal = m.Total;
            r.MemUsed = m.Used;
            r.MemFree = m.Free;
        }
    }

    private List<(int Fan, double Ratio)> ReadFans(DeviceState d)
    {
        var fans = new List<(int, double)>(d.FanCount);
        uint speed;
        if (d.LegacyFan)
        {
            if (d.FanCount > 0 && Can(d, "nvmlDeviceGetFanSpeed") && Call(d, "nvmlDeviceGetFanSpeed", nvmlDeviceGetFanSpeed(d.Handle, &speed)))
            {
                fans.Add((0, speed / 100.0));
            }

            return fans;
        }

        for (var fan = 0; fan < d.FanCount; fan++)
        {
            var rc = _exports.FanSpeedV2 ? nvmlDeviceGetFanSpeed_v2(d.Handle, (uint)fan, &speed) : nvmlDeviceGetFanSpeed(d.Handle, &speed);
            if (Call(d, _exports.FanSpeedV2 ? "nvmlDeviceGetFanSpeed_v2" : "nvmlDeviceGetFanSpeed", rc))
            {
                fans.Add((fan, speed / 100.0));
            }

            if (!_exports.FanSpeedV2)
            {
                break;
            }
        }

        return fans;
    }

    private ulong? ReadEcc(DeviceState d, MemoryErrorType type, EccCounterType counter)
    {
        ulong count;
        var rc = nvmlDeviceGetTotalEccErrors(d.Handle, type, counter, &count);
        if (rc == Return.NotSupported)
        {
            return null; // one counter kind unsupported must not hide the others
        }

        return Check(d, "nvmlDeviceGetTotalEccErrors", rc) ? count : null;
    }

    private List<GpuProcess> ReadProcesses(DeviceState d)
    {
        if (d.Down is not null)
        {
            return [];
        }

        var fn = _exports.ProcessesV3 ? "nvmlDeviceGetComputeRunningProcesses_v3"
            : _exports.ProcessesV2 ? "nvmlDeviceGetComputeRunningProcesses_v2"
            : "nvmlDeviceGetComputeRunningProcesses";
        if (d.Unsupported.Contains(fn))
        {
            return [];
        }

        var capacity = Math.Max(d.LastProcessCount + 4, 8);
        for (var attempt = 0; attempt < 4; attempt++)
        {
            var count = (uint)capacity;
            Return rc;
            var result = new List<GpuProcess>();
            if (_exports.ProcessesV3 || _exports.ProcessesV2)
            {
                var buffer = stackalloc ProcessInfo[capacity];
                rc = _exports.ProcessesV3
                    ? nvmlDeviceGetComputeRunningProcesses_v3(d.Handle, &count, buffer)
                    : nvmlDeviceGetComputeRunningProcesses_v2(d.Handle, &count, buffer);
                if (rc == Return.Success)
                {
                    for (var k = 0; k < count && k < capacity; k++)
                    {
                        result.Add(new GpuProcess((int)buffer[k].Pid, MemoryOrNull(buffer[k].UsedGpuMemory)));
                    }
                }
            }
            else
            {
                var buffer = stackalloc ProcessInfoV1[capacity];
                rc = nvmlDeviceGetComputeRunningProcesses(d.Handle, &count, buffer);
                if (rc == Return.Success)
                {
                    for (var k = 0; k < count && k < capacity; k++)
                    {
                        result.Add(new GpuProcess((int)buffer[k].Pid, MemoryOrNull(buffer[k].UsedGpuMemory)));
                    }
                }
            }

            if (rc == Return.InsufficientSize)
            {
                // Processes appeared between calls: grow to what NVML asks for, with headroom, and retry.
                capacity = Math.Min((int)count + 8, 1024);
                continue;
            }

            if (!Call(d, fn, rc))
            {
                return [];
            }

            d.LastProcessCount = result.Count;
            return result;
        }

        return [];
    }

    private static ulong? MemoryOrNull(ulong value) => value == ulong.MaxValue ? null : value; // NVML_VALUE_NOT_AVAILABLE

    private static double? FieldAsDouble(in FieldValue field) => (Nvml.ValueType)field.ValueType switch
    {
        Nvml.ValueType.Double => BitConverter.UInt64BitsToDouble(field.Value),
        Nvml.ValueType.UnsignedInt => (uint)field.Value,
        Nvml.ValueType.UnsignedLong or Nvml.ValueType.UnsignedLongLong => field.Value,
        Nvml.ValueType.SignedLongLong => (long)field.Value,
        Nvml.ValueType.SignedInt => (int)(uint)field.Value,
        Nvml.ValueType.UnsignedShort => (ushort)field.Value,
        _ => null,
    };

    /// <summary>False when the GPU went down earlier in this cycle or NVML said the reading is not supported.</summary>
    private static bool Can(DeviceState d, string function) => d.Down is null && !d.Unsupported.Contains(function);

    /// <summary>Runs the per-call policy: remembers NOT_SUPPORTED, marks a lost GPU, requests re-init, counts errors.</summary>
    private bool Call(DeviceState d, string function, Return rc)
    {
        if (rc == Return.Success)
        {
            return true;
        }

        if (rc == Return.NotSupported)
        {
            d.Unsupported.Add(function);
            return false;
        }

        return Check(d, function, rc);
    }

    private bool Check(DeviceState? d, string function, Return rc)
    {
        switch (rc)
        {
            case Return.Success:
                return true;
            case Return.NotSupported:
                return false;
            case Return.GpuIsLost or Return.ResetRequired or Return.GpuNotFound:
                CountError(function, rc);
                if (d is not null && d.Down is null)
                {
                    d.Down = rc;
                    if (d.LoggedDown != rc)
                    {
                        GpuLog.GpuDown(_logger, d.Identity.Index, d.Identity.Uuid, NvmlCodes.Name(rc), function);
                        d.LoggedDown = rc;
                    }
                }

                return false;
            case Return.Uninitialized or Return.LibRmVersionMismatch:
                CountError(function, rc);
                _reinitRequested = true;
                return false;
            default:
                CountError(function, rc);
                return false;
        }
    }

    private void CountError(string function, Return rc)
    {
        var key = (function, rc);
        _errors[key] = _errors.GetValueOrDefault(key) + 1;
    }

    private List<NvmlErrorCount> ErrorSnapshot() =>
        [.. _errors.Select(e => new NvmlErrorCount(e.Key.Function, NvmlCodes.Name(e.Key.Code), e.Value))];

    private List<XidCount> XidSnapshot() =>
        [.. _xids.Select(x => new XidCount(x.Key.Uuid, x.Value.GpuIndex, x.Key.Xid, x.Value.Count, x.Value.LastSeen))];

    private string? ReadSystemString(delegate*<byte*, uint, Return> fn, int size, string name)
    {
        var buffer = stackalloc byte[size];
        var rc = fn(buffer, (uint)size);
        return Check(null, name, rc) ? DecodeString(new ReadOnlySpan<byte>(buffer, size)) : null;
    }

    private string? ReadDeviceString(DeviceState d, delegate*<nint, byte*, uint, Return> fn, int size, string name)
    {
        var buffer = stackalloc byte[size];
        var rc = fn(d.Handle, buffer, (uint)size);
        return Call(d, name, rc) ? DecodeString(new ReadOnlySpan<byte>(buffer, size)) : null;
    }

    private string? ReadCudaVersion()
    {
        int v;
        var rc = _exports.CudaVersionV2 ? nvmlSystemGetCudaDriverVersion_v2(&v) : nvmlSystemGetCudaDriverVersion(&v);
        return Check(null, "nvmlSystemGetCudaDriverVersion", rc)
            ? FormattableString.Invariant($"{v / 1000}.{v % 1000 / 10}")
            : null;
    }

    private static string ErrorString(Return rc)
    {
        var text = nvmlErrorString(rc);
        return text is null ? NvmlCodes.Name(rc) : System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)text) ?? NvmlCodes.Name(rc);
    }

    private static readonly GpuClock[] AllClocks = [GpuClock.Graphics, GpuClock.Sm, GpuClock.Memory, GpuClock.Video];

    private static ClockType ToNative(GpuClock clock) => clock switch
    {
        GpuClock.Graphics => ClockType.Graphics,
        GpuClock.Sm => ClockType.Sm,
        GpuClock.Memory => ClockType.Memory,
        _ => ClockType.Video,
    };

    private sealed class DeviceState(nint handle)
    {
        public nint Handle { get; } = handle;
        public GpuIdentity Identity { get; set; } = null!;
        public HashSet<string> Unsupported { get; } = new(StringComparer.Ordinal);
        public Return? Down { get; set; }
        public Return? LoggedDown { get; set; }
        public double? ShutdownTemp { get; set; }
        public double? SlowdownTemp { get; set; }
        public double? GpuMaxTemp { get; set; }
        public double? MemoryMaxTemp { get; set; }
        public double? DefaultPowerLimitWatts { get; set; }
        public int? PcieGenMax { get; set; }
        public int? PcieWidthMax { get; set; }
        public IReadOnlyDictionary<GpuClock, double> MaxClocks { get; set; } = new Dictionary<GpuClock, double>();
        public int FanCount { get; set; }
        public bool LegacyFan { get; set; }
        public int LastProcessCount { get; set; }
    }

    private struct Builder
    {
        public double? Util, MemUtil, EncUtil, DecUtil, Temp, MemTemp, Power, PowerLimit, Energy;
        public ulong? MemTotal, MemUsed, MemFree, MemReserved, PcieReplay, EccVolCorr, EccVolUnc, EccAggCorr, EccAggUnc;
        public List<(int Fan, double Ratio)> Fans;
        public Dictionary<GpuClock, double> Clocks;
        public int? PState, PcieGen, PcieWidth;
        public ClockEventReasons? Reasons;
        public bool? Persistence, Ecc, RemapPending, RemapFailed;
        public uint? RemapCorr, RemapUnc;
    }
}

/// <summary>Which optional or versioned exports the loaded NVML library has, probed once per initialisation.</summary>
internal readonly record struct NvmlExports(
    bool InitV2,
    bool CountV2,
    bool HandleByIndexV2,
    bool CudaVersionV2,
    bool MemoryInfoV2,
    bool ClocksEventReasons,
    bool NumFans,
    bool FanSpeedV2,
    bool FanSpeedV1,
    bool ProcessesV3,
    bool ProcessesV2,
    bool EventWaitV2)
{
    public static NvmlExports Probe() => new(
        InitV2: NvmlLibrary.HasExport("nvmlInit_v2"),
        CountV2: NvmlLibrary.HasExport("nvmlDeviceGetCount_v2"),
        HandleByIndexV2: NvmlLibrary.HasExport("nvmlDeviceGetHandleByIndex_v2"),
        CudaVersionV2: NvmlLibrary.HasExport("nvmlSystemGetCudaDriverVersion_v2"),
        MemoryInfoV2: NvmlLibrary.HasExport("nvmlDeviceGetMemoryInfo_v2"),
        ClocksEventReasons: NvmlLibrary.HasExport("nvmlDeviceGetCurrentClocksEventReasons"),
        NumFans: NvmlLibrary.HasExport("nvmlDeviceGetNumFans"),
        FanSpeedV2: NvmlLibrary.HasExport("nvmlDeviceGetFanSpeed_v2"),
        FanSpeedV1: NvmlLibrary.HasExport("nvmlDeviceGetFanSpeed"),
        ProcessesV3: NvmlLibrary.HasExport("nvmlDeviceGetComputeRunningProcesses_v3"),
        ProcessesV2: NvmlLibrary.HasExport("nvmlDeviceGetComputeRunningProcesses_v2"),
        EventWaitV2: NvmlLibrary.HasExport("nvmlEventSetWait_v2"));
}

/// <summary>Stable, bounded names for NVML return codes (the <c>NVML_ERROR_</c> suffix), used as label values.</summary>
internal static class NvmlCodes
{
    public static string Name(Nvml.Return rc) => rc switch
    {
        Nvml.Return.Success => "SUCCESS",
        Nvml.Return.Uninitialized => "UNINITIALIZED",
        Nvml.Return.InvalidArgument => "INVALID_ARGUMENT",
        Nvml.Return.NotSupported => "NOT_SUPPORTED",
        Nvml.Return.NoPermission => "NO_PERMISSION",
        Nvml.Return.AlreadyInitialized => "ALREADY_INITIALIZED",
        Nvml.Return.NotFound => "NOT_FOUND",
        Nvml.Return.InsufficientSize => "INSUFFICIENT_SIZE",
        Nvml.Return.InsufficientPower => "INSUFFICIENT_POWER",
        Nvml.Return.DriverNotLoaded => "DRIVER_NOT_LOADED",
        Nvml.Return.Timeout => "TIMEOUT",
        Nvml.Return.IrqIssue => "IRQ_ISSUE",
        Nvml.Return.LibraryNotFound => "LIBRARY_NOT_FOUND",
        Nvml.Return.FunctionNotFound => "FUNCTION_NOT_FOUND",
        Nvml.Return.CorruptedInforom => "CORRUPTED_INFOROM",
        Nvml.Return.GpuIsLost => "GPU_IS_LOST",
        Nvml.Return.ResetRequired => "RESET_REQUIRED",
        Nvml.Return.OperatingSystem => "OPERATING_SYSTEM",
        Nvml.Return.LibRmVersionMismatch => "LIB_RM_VERSION_MISMATCH",
        Nvml.Return.InUse => "IN_USE",
        Nvml.Return.Memory => "MEMORY",
        Nvml.Return.NoData => "NO_DATA",
        Nvml.Return.VgpuEccNotSupported => "VGPU_ECC_NOT_SUPPORTED",
        Nvml.Return.InsufficientResources => "INSUFFICIENT_RESOURCES",
        Nvml.Return.FreqNotSupported => "FREQ_NOT_SUPPORTED",
        Nvml.Return.ArgumentVersionMismatch => "ARGUMENT_VERSION_MISMATCH",
        Nvml.Return.Deprecated => "DEPRECATED",
        Nvml.Return.NotReady => "NOT_READY",
        Nvml.Return.GpuNotFound => "GPU_NOT_FOUND",
        Nvml.Return.InvalidState => "INVALID_STATE",
        Nvml.Return.ResetTypeNotSupported => "RESET_TYPE_NOT_SUPPORTED",
        _ => "UNKNOWN",
    };
}
