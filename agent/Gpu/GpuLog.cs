using Microsoft.Extensions.Logging;

namespace VastHostAgent.Gpu;

/// <summary>Log messages of the GPU feature (event ids 1000-1099).</summary>
internal static partial class GpuLog
{
    [LoggerMessage(1000, LogLevel.Warning, "NVML unavailable, GPU metrics are off (vasthost_nvml_up 0): {Reason}. Set gpu.nvmlLibrary to load it from another path, or gpu.enabled=false on a machine without NVIDIA GPUs.")]
    public static partial void LibraryUnavailable(ILogger logger, string reason);

    [LoggerMessage(1001, LogLevel.Warning, "nvmlInit failed with {Code} ({Message}); retrying in {RetryIn}")]
    public static partial void InitFailed(ILogger logger, string code, string message, TimeSpan retryIn);

    [LoggerMessage(1002, LogLevel.Information, "NVML ready: {Count} GPU(s), driver {Driver}, CUDA {Cuda}, library {Library}")]
    public static partial void Ready(ILogger logger, int count, string driver, string cuda, string library);

    [LoggerMessage(1003, LogLevel.Warning, "GPU {Index} cannot be opened: {Code}")]
    public static partial void DeviceUnavailable(ILogger logger, int index, string code);

    [LoggerMessage(1004, LogLevel.Error, "GPU {Index} ({Uuid}) is down: {Code} from {Function}; its other readings are absent until it recovers")]
    public static partial void GpuDown(ILogger logger, int index, string uuid, string code, string function);

    [LoggerMessage(1005, LogLevel.Warning, "NVML asked for re-initialisation; re-initialising on the next cycle")]
    public static partial void Reinitialising(ILogger logger);

    [LoggerMessage(1014, LogLevel.Information, "GPU {Index} can be opened again; re-resolving GPUs")]
    public static partial void DeviceRecovered(ILogger logger, int index);

    [LoggerMessage(1006, LogLevel.Warning, "NVML device count changed from {Old} to {New}; re-resolving GPUs")]
    public static partial void DeviceCountChanged(ILogger logger, int old, int @new);

    [LoggerMessage(1010, LogLevel.Error, "XID {Xid} on GPU {Index} ({Uuid}): {Description}")]
    public static partial void Xid(ILogger logger, ulong xid, int index, string uuid, string description);

    [LoggerMessage(1011, LogLevel.Warning, "XID event watch: {Function} failed with {Code}; retrying in {RetryIn}")]
    public static partial void XidWatchFailed(ILogger logger, string function, string code, TimeSpan retryIn);

    [LoggerMessage(1012, LogLevel.Warning, "XID events cannot be registered for GPU {Index}")]
    public static partial void XidRegisterFailed(ILogger logger, int index);

    [LoggerMessage(1013, LogLevel.Information, "No GPU supports XID event registration; XID counters stay empty")]
    public static partial void XidUnsupported(ILogger logger);
}
