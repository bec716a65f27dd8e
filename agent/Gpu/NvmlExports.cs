using VastHostAgent.Interop;
using static VastHostAgent.Interop.Nvml;

namespace VastHostAgent.Gpu;

/// <summary>
/// Which optional or versioned exports the loaded NVML library has, probed once per initialisation. Each is named
/// by <c>nameof</c> its declaration in <c>Interop.Nvml.cs</c>. <see cref="Gpm"/>: all five GPM exports (drivers before
/// Hopper support lack them; a missing one is never bound, so no call can fail on an unresolved symbol).
/// </summary>
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
    bool EventWaitV2,
    bool Gpm)
{
    public static NvmlExports Probe() => new(
        InitV2: NvmlLibrary.HasExport(nameof(nvmlInit_v2)),
        CountV2: NvmlLibrary.HasExport(nameof(nvmlDeviceGetCount_v2)),
        HandleByIndexV2: NvmlLibrary.HasExport(nameof(nvmlDeviceGetHandleByIndex_v2)),
        CudaVersionV2: NvmlLibrary.HasExport(nameof(nvmlSystemGetCudaDriverVersion_v2)),
        MemoryInfoV2: NvmlLibrary.HasExport(nameof(nvmlDeviceGetMemoryInfo_v2)),
        ClocksEventReasons: NvmlLibrary.HasExport(nameof(nvmlDeviceGetCurrentClocksEventReasons)),
        NumFans: NvmlLibrary.HasExport(nameof(nvmlDeviceGetNumFans)),
        FanSpeedV2: NvmlLibrary.HasExport(nameof(nvmlDeviceGetFanSpeed_v2)),
        FanSpeedV1: NvmlLibrary.HasExport(nameof(nvmlDeviceGetFanSpeed)),
        ProcessesV3: NvmlLibrary.HasExport(nameof(nvmlDeviceGetComputeRunningProcesses_v3)),
        ProcessesV2: NvmlLibrary.HasExport(nameof(nvmlDeviceGetComputeRunningProcesses_v2)),
        EventWaitV2: NvmlLibrary.HasExport(nameof(nvmlEventSetWait_v2)),
        Gpm: NvmlLibrary.HasExport(nameof(nvmlGpmQueryDeviceSupport)) && NvmlLibrary.HasExport(nameof(nvmlGpmSampleAlloc))
             && NvmlLibrary.HasExport(nameof(nvmlGpmSampleFree)) && NvmlLibrary.HasExport(nameof(nvmlGpmSampleGet))
             && NvmlLibrary.HasExport(nameof(nvmlGpmMetricsGet)));
}
