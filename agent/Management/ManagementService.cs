using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace VastHostAgent.Management;

/// <summary>
/// Reconciles the listing every <c>management.reconcileInterval</c> ± jitter (a fleet of agents on one
/// account shares the API's per-key limits, so they must not all call at the same second). A 429 or an
/// open circuit delays the next cycle by at least the back-off; it never repeats work.
/// </summary>
internal sealed class ManagementService(Reconciler reconciler, DecisionJournal journal, IOptions<ManagementOptions> options, TimeProvider time, ILogger<ManagementService> logger)
    : BackgroundService
{
    /// <summary>How long a reconcile in flight (a Vast mutation) may finish after SIGTERM before it is abandoned.</summary>
    public static readonly TimeSpan ShutdownGrace = TimeSpan.FromSeconds(10);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (o.DryRun)
        {
            ManagementLog.DryRunMode(logger);
        }

        ManagementLog.Live(logger, o.ReconcileInterval, o.Jitter, journal.Path);

        // A reconcile is not cut off by SIGTERM: a mutation in flight gets ShutdownGrace to finish (its answer
        // recorded, the write-ahead note cleared). Past that it is abandoned: the note makes the next start re-read.
        using var reconcileCts = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
        var inFlight = false;
        using var onStop = stoppingToken.Register(() =>
        {
            if (Volatile.Read(ref inFlight))
            {
                ManagementLog.StoppingDuringReconcile(logger, ShutdownGrace);
            }

            reconcileCts.CancelAfter(ShutdownGrace);
        });

        var delay = TimeSpan.FromSeconds(Random.Shared.NextDouble() * Math.Min(60, o.ReconcileInterval.TotalSeconds * o.Jitter));
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(delay, time, stoppingToken).ConfigureAwait(false);
                Volatile.Write(ref inFlight, true);
                ReconcileReport report;
                try
                {
                    report = await reconciler.RunAsync(apply: true, dryRun: o.DryRun, reconcileCts.Token).ConfigureAwait(false);
                }
                finally
                {
                    Volatile.Write(ref inFlight, false);
                }

                var jitter = o.ReconcileInterval.TotalSeconds * o.Jitter * ((Random.Shared.NextDouble() * 2) - 1);
                delay = TimeSpan.FromSeconds(o.ReconcileInterval.TotalSeconds + jitter);
                if (report.BackOff is { } backOff && backOff > delay)
                {
                    delay = backOff;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or System.Text.Json.JsonException)
            {
                // A full disk or an unreadable state file must not stop the daemon (metrics keep flowing).
                ManagementLog.ReconcileCrashed(logger, ex.GetType().Name, ex.Message);
                delay = o.ReconcileInterval;
            }
        }
    }
}
