using System.Globalization;
using System.Text;

namespace VastHostAgent.Tests.Support;

/// <summary>One sample of the Prometheus text format.</summary>
public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public string Label(string name) => Labels.TryGetValue(name, out var v) ? v : "";

    public override string ToString() =>
        $"{Name}{{{string.Join(",", Labels.Select(l => $"{l.Key}=\"{l.Value}\""))}}} {Value.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>A parsed exposition: families (HELP/TYPE) and samples, with lookups for assertions.</summary>
public sealed class Exposition
{
    private Exposition(string text, List<Sample> samples, Dictionary<string, string> types)
    {
        Text = text;
        Samples = samples;
        Types = types;
    }

    public string Text { get; }

    public IReadOnlyList<Sample> Samples { get; }

    /// <summary>Family name → type, from <c># TYPE</c> lines.</summary>
    public IReadOnlyDictionary<string, string> Types { get; }

    /// <summary>For failure messages: the agent's own series, shortened.</summary>
    public override string ToString()
    {
        var lines = Text.Split('\n').Where(l => l.StartsWith("vasthost_", StringComparison.Ordinal) && !l.StartsWith("vasthost_gpu_", StringComparison.Ordinal)).ToList();
        var text = string.Join('\n', lines);
        return "\n" + (text.Length > 6000 ? text[..6000] + "\n…" : text);
    }

    public IEnumerable<Sample> Named(string name) => Samples.Where(s => s.Name == name);

    /// <summary>The samples of <paramref name="name"/> whose labels include every pair given.</summary>
    public IEnumerable<Sample> Where(string name, params (string Label, string Value)[] labels) =>
        Named(name).Where(s => labels.All(l => s.Label(l.Label) == l.Value));

    /// <summary>The single value of <paramref name="name"/> matching the labels, or null when absent.</summary>
    public double? Value(string name, params (string Label, string Value)[] labels)
    {
        var matches = Where(name, labels).ToList();
        return matches.Count switch
        {
            0 => null,
            1 => matches[0].Value,
            _ => throw new InvalidOperationException($"{matches.Count} samples of {name} match {string.Join(",", labels)}"),
        };
    }

    public static Exposition Parse(string text)
    {
        var samples = new List<Sample>();
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ', 4);
                types[parts[2]] = parts[3];
                continue;
            }

            if (line[0] == '#')
            {
                continue;
            }

            samples.Add(ParseSample(line));
        }

        return new Exposition(text, samples, types);
    }

    private static Sample ParseSample(string line)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        var i = 0;
        while (i < line.Length && line[i] != '{' && line[i] != ' ')
        {
            i++;
        }

        var name = line[..i];
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                var eq = line.IndexOf('=', i);
                var key = line[i..eq].Trim(',', ' ');
                i = eq + 2; // skip ="
                var value = new StringBuilder();
                while (line[i] != '"')
                {
                    if (line[i] == '\\')
                    {
                        i++;
                        value.Append(line[i] switch { 'n' => '\n', _ => line[i] });
                    }
                    else
                    {
                        value.Append(line[i]);
                    }

                    i++;
                }

                labels[key] = value.ToString();
                i++; // closing quote
                if (line[i] == ',')
                {
                    i++;
                }
            }

            i++; // }
        }

        var valueText = line[i..].Trim().Split(' ')[0];
        var parsed = valueText switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            _ => double.Parse(valueText, NumberStyles.Float, CultureInfo.InvariantCulture),
        };
        return new Sample(name, labels, parsed);
    }
}
