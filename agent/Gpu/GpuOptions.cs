using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;

namespace VastHostAgent.Gpu;

/// <summary>Configuration section <c>gpu</c>: NVML telemetry.</summary>
public sealed class GpuOptions
{
    public const string SectionName = "gpu";

    /// <summary>Read GPUs through NVML. Turn off only on a machine without NVIDIA GPUs.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The NVML library: a soname searched like the dynamic linker does, or an absolute path.</summary>
    [Required(AllowEmptyStrings = false)]
    [RegularExpression(@"^[^\s]+$", ErrorMessage = "must be a library file name or an absolute path without spaces")]
    public string NvmlLibrary { get; set; } = "libnvidia-ml.so.1";

    /// <summary>Watch NVML XID critical-error events on a dedicated thread.</summary>
    public bool XidEvents { get; set; } = true;

    /// <summary>
    /// The kernel log to read NVIDIA XIDs from (<c>NVRM: Xid</c> lines), a second source that works while NVML hangs or
    /// is missing: <c>/dev/kmsg</c> (new records from the agent's start on), or a text file of kmsg or dmesg lines, which
    /// is tailed. Empty: off.
    /// </summary>
    [RegularExpression(@"^(/[^\s]*)?$", ErrorMessage = "must be an absolute path without spaces, or empty to turn the kernel log source off")]
    public string KmsgPath { get; set; } = "/dev/kmsg";

    /// <summary>Read each GPU's compute processes (needed to attribute GPU memory to containers).</summary>
    public bool Processes { get; set; } = true;
}

/// <summary>Source-generated metadata of the section: keys, types and validation attributes for the start-up check.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(GpuOptions))]
internal sealed partial class GpuOptionsJson : JsonSerializerContext;
