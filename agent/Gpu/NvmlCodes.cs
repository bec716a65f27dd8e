using VastHostAgent.Interop;

namespace VastHostAgent.Gpu;

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
