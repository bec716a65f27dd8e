using System.Globalization;
using VastHostAgent.Kernel;

namespace VastHostAgent.GpuCount;

/// <summary>PCIe Advanced Error Reporting totals of one device (<c>aer_dev_*</c>); null where the kernel has no such file.</summary>
public sealed record AerTotals(ulong? Correctable, ulong? Nonfatal, ulong? Fatal);

/// <summary>
/// One NVIDIA display or 3D controller on the PCI bus.
/// </summary>
/// <param name="Address">Normalised PCI address (<c>0000:01:00.0</c>, lower case).</param>
/// <param name="Driver">The bound driver's name (<c>nvidia</c>, <c>vfio-pci</c>, <c>nouveau</c>, ...); null when no driver is bound.</param>
/// <param name="Aer">AER error totals; null when the device has no AER files.</param>
public sealed record PciGpu(string Address, string? Driver, AerTotals? Aer);

/// <summary>The result of one scan.</summary>
/// <param name="BusPresent">The PCI devices directory exists (false in a fixture root without one, or a container without /sys).</param>
/// <param name="Gpus">NVIDIA GPUs on the bus, by address.</param>
public sealed record PciScan(bool BusPresent, IReadOnlyList<PciGpu> Gpus);

/// <summary>Finds the NVIDIA GPUs on the PCI bus.</summary>
public interface IPciGpuScanner
{
    /// <summary>Scans the bus once. Never throws for an unreadable device (it is skipped).</summary>
    PciScan Scan();
}

/// <summary>
/// Reads <c>{sysfsRoot}/bus/pci/devices/*</c>: <c>vendor</c> (0x10de), <c>class</c> (display 0x0300xx or 3D 0x0302xx:
/// NVIDIA's audio and USB functions are skipped), the <c>driver</c> link's target name, and the AER counters
/// <c>aer_dev_correctable</c>, <c>aer_dev_nonfatal</c>, <c>aer_dev_fatal</c> (their <c>TOTAL_ERR_*</c> line).
/// </summary>
internal sealed class SysfsPciGpuScanner(string sysfsRoot) : IPciGpuScanner
{
    public const uint NvidiaVendor = 0x10de;

    private readonly string _devices = Path.Combine(sysfsRoot, "bus", "pci", "devices");

    // Vendor and class of an address never change while the device is on the bus: read once per appearance
    // (a device that leaves and comes back is read again). One caller: the pci source.
    private Dictionary<string, bool> _isNvidiaGpu = new(StringComparer.Ordinal);

    // One buffer for every file of a scan (vendor, class, AER: each under 1 KiB).
    private readonly byte[] _buffer = new byte[4096];

    public PciScan Scan()
    {
        string[] entries;
        try
        {
            entries = Directory.GetFileSystemEntries(_devices);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new PciScan(false, []);
        }

        var gpus = new List<PciGpu>();
        var known = new Dictionary<string, bool>(entries.Length, StringComparer.Ordinal);
        foreach (var dir in entries)
        {
            if (!_isNvidiaGpu.TryGetValue(dir, out var isGpu))
            {
                isGpu = ReadHex(Path.Combine(dir, "vendor")) == NvidiaVendor && ReadHex(Path.Combine(dir, "class")) is { } cls && IsGpuClass(cls);
            }

            known[dir] = isGpu;
            if (!isGpu)
            {
                continue;
            }

            var address = PciAddress.Normalise(Path.GetFileName(dir));
            gpus.Add(new PciGpu(address, Driver(dir), Aer(dir)));
        }

        _isNvidiaGpu = known;
        gpus.Sort((a, b) => string.CompareOrdinal(a.Address, b.Address));
        return new PciScan(true, gpus);
    }

    /// <summary>PCI class 0x0300xx (VGA-compatible display controller) or 0x0302xx (3D controller: data-centre GPUs).</summary>
    public static bool IsGpuClass(uint cls) => (cls >> 8) is 0x0300 or 0x0302;

    private static string? Driver(string dir)
    {
        try
        {
            var target = new FileInfo(Path.Combine(dir, "driver")).LinkTarget;
            return string.IsNullOrEmpty(target) ? null : Path.GetFileName(target.TrimEnd('/'));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private AerTotals? Aer(string dir)
    {
        var correctable = SmallFile.ReadValue(Path.Combine(dir, "aer_dev_correctable"), "TOTAL_ERR_COR", _buffer);
        var nonfatal = SmallFile.ReadValue(Path.Combine(dir, "aer_dev_nonfatal"), "TOTAL_ERR_NONFATAL", _buffer);
        var fatal = SmallFile.ReadValue(Path.Combine(dir, "aer_dev_fatal"), "TOTAL_ERR_FATAL", _buffer);
        return correctable is null && nonfatal is null && fatal is null ? null : new AerTotals(correctable, nonfatal, fatal);
    }

    private uint? ReadHex(string path)
    {
        var length = SmallFile.Read(path, _buffer);
        if (length < 0)
        {
            return null;
        }

        var text = _buffer.AsSpan(0, length).Trim(" \t\r\n"u8);
        if (text.StartsWith("0x"u8) || text.StartsWith("0X"u8))
        {
            text = text[2..];
        }

        return uint.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value) ? value : null;
    }
}
