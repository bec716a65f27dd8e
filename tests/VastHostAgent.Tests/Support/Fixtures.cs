using System.Globalization;
using System.Text;

namespace VastHostAgent.Tests.Support;

/// <summary>A fake-NVML state file (see tests/fake-nvml/README.md). Edits rewrite it atomically.</summary>
public sealed class FakeNvmlState
{
    private readonly SortedDictionary<string, string> _values = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private int _xidSequence;

    public FakeNvmlState(string directory, IDictionary<string, string>? initial = null)
    {
        Path = System.IO.Path.Combine(directory, "fake-nvml.state");
        foreach (var (k, v) in initial ?? new Dictionary<string, string>())
        {
            _values[k] = v;
        }

        Write();
    }

    public string Path { get; }

    public FakeNvmlState Set(string key, string value)
    {
        lock (_gate)
        {
            _values[key] = value;
            Write();
        }

        return this;
    }

    public FakeNvmlState Remove(string key)
    {
        lock (_gate)
        {
            _values.Remove(key);
            Write();
        }

        return this;
    }

    /// <summary>Queues one XID event for the GPU.</summary>
    public FakeNvmlState InjectXid(int gpu, int xid) =>
        Set($"xid.{Interlocked.Increment(ref _xidSequence)}", string.Create(CultureInfo.InvariantCulture, $"{gpu}:{xid}"));

    private void Write()
    {
        var sb = new StringBuilder();
        foreach (var (k, v) in _values)
        {
            sb.Append(k).Append('=').Append(v).Append('\n');
        }

        var tmp = Path + ".tmp";
        File.WriteAllText(tmp, sb.ToString());
        File.Move(tmp, Path, overwrite: true);
    }
}

/// <summary>A sysfs fixture tree with hwmon chips, as /sys/class/hwmon lays them out.</summary>
public sealed class HwmonFixture
{
    public HwmonFixture(string directory)
    {
        Root = System.IO.Path.Combine(directory, "sys");
        Directory.CreateDirectory(System.IO.Path.Combine(Root, "class", "hwmon"));
    }

    public string Root { get; }

    /// <summary>Adds hwmon{n} with a name and inputs: ("temp1", 45000, "Package id 0") etc.</summary>
    public HwmonFixture Chip(int n, string name, params (string Input, long Raw, string? Label)[] inputs)
    {
        var dir = System.IO.Path.Combine(Root, "class", "hwmon", $"hwmon{n}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(System.IO.Path.Combine(dir, "name"), name + "\n");
        foreach (var (input, raw, label) in inputs)
        {
            File.WriteAllText(System.IO.Path.Combine(dir, $"{input}_input"), raw.ToString(CultureInfo.InvariantCulture) + "\n");
            if (label is not null)
            {
                File.WriteAllText(System.IO.Path.Combine(dir, $"{input}_label"), label + "\n");
            }
        }

        return this;
    }
}

/// <summary>
/// A sysfs fixture tree with PCI devices, as /sys/bus/pci lays them out: <c>devices/{address}/vendor</c>, <c>class</c>,
/// a <c>driver</c> symbolic link to <c>../../drivers/{name}</c> (none when unbound) and the AER counter files.
/// </summary>
public sealed class PciFixture
{
    public PciFixture(string directory)
    {
        Root = System.IO.Path.Combine(directory, "sys");
        Directory.CreateDirectory(System.IO.Path.Combine(Root, "bus", "pci", "devices"));
        Directory.CreateDirectory(System.IO.Path.Combine(Root, "class", "hwmon"));
    }

    public string Root { get; }

    private string Dir(string address) => System.IO.Path.Combine(Root, "bus", "pci", "devices", address);

    /// <summary>Adds (or replaces) a device: vendor 0x10de and class 0x030000 make an NVIDIA GPU; driver null = unbound.</summary>
    public PciFixture Device(string address, string? driver, uint vendor = 0x10de, uint cls = 0x030000)
    {
        var dir = Dir(address);
        Directory.CreateDirectory(dir);
        File.WriteAllText(System.IO.Path.Combine(dir, "vendor"), string.Create(CultureInfo.InvariantCulture, $"0x{vendor:x4}\n"));
        File.WriteAllText(System.IO.Path.Combine(dir, "class"), string.Create(CultureInfo.InvariantCulture, $"0x{cls:x6}\n"));
        return Bind(address, driver);
    }

    /// <summary>An NVIDIA GPU (and its HDMI audio function, class 0x040300, which is not a GPU) bound to <paramref name="driver"/>.</summary>
    public PciFixture Gpu(string address, string? driver) =>
        Device(address, driver).Device(address[..^1] + "1", driver is null ? null : "snd_hda_intel", cls: 0x040300);

    /// <summary>Rebinds a device (null: unbind), as <c>echo ... &gt; driver/unbind; ... &gt; bind</c> would.</summary>
    public PciFixture Bind(string address, string? driver)
    {
        var link = System.IO.Path.Combine(Dir(address), "driver");
        if (File.Exists(link) || Directory.Exists(link) || new FileInfo(link).LinkTarget is not null)
        {
            File.Delete(link);
        }

        if (driver is not null)
        {
            Directory.CreateDirectory(System.IO.Path.Combine(Root, "bus", "pci", "drivers", driver));
            File.CreateSymbolicLink(link, $"../../../bus/pci/drivers/{driver}");
        }

        return this;
    }

    /// <summary>Writes the three AER files the way the kernel does: one line per error name, then the TOTAL line.</summary>
    public PciFixture Aer(string address, ulong correctable, ulong nonfatal, ulong fatal)
    {
        var dir = Dir(address);
        Write(System.IO.Path.Combine(dir, "aer_dev_correctable"), ("RxErr", correctable), ("BadTLP", 0), ("TOTAL_ERR_COR", correctable));
        Write(System.IO.Path.Combine(dir, "aer_dev_nonfatal"), ("Undefined", 0), ("CmpltTO", nonfatal), ("TOTAL_ERR_NONFATAL", nonfatal));
        Write(System.IO.Path.Combine(dir, "aer_dev_fatal"), ("DLP", fatal), ("SDES", 0), ("TOTAL_ERR_FATAL", fatal));
        return this;

        static void Write(string path, params (string Name, ulong Count)[] lines)
        {
            var text = string.Concat(lines.Select(l => string.Create(CultureInfo.InvariantCulture, $"{l.Name} {l.Count}\n")));
            File.WriteAllText(path + ".tmp", text);
            File.Move(path + ".tmp", path, overwrite: true);
        }
    }

    /// <summary>Removes a device from the bus (it fell off).</summary>
    public PciFixture Remove(string address)
    {
        Directory.Delete(Dir(address), recursive: true);
        return this;
    }
}
