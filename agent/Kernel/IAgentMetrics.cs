using Prometheus;

namespace VastHostAgent.Kernel;

/// <summary>
/// Where a feature creates the instruments it owns (its request counters, decision counters and the like):
/// the agent's one registry, rendered at <c>/metrics</c>. Snapshot data is not written here but by the
/// metrics feature's series from the published snapshot.
/// </summary>
public interface IAgentMetrics
{
    /// <summary>Creates instruments in the agent's registry (prefix <c>vasthost_</c>, bounded labels, documented in docs/metrics.md).</summary>
    IMetricFactory Factory { get; }

    /// <summary>Says an instrument changed, so the next scrape renders again instead of serving the cached text.</summary>
    void Changed();
}
