using System.Globalization;

namespace VastHostAgent.Host;

/// <summary>Reads board sensors from sysfs hwmon.</summary>
public interface IHwmonReader
{
    /// <summary>Reads every temperature and fan input. Throws only when the hwmon class directory cannot be listed.</summary>
    IReadOnlyList<HwmonReading> Read();
}

/// <summary>
/// Reads <c>{sysfsRoot}/class/hwmon/hwmon*/</c>: <c>name</c>, <c>temp*_input</c> (millidegrees Celsius),
/// <c>fan*_input</c> (RPM) and their <c>*_label</c> files. Label values stay bounded: the chip is the driver
/// name (with an ordinal when several chips share it, e.g. two CPU sockets) and the sensor is the
/// driver's label or the input's base name.
/// </summary>
internal sealed class HwmonReader(string sysfsRoot) : IHwmonReader
{
    private readonly string _classDir = Path.Combine(sysfsRoot, "class", "hwmon");

    public IReadOnlyList<HwmonReading> Read()
    {
        if (!Directory.Exists(_classDir))
        {
            return [];
        }

        var chips = Directory.GetDirectories(_classDir, "hwmon*")
            .Select(dir => (Dir: dir, Number: ParseSuffix(Path.GetFileName(dir), "hwmon")))
            .Where(c => c.Number >= 0)
            .OrderBy(c => c.Number)
            .Select(c => (c.Dir, Name: Sanitize(ReadText(Path.Combine(c.Dir, "name")) ?? Path.GetFileName(c.Dir))))
            .ToList();

        var readings = new List<HwmonReading>();
        var nameTotals = chips.GroupBy(c => c.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var nameSeen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (dir, name) in chips)
        {
            var ordinal = nameSeen.GetValueOrDefault(name);
            nameSeen[name] = ordinal + 1;
            var chip = nameTotals[name] > 1 ? $"{name}_{ordinal}" : name;
            ReadInputs(dir, chip, "temp", SensorKind.Temperature, 1000.0, readings);
            ReadInputs(dir, chip, "fan", SensorKind.Fan, 1.0, readings);
        }

        return readings;
    }

    private static void ReadInputs(string dir, string chip, string prefix, SensorKind kind, double divisor, List<HwmonReading> into)
    {
        IEnumerable<string> files;
        try
        {
            files = Directory.EnumerateFiles(dir, prefix + "*_input");
        }
        catch (IOException)
        {
            return;
        }
        catch (UnauthorizedAccessException)
        {
            return;
        }

        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var file in files.Order(StringComparer.Ordinal))
        {
            var baseName = Path.GetFileName(file)[..^"_input".Length]; // temp1
            if (ParseSuffix(baseName, prefix) < 0)
            {
                continue;
            }

            var raw = ReadText(file);
            if (raw is null || !long.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
            {
                continue; // sensors that fail to read (EIO, ENODATA) are left out
            }

            var label = ReadText(Path.Combine(dir, baseName + "_label"));
            var sensor = string.IsNullOrWhiteSpace(label) ? baseName : Sanitize(label);
            if (!used.Add(sensor))
            {
                sensor = $"{sensor} ({baseName})";
                used.Add(sensor);
            }

            into.Add(new HwmonReading(chip, sensor, kind, value / divisor));
        }
    }

    private static int ParseSuffix(string name, string prefix) =>
        name.StartsWith(prefix, StringComparison.Ordinal)
        && int.TryParse(name.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : -1;

    private static string? ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string Sanitize(string value)
    {
        var trimmed = value.Trim();
        if (trimmed.Length > 64)
        {
            trimmed = trimmed[..64];
        }

        return string.Create(trimmed.Length, trimmed, static (span, s) =>
        {
            for (var i = 0; i < s.Length; i++)
            {
                span[i] = char.IsControl(s[i]) ? ' ' : s[i];
            }
        });
    }
}
