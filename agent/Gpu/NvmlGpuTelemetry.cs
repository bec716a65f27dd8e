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
/// NVML session owner: loads the library, initialises once (backing off on the clock when it fails), resolves the
/// GPUs and reads their identity and static readings (<see cref="NvmlReads"/>), re-initialises when NVML asks for
/// it or the device count changes, keeps lost and unopened GPUs visible, and runs the XID watcher. Each cycle's
/// readings come from <see cref="NvmlReads"/> and, on GPUs with GPM, <see cref="NvmlGpm"/> (whose samples it frees
/// when a GPU goes down and before NVML shuts down); what a return code means, from <see cref="NvmlCallPolicy"/>.
/// </summary>
internal sealed unsafe class NvmlGpuTelemetry : IGpuTelemetry, IDisposable
{
    private static readonly TimeSpan LibraryRetryInterval = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan InitRetryMin = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan InitRetryMax = TimeSpan.FromMinutes(5);

    private readonly GpuOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly LoopHealth? _loops;
    private readonly NvmlCallPolicy _policy;
    private readonly XidLedger _xids;
    private readonly NvmlGpm _gpm = new();
    private readonly Dictionary<string, GpuIdentity> _everSeen = new(StringComparer.Ordinal);

    private NvmlExports _exports;
    private List<NvmlDevice> _devices = [];

    // Indices NVML lists but cannot open (a GPU lost or needing a reset before this initialisation): reported
    // with up = 0 and the NVML code, tried again at every sample, and counted so the device count matches.
    private List<(int Index, Return Code)> _unopened = [];
    private XidWatcher? _xidWatcher;
    private bool _initialised;
    private string? _problem;
    private DateTimeOffset _nextAttempt;
    private TimeSpan _initBackoff = InitRetryMin;
    private Return _lastInitCode = Return.Success;
    private bool _libraryProblemLogged;
    private string? _driverVersion;
    private string? _nvmlVersion;
    private string? _cudaVersion;

    public NvmlGpuTelemetry(IOptions<GpuOptions> options, TimeProvider time, ILogger<NvmlGpuTelemetry> logger, LoopHealth? loops = null, XidLedger? xids = null)
    {
        _xids = xids ?? new XidLedger(time);
        _loops = loops;
        _options = options.Value;
        _time = time;
        _logger = logger;
        _policy = new NvmlCallPolicy(logger);
    }

    public GpuSample Sample()
    {
        if (!EnsureInitialised())
        {
            return GpuSample.Unavailable(_problem ?? "NVML is not initialised") with
            {
                Gpus = MissingGpus(present: []),
                Xids = XidSnapshot(),
                Errors = _policy.ErrorSnapshot(),
            };
        }

        var readings = new List<GpuReading>(_devices.Count);
        foreach (var device in _devices)
        {
            readings.Add(NvmlReads.ReadDevice(_policy, _exports, device, _options.Processes, _gpm));
            if (device.Down is not null)
            {
                NvmlGpm.Release(_policy, device); // a lost GPU's GPM samples are freed; a recovery starts afresh
            }
        }

        readings.AddRange(MissingGpus(_devices));
        readings.AddRange(UnopenedGpus());

        if (!_policy.ReinitRequested)
        {
            var count = 0u;
            var rc = _exports.CountV2 ? nvmlDeviceGetCount_v2(&count) : nvmlDeviceGetCount(&count);
            if (_policy.Check(null, nameof(nvmlDeviceGetCount), rc) && count != _devices.Count + _unopened.Count)
            {
                GpuLog.DeviceCountChanged(_logger, _devices.Count + _unopened.Count, (int)count);
                _policy.ReinitRequested = true;
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
            Errors = _policy.ErrorSnapshot(),
        };

        if (_policy.ReinitRequested)
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
            _policy.CountError(_exports.InitV2 ? nameof(nvmlInit_v2) : nameof(nvmlInit), rc);
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
        _policy.ReinitRequested = false;

        _driverVersion = ReadSystemString(&nvmlSystemGetDriverVersion, SystemDriverVersionBufferSize, nameof(nvmlSystemGetDriverVersion));
        _nvmlVersion = ReadSystemString(&nvmlSystemGetNVMLVersion, SystemNvmlVersionBufferSize, nameof(nvmlSystemGetNVMLVersion));
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
            foreach (var device in _devices)
            {
                NvmlGpm.Release(_policy, device);
            }

            _ = nvmlShutdown();
        }

        _initialised = false;
        _policy.ReinitRequested = false;
        _devices = [];
        _unopened = [];
    }

    /// <summary>Opens every GPU NVML lists, reads its identity and static readings, and sorts them by NVML index.</summary>
    private List<NvmlDevice> ResolveDevices()
    {
        var count = 0u;
        var rc = _exports.CountV2 ? nvmlDeviceGetCount_v2(&count) : nvmlDeviceGetCount(&count);
        if (!_policy.Check(null, nameof(nvmlDeviceGetCount), rc))
        {
            return [];
        }

        var devices = new List<NvmlDevice>((int)count);
        var uuidBuffer = stackalloc byte[DeviceUuidBufferSize];
        _unopened = [];
        for (var i = 0u; i < count; i++)
        {
            nint handle;
            rc = _exports.HandleByIndexV2 ? nvmlDeviceGetHandleByIndex_v2(i, &handle) : nvmlDeviceGetHandleByIndex(i, &handle);
            if (rc != Return.Success)
            {
                _policy.CountError(nameof(nvmlDeviceGetHandleByIndex), rc);
                GpuLog.DeviceUnavailable(_logger, (int)i, NvmlCodes.Name(rc));
                _unopened.Add(((int)i, rc));
                continue;
            }

            var uuidRc = nvmlDeviceGetUUID(handle, uuidBuffer, DeviceUuidBufferSize);
            var uuid = uuidRc == Return.Success ? DecodeString(new ReadOnlySpan<byte>(uuidBuffer, DeviceUuidBufferSize)) : null;
            if (uuidRc != Return.Success)
            {
                _policy.CountError(nameof(nvmlDeviceGetUUID), uuidRc);
            }

            if (string.IsNullOrEmpty(uuid))
            {
                GpuLog.DeviceUnavailable(_logger, (int)i, uuidRc == Return.Success ? "no UUID" : NvmlCodes.Name(uuidRc));
                _unopened.Add(((int)i, uuidRc == Return.Success ? Return.Unknown : uuidRc));
                continue;
            }

            var device = new NvmlDevice(handle, (int)i, uuid);
            var identity = new DeviceIdentityParts((int)i);
            NvmlReads.Run(NvmlReads.Identity, _policy, _exports, device, ref identity);
            device.Identity = identity.ToIdentity(uuid);

            var statics = new DeviceStatics();
            NvmlReads.Run(NvmlReads.Statics, _policy, _exports, device, ref statics);
            device.Statics = statics;
            devices.Add(device);
        }

        devices.Sort((a, b) => a.Identity.Index.CompareTo(b.Identity.Index));
        return devices;
    }

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
            if (rc == Return.Success && !_policy.ReinitRequested)
            {
                GpuLog.DeviceRecovered(_logger, index);
                _policy.ReinitRequested = true;
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

    private List<GpuReading> MissingGpus(IReadOnlyList<NvmlDevice> present)
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

    private IReadOnlyList<XidCount> XidSnapshot() => _xids.Snapshot();

    private string? ReadSystemString(delegate*<byte*, uint, Return> fn, int size, string name)
    {
        var buffer = stackalloc byte[size];
        var rc = fn(buffer, (uint)size);
        return _policy.Check(null, name, rc) ? DecodeString(new ReadOnlySpan<byte>(buffer, size)) : null;
    }

    private string? ReadCudaVersion()
    {
        int v;
        var rc = _exports.CudaVersionV2 ? nvmlSystemGetCudaDriverVersion_v2(&v) : nvmlSystemGetCudaDriverVersion(&v);
        return _policy.Check(null, nameof(nvmlSystemGetCudaDriverVersion), rc)
            ? FormattableString.Invariant($"{v / 1000}.{v % 1000 / 10}")
            : null;
    }

    private static string ErrorString(Return rc)
    {
        var text = nvmlErrorString(rc);
        return text is null ? NvmlCodes.Name(rc) : System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)text) ?? NvmlCodes.Name(rc);
    }
}
