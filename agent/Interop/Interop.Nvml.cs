using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace VastHostAgent.Interop;

/// <summary>
/// The NVML entry points the agent calls, bound with <see cref="LibraryImportAttribute"/> against the
/// soname <c>libnvidia-ml.so.1</c>. <see cref="NvmlLibrary"/> resolves that name to a configured path and
/// probes optional (versioned) exports once, so callers pick an export the loaded driver really has.
/// Only blittable arguments: pointers, fixed-size integers and the structs in Interop.Nvml.Types.cs.
/// </summary>
[SuppressMessage("Style", "IDE1006:Naming Styles", Justification = "Native names kept as in nvml.h.")]
[SuppressMessage("Globalization", "CA2101", Justification = "No string marshalling: byte buffers only.")]
internal static unsafe partial class Nvml
{
    public const string LibraryName = "libnvidia-ml.so.1";

    [LibraryImport(LibraryName)] public static partial Return nvmlInit_v2();
    [LibraryImport(LibraryName)] public static partial Return nvmlInit();
    [LibraryImport(LibraryName)] public static partial Return nvmlShutdown();
    [LibraryImport(LibraryName)] public static partial byte* nvmlErrorString(Return result);

    [LibraryImport(LibraryName)] public static partial Return nvmlSystemGetDriverVersion(byte* version, uint length);
    [LibraryImport(LibraryName)] public static partial Return nvmlSystemGetNVMLVersion(byte* version, uint length);
    [LibraryImport(LibraryName)] public static partial Return nvmlSystemGetCudaDriverVersion_v2(int* cudaDriverVersion);
    [LibraryImport(LibraryName)] public static partial Return nvmlSystemGetCudaDriverVersion(int* cudaDriverVersion);

    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetCount_v2(uint* deviceCount);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetCount(uint* deviceCount);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetHandleByIndex_v2(uint index, nint* device);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetHandleByIndex(uint index, nint* device);

    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetName(nint device, byte* name, uint length);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetUUID(nint device, byte* uuid, uint length);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetIndex(nint device, uint* index);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetMinorNumber(nint device, uint* minorNumber);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetPciInfo_v3(nint device, PciInfo* pci);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetVbiosVersion(nint device, byte* version, uint length);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetCudaComputeCapability(nint device, int* major, int* minor);

    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetUtilizationRates(nint device, Utilization* utilization);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetEncoderUtilization(nint device, uint* utilization, uint* samplingPeriodUs);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetDecoderUtilization(nint device, uint* utilization, uint* samplingPeriodUs);

    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetMemoryInfo(nint device, Memory* memory);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetMemoryInfo_v2(nint device, MemoryV2* memory);

    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetTemperature(nint device, int sensorType, uint* temp);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetTemperatureThreshold(nint device, TemperatureThreshold thresholdType, uint* temp);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetFieldValues(nint device, int valuesCount, FieldValue* values);

    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetPowerUsage(nint device, uint* power);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetEnforcedPowerLimit(nint device, uint* limit);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetPowerManagementDefaultLimit(nint device, uint* limit);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetTotalEnergyConsumption(nint device, ulong* energy);

    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetNumFans(nint device, uint* numFans);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetFanSpeed_v2(nint device, uint fan, uint* speed);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetFanSpeed(nint device, uint* speed);

    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetClockInfo(nint device, ClockType type, uint* clock);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetMaxClockInfo(nint device, ClockType type, uint* clock);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetPerformanceState(nint device, int* pState);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetCurrentClocksEventReasons(nint device, ulong* reasons);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetCurrentClocksThrottleReasons(nint device, ulong* reasons);

    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetCurrPcieLinkGeneration(nint device, uint* value);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetCurrPcieLinkWidth(nint device, uint* value);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetMaxPcieLinkGeneration(nint device, uint* value);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetMaxPcieLinkWidth(nint device, uint* value);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetPcieReplayCounter(nint device, uint* value);

    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetPersistenceMode(nint device, int* mode);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetEccMode(nint device, int* current, int* pending);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetTotalEccErrors(nint device, MemoryErrorType errorType, EccCounterType counterType, ulong* eccCounts);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetRemappedRows(nint device, uint* corrRows, uint* uncRows, uint* isPending, uint* failureOccurred);

    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetComputeRunningProcesses_v3(nint device, uint* infoCount, ProcessInfo* infos);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetComputeRunningProcesses_v2(nint device, uint* infoCount, ProcessInfo* infos);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetComputeRunningProcesses(nint device, uint* infoCount, ProcessInfoV1* infos);

    // GPM (GPU Performance Monitoring, Hopper and newer): absent from older drivers, probed before use.
    [LibraryImport(LibraryName)] public static partial Return nvmlGpmQueryDeviceSupport(nint device, GpmSupport* gpmSupport);
    [LibraryImport(LibraryName)] public static partial Return nvmlGpmSampleAlloc(nint* gpmSample);
    [LibraryImport(LibraryName)] public static partial Return nvmlGpmSampleFree(nint gpmSample);
    [LibraryImport(LibraryName)] public static partial Return nvmlGpmSampleGet(nint device, nint gpmSample);
    [LibraryImport(LibraryName)] public static partial Return nvmlGpmMetricsGet(GpmMetricsGet* metricsGet);

    [LibraryImport(LibraryName)] public static partial Return nvmlEventSetCreate(nint* set);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceGetSupportedEventTypes(nint device, ulong* eventTypes);
    [LibraryImport(LibraryName)] public static partial Return nvmlDeviceRegisterEvents(nint device, ulong eventTypes, nint set);
    [LibraryImport(LibraryName)] public static partial Return nvmlEventSetWait_v2(nint set, EventData* data, uint timeoutMs);
    [LibraryImport(LibraryName)] public static partial Return nvmlEventSetWait(nint set, EventData* data, uint timeoutMs);
    [LibraryImport(LibraryName)] public static partial Return nvmlEventSetFree(nint set);

    /// <summary>Decodes a NUL-terminated UTF-8 buffer filled by NVML.</summary>
    public static string DecodeString(ReadOnlySpan<byte> buffer)
    {
        var end = buffer.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(end < 0 ? buffer : buffer[..end]).Trim();
    }
}
