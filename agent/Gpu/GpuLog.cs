using Microsoft.Extensions.Logging;

namespace VastHostAgent.Gpu;

/// <summary>Log messages of the GPU feature (event ids 1000-1099; the kernel-log XID source 1050-1059).</summary>
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

    [LoggerMessage(1050, LogLevel.Debug, "XID {Xid} on GPU {Index} from the {Source} was already counted from the {Other}")]
    public static partial void XidAlreadyCounted(ILogger logger, ulong xid, int index, string source, string other);

    [LoggerMessage(1051, LogLevel.Error, "XID {Xid} on GPU {Gpu} (PCI {Pci}) from the kernel log: {Description}: {Message}")]
    public static partial void KernelXid(ILogger logger, ulong xid, string gpu, string pci, string description, string message);

    [LoggerMessage(1052, LogLevel.Warning, "Kernel log {Path} cannot be read ({Problem}): XIDs come from NVML events only (vasthost_kernel_log_up 0); retrying in {RetryIn}. The agent needs read access to /dev/kmsg (CAP_SYSLOG where kernel.dmesg_restrict=1), or set gpu.kmsgPath to \"\" to turn this source off.")]
    public static partial void KernelLogUnreadable(ILogger logger, string path, string problem, TimeSpan retryIn);

    [LoggerMessage(1053, LogLevel.Information, "Reading NVIDIA XIDs from the kernel log {Path} (new records only)")]
    public static partial void KernelLogReading(ILogger logger, string path);

    [LoggerMessage(1054, LogLevel.Debug, "Kernel log {Path}: records were overwritten before they were read (the ring buffer wrapped); going on with the next")]
    public static partial void KernelLogOverrun(ILogger logger, string path);

    [LoggerMessage(1055, LogLevel.Information, "Kernel log {Path} was truncated; reading it from its start")]
    public static partial void KernelLogTruncated(ILogger logger, string path);

    [LoggerMessage(1056, LogLevel.Warning, "Kernel log: {Count} PCI addresses and XID codes already counted; further ones are logged but not counted")]
    public static partial void KernelXidLimit(ILogger logger, int count);
}
