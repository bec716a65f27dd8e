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
