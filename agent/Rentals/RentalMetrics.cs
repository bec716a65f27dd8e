using Prometheus;
using VastHostAgent.Kernel;

namespace VastHostAgent.Rentals;

/// <summary>Instruments of the rental ledger. No instance label (unbounded over time): per-instance views come from the ledger itself.</summary>
public sealed class RentalMetrics
{
    /// <summary>Minutes to weeks: the lengths of Vast rentals.</summary>
    internal static readonly double[] DurationBuckets =
        [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 4 * 86400, 7 * 86400, 14 * 86400, 28 * 86400];

    private readonly IAgentMetrics _metrics;
    private readonly Counter _started;
    private readonly Gauge _running;
    private readonly Histogram _duration;
    private readonly Counter _gpuSeconds;
    private readonly Counter _damaged;
    private readonly Counter _writeErrors;

    public RentalMetrics(IAgentMetrics metrics)
    {
        _metrics = metrics;
        var f = metrics.Factory;
        _started = f.CreateCounter("vasthost_rentals_started_total", "Vast instance runs that began (new to the rental ledger, including those found after the agent was away).");
        _running = f.CreateGauge("vasthost_rentals_running", "Vast instance runs open in the rental ledger (containers C.<id> running).");
        _duration = f.CreateHistogram("vasthost_rental_duration_seconds", "Length of Vast instance runs that ended, from start to stop.",
            new HistogramConfiguration { Buckets = DurationBuckets });
        _gpuSeconds = f.CreateCounter("vasthost_rental_gpu_seconds_total", "GPU-seconds of Vast instance runs (GPUs × time), counted as they run.");
        _damaged = f.CreateCounter("vasthost_rental_ledger_damaged_lines_total", "Lines of rentals.jsonl found damaged (not JSON, incomplete, a partial last write) and skipped.");
        _writeErrors = f.CreateCounter("vasthost_rental_ledger_write_errors_total", "Appends to rentals.jsonl that failed (the records are kept and written again).");
    }

    public void Record(RentalStep step, int running)
    {
        _started.Inc(step.Started);
        foreach (var d in step.Ended)
        {
            _duration.Observe(d.TotalSeconds);
        }

        _gpuSeconds.Inc(step.GpuSeconds);
        _running.Set(running);
        _metrics.Changed();
    }

    public void Damaged(int lines)
    {
        _damaged.Inc(lines);
        _metrics.Changed();
    }

    public void WriteFailed()
    {
        _writeErrors.Inc();
        _metrics.Changed();
    }
}
