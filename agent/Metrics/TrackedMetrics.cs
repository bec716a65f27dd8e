using Prometheus;

namespace VastHostAgent.Metrics;

/// <summary>
/// Label sets written during one snapshot update. Every label set written survives the update; every
/// other label set is removed at <see cref="Sweep"/>, so a vanished GPU, sensor or container loses its
/// series instead of going stale.
/// </summary>
internal abstract class TrackedFamily
{
    private Dictionary<string, string[]> _previous = new(StringComparer.Ordinal);
    private Dictionary<string, string[]> _current = new(StringComparer.Ordinal);

    public void Sweep()
    {
        foreach (var (key, labels) in _previous)
        {
            if (!_current.ContainsKey(key))
            {
                Remove(labels);
            }
        }

        (_previous, _current) = (_current, _previous);
        _current.Clear();
    }

    protected void Track(string[] labels) => _current[string.Join('\u001f', labels)] = labels;

    protected abstract void Remove(string[] labels);
}

/// <summary>A labelled gauge fed from snapshots.</summary>
internal sealed class TrackedGauge : TrackedFamily
{
    private readonly Gauge _gauge;

    public TrackedGauge(IMetricFactory factory, string name, string help, params string[] labelNames)
    {
        _gauge = factory.CreateGauge(name, help, labelNames, new GaugeConfiguration { SuppressInitialValue = true });
    }

    public void Set(double value, params string[] labels)
    {
        _gauge.WithLabels(labels).Set(value);
        Track(labels);
    }

    public void Set(double? value, params string[] labels)
    {
        if (value is { } v)
        {
            Set(v, labels);
        }
    }

    protected override void Remove(string[] labels) => _gauge.RemoveLabelled(labels);
}

/// <summary>
/// A labelled counter that mirrors a monotonically increasing source value (NVML energy, ECC counts,
/// XID tallies). When the source resets (driver reload) the series restarts from the new value, which
/// Prometheus' rate() handles as a counter reset.
/// </summary>
internal sealed class TrackedCounter : TrackedFamily
{
    private readonly Counter _counter;

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
        Track(labels);
    }

    protected override void Remove(string[] labels) => _counter.RemoveLabelled(labels);
}
