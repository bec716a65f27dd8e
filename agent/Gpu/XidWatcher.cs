using Microsoft.Extensions.Logging;
using VastHostAgent.Kernel;
using static VastHostAgent.Interop.Nvml;

namespace VastHostAgent.Gpu;

/// <summary>
/// Waits for NVML XID critical-error events on its own thread (<c>nvmlEventSetWait</c> blocks), and
/// records them in the <see cref="XidLedger"/> (shared with the kernel-log source, which deduplicates the two; it
/// outlives NVML re-initialisation). On failure it backs off from 1 s to 30 s and registers again.
/// </summary>
internal sealed unsafe class XidWatcher : IDisposable
{
    private const uint WaitTimeoutMs = 500;
    private static readonly TimeSpan BackoffMin = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan BackoffMax = TimeSpan.FromSeconds(30);

    private readonly IReadOnlyList<(nint Handle, GpuIdentity Identity)> _devices;
    private readonly bool _waitV2;
    private readonly XidLedger _ledger;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly LoopHealth? _loops;
    private Thread? _thread;

    /// <summary>The loop's name for supervision, metrics and health.</summary>
    public const string LoopName = "xid";

    public XidWatcher(
        IReadOnlyList<(nint Handle, GpuIdentity Identity)> devices,
        bool waitV2,
        XidLedger ledger,
        TimeProvider time,
        ILogger logger,
        LoopHealth? loops = null)
    {
        _loops = loops;
        _devices = devices;
        _waitV2 = waitV2;
        _ledger = ledger;
        _time = time;
        _logger = logger;
    }

    public void Start()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "nvml-xid-events" };
        _thread.Start();
    }

    public void Dispose()
    {
        _stop.Cancel();
        // The wait returns within WaitTimeoutMs; a driver wedged inside the wait is left behind (background thread).
        _thread?.Join(TimeSpan.FromMilliseconds(WaitTimeoutMs * 4));
        _stop.Dispose();
    }

    private void Run()
    {
        var backoff = BackoffMin;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                if (!Cycle(ref backoff))
                {
                    return;
                }

                _loops?.Succeeded(LoopName);
            }
            catch (Exception ex)
            {
                // An exception on this thread would end the process: logged once per cause, counted, backed off.
                var wait = _loops?.Failed(LoopName, ex) ?? backoff;
                Pause(ref wait);
            }
        }
    }

    /// <summary>One event set's life: create, register, wait for events. False when no GPU supports XID events (the watcher ends).</summary>
    private bool Cycle(ref TimeSpan backoff)
    {
        nint set = 0;
        try
        {
            var rc = nvmlEventSetCreate(&set);
            if (rc != Return.Success)
            {
                GpuLog.XidWatchFailed(_logger, "nvmlEventSetCreate", NvmlCodes.Name(rc), backoff);
                Pause(ref backoff);
                return true;
            }

            var registered = 0;
            foreach (var (handle, identity) in _devices)
            {
                ulong supported;
                if (nvmlDeviceGetSupportedEventTypes(handle, &supported) != Return.Success
                    || (supported & EventTypeXidCriticalError) == 0)
                {
                    continue;
                }

                if (nvmlDeviceRegisterEvents(handle, EventTypeXidCriticalError, set) == Return.Success)
                {
                    registered++;
                }
                else
                {
                    GpuLog.XidRegisterFailed(_logger, identity.Index);
                }
            }

            if (registered == 0)
            {
                GpuLog.XidUnsupported(_logger);
                return false;
            }

            backoff = BackoffMin;
            if (!WaitLoop(set, ref backoff))
            {
                Pause(ref backoff);
            }

            return true;
        }
        finally
        {
            if (set != 0)
            {
                _ = nvmlEventSetFree(set);
            }
        }
    }

    /// <summary>Returns true when stopped, false when the event set failed and must be recreated.</summary>
    private bool WaitLoop(nint set, ref TimeSpan backoff)
    {
        while (!_stop.IsCancellationRequested)
        {
            EventData data;
            var rc = _waitV2 ? nvmlEventSetWait_v2(set, &data, WaitTimeoutMs) : nvmlEventSetWait(set, &data, WaitTimeoutMs);
            if (rc == Return.Timeout)
            {
                continue;
            }

            if (rc != Return.Success)
            {
                GpuLog.XidWatchFailed(_logger, "nvmlEventSetWait", NvmlCodes.Name(rc), backoff);
                return false;
            }

            if ((data.EventType & EventTypeXidCriticalError) == 0)
            {
                continue;
            }

            var handle = data.Device;
            var device = _devices.FirstOrDefault(d => d.Handle == handle);
            if (device.Identity is null)
            {
                continue;
            }

            var identity = device.Identity;
            if (_ledger.Record(XidSource.Nvml, identity.Uuid, identity.Index, Kernel.PciAddress.Device(identity.PciBusId), data.Data))
            {
                GpuLog.Xid(_logger, data.Data, identity.Index, identity.Uuid, XidCatalog.Describe(data.Data));
            }
            else
            {
                GpuLog.XidAlreadyCounted(_logger, data.Data, identity.Index, "NVML event", "kernel log");
            }
        }

        return true;
    }

    private void Pause(ref TimeSpan backoff)
    {
        try
        {
            Task.Delay(backoff, _time, _stop.Token).Wait();
        }
        catch (AggregateException)
        {
            // stopped
        }

        backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, BackoffMax.Ticks));
    }
}

/// <summary>
/// NVIDIA's short texts for the common XIDs (its XID catalogue), as dcgm-exporter prints them in the <c>err_msg</c>
/// label of <c>DCGM_FI_DEV_XID_ERRORS</c>; the agent's XID log lines use the same words. Other codes get a generic
/// text, so the label stays bounded.
/// </summary>
internal static class XidCatalog
{
    public const string Unknown = "Unknown Error";

    public static string Describe(ulong xid) => xid switch
    {
        0 => "No Error",
        8 => "GPU stopped processing",
        13 => "Graphics Engine Exception",
        31 => "GPU memory page fault",
        32 => "Invalid or corrupted push buffer stream",
        38 => "Driver firmware error",
        43 => "GPU stopped processing",
        44 => "Graphics Engine fault during context switch",
        45 => "Preemptive cleanup, due to previous errors -- Most likely to see when running multiple cuda",
        48 => "Double Bit ECC Error",
        54 => "Auxiliary power is not connected to the GPU board",
        56 => "Display Engine error",
        57 => "Error programming video memory interface",
        58 => "Unstable video memory interface detected",
        61 => "Internal micro-controller breakpoint/warning",
        62 => "Internal micro-controller halt",
        63 => "ECC page retirement or row remapping recording event",
        64 => "ECC page retirement or row remapper recording failure",
        68 => "NVDEC0 Exception",
        69 => "Graphics Engine class error",
        74 => "NVLINK Error",
        79 => "GPU has fallen off the bus",
        80 => "Corrupted data sent to GPU",
        81 => "VGA Subsystem Error",
        92 => "High single-bit ECC error rate",
        93 => "Non-fatal violation of provisioned InfoROM wear limit",
        94 => "Contained ECC error",
        95 => "Uncontained ECC error",
        109 => "Context Switch Timeout Error",
        110 => "Security Fault Error",
        119 => "GSP RPC Timeout",
        120 => "GSP Error",
        121 => "C2C Link Error",
        122 => "SPI PMU RPC Read Failure",
        123 => "SPI PMU RPC Write Failure",
        124 => "SPI PMU RPC Erase Failure",
        125 => "Inforom FS Failure",
        136 => "ALI Training Fail",
        137 => "NVLink Privilege Error",
        140 => "Unrecovered ECC Error",
        143 => "GPU Initialization Failure",
        154 => "GPU Recovery Action Changed",
        155 => "NVLINK: SW Defined Error",
        156 => "Resource Retirement Event",
        157 => "Resource Retirement Failure",
        158 => "GPU Fatal Timeout",
        167 => "PCIE Fatal Timeout",
        171 => "Uncorrectable DRAM Error",
        172 => "Uncorrectable SRAM Error",
        _ => Unknown,
    };
}
