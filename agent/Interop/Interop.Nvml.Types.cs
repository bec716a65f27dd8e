using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VastHostAgent.Interop;

/// <summary>
/// NVML types, mirrored from NVIDIA's <c>nvml.h</c> (API version 13) for x86_64 Linux.
/// Layouts are asserted against the header's sizes and offsets in <c>NvmlLayoutTests</c>.
/// Every struct is blittable: fixed-size fields only, explicit sequential layout, no managed references.
/// </summary>
internal static partial class Nvml
{
    public const int DeviceNameBufferSize = 96;          // NVML_DEVICE_NAME_V2_BUFFER_SIZE
    public const int DeviceUuidBufferSize = 96;          // NVML_DEVICE_UUID_V2_BUFFER_SIZE
    public const int SystemDriverVersionBufferSize = 80; // NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE
    public const int SystemNvmlVersionBufferSize = 80;   // NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE
    public const int DeviceVbiosVersionBufferSize = 32;  // NVML_DEVICE_VBIOS_VERSION_BUFFER_SIZE

    public const uint MemoryV2Version = 0x02000028;      // nvmlMemory_v2 = sizeof(nvmlMemory_v2_t) | 2 << 24

    public const ulong EventTypeXidCriticalError = 0x8;

    public const uint FieldMemoryTemperature = 82;       // NVML_FI_DEV_MEMORY_TEMP

    public const uint GpmSupportVersion = 1;             // NVML_GPM_SUPPORT_VERSION
    public const uint GpmMetricsGetVersion = 1;          // NVML_GPM_METRICS_GET_VERSION
    public const int GpmMetricMax = 333;                 // NVML_GPM_METRIC_MAX (API 13; older headers have fewer)

    /// <summary><c>nvmlMemory_t</c>: 24 bytes. <c>used</c> includes reserved memory.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Memory
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }

    /// <summary><c>nvmlMemory_v2_t</c>: 40 bytes; <c>Version</c> must be <see cref="MemoryV2Version"/>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MemoryV2
    {
        public uint Version;
        private readonly uint _padding;
        public ulong Total;
        public ulong Reserved;
        public ulong Free;
        public ulong Used;
    }

    /// <summary><c>nvmlUtilization_t</c>: percent of the last sample period.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Utilization
    {
        public uint Gpu;
        public uint Memory;
    }

    /// <summary><c>nvmlPciInfo_t</c>: 68 bytes, <c>busId</c> at offset 36.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct PciInfo
    {
        public fixed byte BusIdLegacy[16];
        public uint Domain;
        public uint Bus;
        public uint Device;
        public uint PciDeviceId;
        public uint PciSubSystemId;
        public fixed byte BusId[32];
    }

    /// <summary><c>nvmlProcessInfo_v1_t</c>: 16 bytes (the unversioned export).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ProcessInfoV1
    {
        public uint Pid;
        private readonly uint _padding;
        public ulong UsedGpuMemory;
    }

    /// <summary><c>nvmlProcessInfo_t</c> (= <c>nvmlProcessInfo_v2_t</c>): 24 bytes, filled by the <c>_v2</c> and <c>_v3</c> exports.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ProcessInfo
    {
        public uint Pid;
        private readonly uint _padding;
        public ulong UsedGpuMemory;
        public uint GpuInstanceId;
        public uint ComputeInstanceId;
    }

    /// <summary><c>nvmlEventData_t</c>: 32 bytes; <c>EventData</c> carries the XID number.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct EventData
    {
        public nint Device;
        public ulong EventType;
        public ulong Data;
        public uint GpuInstanceId;
        public uint ComputeInstanceId;
    }

    /// <summary><c>nvmlFieldValue_t</c>: 40 bytes; the value union is read according to <c>ValueType</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct FieldValue
    {
        public uint FieldId;
        public uint ScopeId;
        public long Timestamp;
        public long LatencyUsec;
        public uint ValueType;
        public Return NvmlReturn;
        public ulong Value;
    }

    /// <summary><c>nvmlGpmSupport_t</c>: 8 bytes; <c>Version</c> must be <see cref="GpmSupportVersion"/>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct GpmSupport
    {
        public uint Version;
        public uint IsSupportedDevice;
    }

    /// <summary>
    /// <c>nvmlGpmMetric_t</c>: 40 bytes. <c>metricInfo</c> is three <c>char*</c> NVML fills (short name, long name,
    /// unit), owned by the library.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct GpmMetric
    {
        public GpmMetricId MetricId;
        public Return NvmlReturn;
        public double Value;
        public nint ShortName;
        public nint LongName;
        public nint Unit;
    }

    /// <summary>The <c>metrics[NVML_GPM_METRIC_MAX]</c> array of <see cref="GpmMetricsGet"/>.</summary>
    [InlineArray(GpmMetricMax)]
    public struct GpmMetricArray
    {
        private GpmMetric _element;
    }

    /// <summary>
    /// <c>nvmlGpmMetricsGet_t</c>: 13,344 bytes, <c>metrics</c> at offset 24. The driver reads only <c>NumMetrics</c>
    /// entries, so an array sized for the largest header serves older drivers too.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct GpmMetricsGet
    {
        public uint Version;
        public uint NumMetrics;
        public nint Sample1;
        public nint Sample2;
        public GpmMetricArray Metrics;
    }

    /// <summary><c>nvmlGpmMetricId_t</c>: the ids the agent asks for. The <c>*_UTIL</c> ids are percentages (0–100), the rates MiB/s.</summary>
    public enum GpmMetricId : uint
    {
        GraphicsUtil = 1,
        SmUtil = 2,
        SmOccupancy = 3,
        AnyTensorUtil = 5,
        HmmaTensorUtil = 7,
        DramBwUtil = 10,
        PcieTxPerSec = 20,
        PcieRxPerSec = 21,
        NvlinkTotalRxPerSec = 60,
        NvlinkTotalTxPerSec = 61,
    }

    /// <summary><c>nvmlValueType_t</c> for <see cref="FieldValue"/>.</summary>
    public enum ValueType : uint
    {
        Double = 0,
        UnsignedInt = 1,
        UnsignedLong = 2,
        UnsignedLongLong = 3,
        SignedLongLong = 4,
        SignedInt = 5,
        UnsignedShort = 6,
    }

    /// <summary><c>nvmlReturn_t</c>.</summary>
    public enum Return
    {
        Success = 0,
        Uninitialized = 1,
        InvalidArgument = 2,
        NotSupported = 3,
        NoPermission = 4,
        AlreadyInitialized = 5,
        NotFound = 6,
        InsufficientSize = 7,
        InsufficientPower = 8,
        DriverNotLoaded = 9,
        Timeout = 10,
        IrqIssue = 11,
        LibraryNotFound = 12,
        FunctionNotFound = 13,
        CorruptedInforom = 14,
        GpuIsLost = 15,
        ResetRequired = 16,
        OperatingSystem = 17,
        LibRmVersionMismatch = 18,
        InUse = 19,
        Memory = 20,
        NoData = 21,
        VgpuEccNotSupported = 22,
        InsufficientResources = 23,
        FreqNotSupported = 24,
        ArgumentVersionMismatch = 25,
        Deprecated = 26,
        NotReady = 27,
        GpuNotFound = 28,
        InvalidState = 29,
        ResetTypeNotSupported = 30,
        Unknown = 999,
    }

    public enum TemperatureThreshold
    {
        Shutdown = 0,
        Slowdown = 1,
        MemoryMax = 2,
        GpuMax = 3,
    }

    public enum ClockType
    {
        Graphics = 0,
        Sm = 1,
        Memory = 2,
        Video = 3,
    }

    public enum MemoryErrorType
    {
        Corrected = 0,
        Uncorrected = 1,
    }

    public enum EccCounterType
    {
        Volatile = 0,
        Aggregate = 1,
    }
}
