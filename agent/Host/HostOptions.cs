using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;

namespace VastHostAgent.Host;

/// <summary>Configuration section <c>host</c>: board sensors, disk space, and where /sys and /proc are.</summary>
public sealed class HostSensorOptions
{
    public const string SectionName = "host";

    /// <summary>Root of sysfs. Tests point it at a fixture tree.</summary>
    [Required(AllowEmptyStrings = false)]
    [RegularExpression("^/.*", ErrorMessage = "must be an absolute path")]
    public string SysfsRoot { get; set; } = "/sys";

    /// <summary>Root of procfs (PID to container mapping). Tests point it at a fixture tree.</summary>
    [Required(AllowEmptyStrings = false)]
    [RegularExpression("^/.*", ErrorMessage = "must be an absolute path")]
    public string ProcRoot { get; set; } = "/proc";

    /// <summary>Where the cgroup hierarchy is mounted (container CPU and memory): v1 controllers or the v2 unified tree.</summary>
    [Required(AllowEmptyStrings = false)]
    [RegularExpression("^/.*", ErrorMessage = "must be an absolute path")]
    public string CgroupRoot { get; set; } = "/sys/fs/cgroup";

    /// <summary>Read temperatures and fan speeds from <c>{sysfsRoot}/class/hwmon</c>.</summary>
    public bool Hwmon { get; set; } = true;

    /// <summary>Report free and total space of the filesystem holding Docker's data root.</summary>
    public bool Disk { get; set; } = true;

    /// <summary>Docker's data root (where images, containers and volumes live).</summary>
    [Required(AllowEmptyStrings = false)]
    [RegularExpression("^/.*", ErrorMessage = "must be an absolute path")]
    public string DockerDataRoot { get; set; } = "/var/lib/docker";

    /// <summary>
    /// Scan <c>{sysfsRoot}/bus/pci/devices</c> for NVIDIA GPUs: which are bound to <c>vfio-pci</c> (passed through to a
    /// VM rental), which are missing (no driver, or gone from the bus), and their PCIe AER error counters.
    /// </summary>
    public bool PciScan { get; set; } = true;

    /// <summary>GPUs this rig should have when the Vast machine's <c>num_gpus</c> is not known (vast off); 0 = not set.</summary>
    [Range(0, 64, ErrorMessage = "must be between 0 and 64")]
    public int ExpectedGpus { get; set; }
}

/// <summary>Source-generated metadata of the section: keys, types and validation attributes for the start-up check.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(HostSensorOptions))]
internal sealed partial class HostOptionsJson : JsonSerializerContext;
