using Prometheus;
using VastHostAgent.Kernel;

namespace VastHostAgent.Vast;

/// <summary>
/// Instruments of the Vast API client: requests by endpoint and status class, duration, rate limiting and
/// the circuit breaker. Bounded labels: the endpoint names of <see cref="VastEndpointInfo"/> only.
/// </summary>
public sealed class VastClientMetrics
{
    private readonly Counter _requests;
    private readonly Histogram _duration;
    private readonly Counter _rateLimited;
    private readonly Gauge _circuit;
    private readonly IAgentMetrics _metrics;
    private int _circuitState;

    public VastClientMetrics(IAgentMetrics metrics)
    {
        _metrics = metrics;
        var f = metrics.Factory;
        _requests = f.CreateCounter("vasthost_vast_requests_total", "Vast API requests by endpoint and outcome (2xx, 4xx, 5xx, timeout, transport_error).", ["endpoint", "status_class"]);
        _duration = f.CreateHistogram("vasthost_vast_request_duration_seconds", "Duration of Vast API requests (one attempt, spacing waits excluded).",
            ["endpoint"], new HistogramConfiguration { Buckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
        _rateLimited = f.CreateCounter("vasthost_vast_rate_limited_total", "Vast API answers 429 (too many requests) by endpoint.", ["endpoint"]);
        _circuit = f.CreateGauge("vasthost_vast_circuit_state", "Vast API circuit breaker: 0 closed (calls flow), 1 open (calls rejected), 2 half-open (probing).");
        _circuit.Set(0);
    }

    /// <summary>0 closed, 1 open, 2 half-open.</summary>
    public int CircuitState => Volatile.Read(ref _circuitState);

    public void Record(VastEndpointInfo endpoint, string statusClass, TimeSpan duration)
    {
        _requests.WithLabels(endpoint.Name, statusClass).Inc();
        _duration.WithLabels(endpoint.Name).Observe(duration.TotalSeconds);
        _metrics.Changed();
    }

    public void RateLimited(VastEndpointInfo endpoint)
    {
        _rateLimited.WithLabels(endpoint.Name).Inc();
        _metrics.Changed();
    }

    public void Circuit(int state)
    {
        Volatile.Write(ref _circuitState, state);
        _circuit.Set(state);
        _metrics.Changed();
    }
}
