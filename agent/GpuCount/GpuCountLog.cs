using Microsoft.Extensions.Logging;

namespace VastHostAgent.GpuCount;

/// <summary>Log messages of the GPU-count feature (event ids 8700-8749). Each is a change, logged once.</summary>
internal static partial class GpuCountLog
{
    [LoggerMessage(8700, LogLevel.Warning, "GPU {Address} is missing ({Reason}): on the PCI bus but neither read by NVML nor passed through to a VM, or gone from the bus")]
    public static partial void Missing(ILogger logger, string address, string reason);

    [LoggerMessage(8701, LogLevel.Information, "GPU {Address} is no longer missing")]
    public static partial void Found(ILogger logger, string address);

    [LoggerMessage(8702, LogLevel.Information, "GPU {Address} is bound to vfio-pci (passed through to a VM rental)")]
    public static partial void PassedThrough(ILogger logger, string address);

    [LoggerMessage(8703, LogLevel.Information, "GPU {Address} is no longer bound to vfio-pci")]
    public static partial void Returned(ILogger logger, string address);

    [LoggerMessage(8704, LogLevel.Information, "No PCI bus under {Path}: GPUs passed through or missing cannot be counted (host.sysfsRoot)")]
    public static partial void NoBus(ILogger logger, string path);
}
