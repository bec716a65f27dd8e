using Prometheus;

namespace VastHostAgent.Metrics;

/// <summary>
/// A labelled gauge fed from snapshots: every label set written during one update survives it, every
/// other label set is removed at <see cref="Sweep"/>, so a vanished GPU, sensor or container loses its
/// series instead of going stale.
/// </summary>
internal sealed class TrackedGauge
{
    private readonly Gauge _gauge;
    private Dictionary<string, string[]> _previous = new(StringComparer.Ordinal);
    private Dictionary<string, string[]> _current = new(StringComparer.Ordinal);

    public TrackedGauge(IMetricFactory factory, string name, string help, params string[] labelNames)
    {
        _gauge = factory.CreateGauge(name, help, labelNames, new GaugeConfiguration { SuppressInitialValue = true });
    }

    public void Set(double value, params string[] labels)
    {
        _gauge.WithLabels(labels).Set(value);
        _current[Key(labels)] = labels;
    }

    public void Set(double? value, params string[] labels)
    {
        if (value is { } v)
        {
            Set(v, labels);
        }
    }

    public void Sweep()
    {
        foreach (var (key, labels) in _previous)
        {
            if (!_current.ContainsKey(key))
            {
                _gauge.RemoveLabelled(labels);
            }
        }

        (_previous, _current) = (_current, _previous);
        _current.Clear();
    }

    internal static string Key(string[] labels) => string.Join('\u001f', labels);
}

/// <summary>
/// A labelled counter that mirrors a monotonically increasing source value (NVML energy, ECC counts,
/// XID tallies). When the source resets (driver reload) the series restarts from the new value, which
/// Prometheus' rate() handles as a counter reset.
/// </summary>
internal sealed class TrackedCounter
{
    private readonly Counter _counter;
    private Dictionary<string, string[]> _previous = new(StringComparer.Ordinal);
    private Dictionary<string, string[]> _current = new(StringComparer.Ordinal);

    public TrackedCounter(IMetricFactory factory, string name, string help, params string[] labelNames)
    {
        _counter = factory.CreateCounter(name, help, labelNames, new CounterConfiguration { SuppressInitialValue = true });
    }

    public void Set(double? value, params string[] labels)
    {
        if (value is not { } v || double.IsNaN(v) || v < 0)
        {
            return;
        }

        var child = _counter.WithLabels(labels);
        if (v < child.Value)
        {
            _counter.RemoveLabelled(labels);
            child = _counter.WithLabels(labels);
        }

        child.IncTo(v);
        child.Publish();
        _current[TrackedGauge.Key(labels)] = labels;
    }

    public void Sweep()
    {
        foreach (var (key, labels) in _previous)
        {
            if (!_current.ContainsKey(key))
            {
                _counter.RemoveLabelled(labels);
            }
        }

        (_previous, _current) = (_current, _previous);
        _current.Clear();
    }
}
