using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;
using VastHostAgent.Vast;

namespace VastHostAgent.Management;

/// <summary>
/// Reconciles the listing every <c>management.reconcileInterval</c> ± jitter (a fleet of agents on one
/// account shares the API's per-key limits, so they must not all call at the same second). A 429 or an
/// open circuit delays the next cycle by at least the back-off; it never repeats work.
/// </summary>
/// <remarks>
/// Registered with every service graph (AddManagement registers what the feature needs); with management off it
/// returns at once, and the reconciler, the maintenance coordinator and their instruments are never created.
/// </remarks>
internal sealed class ManagementService(IServiceProvider services, LoopHealth loops, IOptions<ManagementOptions> options, IOptions<VastOptions> vast, TimeProvider time, ILogger<ManagementService> logger)
    : BackgroundService
{
    /// <summary>The loop's name for supervision, metrics and health.</summary>
    public const string LoopName = "management";

    /// <summary>How long a reconcile in flight (a Vast mutation) may finish after SIGTERM before it is abandoned.</summary>
    public static readonly TimeSpan ShutdownGrace = TimeSpan.FromSeconds(10);

    private bool _inFlight;

    /// <summary>A reconcile cycle is running (tests on a simulated clock wait for it instead of moving time on).</summary>
    public bool Reconciling => Volatile.Read(ref _inFlight);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (!o.Enabled || !vast.Value.Enabled)
        {
            return; // management.enabled (with vast.enabled) is false: the agent only reads
        }

        var reconciler = services.GetRequiredService<IReconcileDriver>();
        var journal = services.GetRequiredService<DecisionJournal>();
        services.GetRequiredService<ManagementMetrics>().Mode(o.DryRun);

        if (o.DryRun)
        {
            ManagementLog.DryRunMode(logger);
        }

        ManagementLog.Live(logger, o.ReconcileInterval, o.Jitter, journal.Path);

        // A reconcile is not cut off by SIGTERM: a mutation in flight gets ShutdownGrace to finish (its answer
        // recorded, the write-ahead note cleared). Past that it is abandoned: the note makes the next start treat
        // it as an unknown outcome.
        using var reconcileCts = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
        using var onStop = stoppingToken.Register(() =>
        {
            if (Volatile.Read(ref _inFlight))
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
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }

            // Any exception but the shutdown's cancellation is logged once per cause, counted and reported by
            // /healthz; the loop goes on at its normal interval (never faster: every reconcile reads the machine).
            IReadOnlyList<ReconcileReport> reports = [];
            var ok = false;
            Volatile.Write(ref _inFlight, true);
            try
            {
                ok = await loops.RunAsync(LoopName, async _ => reports = await reconciler.RunCycleAsync(apply: true, dryRun: o.DryRun, reconcileCts.Token).ConfigureAwait(false), stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            finally
            {
                Volatile.Write(ref _inFlight, false);
            }

            var jitter = o.ReconcileInterval.TotalSeconds * o.Jitter * ((Random.Shared.NextDouble() * 2) - 1);
            delay = TimeSpan.FromSeconds(o.ReconcileInterval.TotalSeconds + jitter);
            if (ok && reports.Where(r => r.BackOff > TimeSpan.Zero).MaxBy(r => r.BackOff) is { BackOff: { } backOff } report)
            {
                // A 429 back-off pushes the next cycle out; the end of a quarantine is worth a read as soon as it passes.
                delay = report.Results.Any(r => r.Result == MutationResult.HeldQuarantine || r.Result == MutationResult.OutcomeUnknown)
                    ? TimeSpan.FromTicks(Math.Min(delay.Ticks, backOff.Ticks))
                    : TimeSpan.FromTicks(Math.Max(delay.Ticks, backOff.Ticks));
            }
        }
    }
}
