using Prometheus;
using VastHostAgent.Kernel;

namespace VastHostAgent.Metrics;

/// <summary>The agent's one Prometheus registry (no default process metrics) and its change counter.</summary>
public sealed class MetricsRegistry : IAgentMetrics
{
    private long _version;

    public CollectorRegistry Registry { get; } = Prometheus.Metrics.NewCustomRegistry();

    public IMetricFactory Factory => Prometheus.Metrics.WithCustomRegistry(Registry);

    /// <summary>Increases whenever something in the registry changed.</summary>
    public long Version => Interlocked.Read(ref _version);

    public void Changed() => Interlocked.Increment(ref _version);
}

/// <summary>A group of series written from each published snapshot (every series class has this shape).</summary>
internal interface ISnapshotSeries
{
    void Apply(HostSnapshot snapshot);
}

/// <summary>Creates the tracked families a series writes from snapshots, and sweeps them after every apply.</summary>
internal sealed class SeriesFactory(IMetricFactory factory)
{
    private readonly List<Action> _sweeps = [];

    public IMetricFactory Factory => factory;

    public TrackedGauge Gauge(string name, string help, params string[] labels)
    {
        var gauge = new TrackedGauge(factory, name, help, labels);
        _sweeps.Add(gauge.Sweep);
        return gauge;
    }

    public TrackedCounter Counter(string name, string help, params string[] labels)
    {
        var counter = new TrackedCounter(factory, name, help, labels);
        _sweeps.Add(counter.Sweep);
        return counter;
    }

    /// <summary>Removes every label set not written during the apply just finished.</summary>
    public void Sweep()
    {
        foreach (var sweep in _sweeps)
        {
            sweep();
        }
    }
}
