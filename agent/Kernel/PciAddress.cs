using System.Globalization;
using System.Text.RegularExpressions;

namespace VastHostAgent.Kernel;

/// <summary>
/// PCI addresses in one spelling for every source that names a GPU by its slot: NVML's bus id
/// (<c>00000000:01:00.0</c>), sysfs's directory name (<c>0000:01:00.0</c>) and the driver's kernel log
/// (<c>PCI:0000:01:00</c>, no function).
/// </summary>
public static partial class PciAddress
{
    /// <summary>Domain, bus, device and function, lower case (<c>0000:01:00.0</c>); text that is no address comes back trimmed and lower case.</summary>
    public static string Normalise(string address)
    {
        var a = address.Trim().ToLowerInvariant();
        var parts = a.Split(':');
        if (parts.Length == 2)
        {
            return "0000:" + a;
        }

        if (parts.Length == 3 && uint.TryParse(parts[0], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var domain))
        {
            return string.Create(CultureInfo.InvariantCulture, $"{domain:x4}:{parts[1]}:{parts[2]}");
        }

        return a;
    }

    /// <summary>
    /// Domain, bus and device without the function, lower case (<c>0000:01:00</c>), as the NVIDIA driver names a GPU
    /// in the kernel log: NVML's bus id and the driver's text map to the same string. Null when it is not an address.
    /// </summary>
    public static string? Device(string? address)
    {
        if (string.IsNullOrEmpty(address))
        {
            return null;
        }

        var m = Pattern().Match(address.Trim());
        if (!m.Success)
        {
            return null;
        }

        var domain = m.Groups["domain"].Value;
        domain = domain.Length > 4 ? domain[^4..] : domain.PadLeft(4, '0');
        return string.Create(CultureInfo.InvariantCulture, $"{domain}:{m.Groups["bus"].Value}:{m.Groups["device"].Value}").ToLowerInvariant();
    }

    [GeneratedRegex(@"^(?:PCI:)?(?<domain>[0-9A-Fa-f]{1,8}):(?<bus>[0-9A-Fa-f]{2}):(?<device>[0-9A-Fa-f]{2})(?:\.[0-7])?$")]
    private static partial Regex Pattern();
}
