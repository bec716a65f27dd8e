using System.Collections.Concurrent;
using System.Collections.Immutable;
using Microsoft.Extensions.Logging;

namespace VastHostAgent.Kernel;

/// <summary>One long-running loop of the agent as its supervisor last saw it.</summary>
/// <param name="Name">Bounded loop name: a sampler (<c>gpu</c>, <c>hwmon</c>, <c>disk</c>, <c>containers</c>, <c>vast</c>), <c>docker</c>, <c>management</c>, <c>xid</c>, <c>systemd</c>.</param>
/// <param name="Failures">Iterations that ended in an unexpected exception since the agent started.</param>
/// <param name="ConsecutiveFailures">Failures since the last iteration that completed.</param>
/// <param name="FailingSince">When the current run of failures began (null while healthy).</param>
/// <param name="LastProblem">The last unexpected exception, as type and message.</param>
public sealed record LoopStatus(string Name, long Failures, int ConsecutiveFailures, DateTimeOffset? FailingSince, string? LastProblem)
{
    /// <summary>Failures in a row after which a loop counts as failing (health, status line).</summary>
    public const int FailingAfter = 3;

    public bool Failing => ConsecutiveFailures >= FailingAfter;
}

/// <summary>
/// Supervises the agent's long-running loops (samplers, the Docker inventory, the Vast poller, management and
/// maintenance, the XID watcher, the systemd notifier): an iteration that throws anything but a cancellation at
/// shutdown never ends its loop or the daemon. It is logged once per distinct cause (with its stack trace, for a
/// bug report), counted (<c>vasthost_loop_failures_total</c>), backed off (1 s doubling to 5 min), and a loop that
/// keeps failing is reported by <c>/healthz</c>, the metrics and the systemd status line.
/// </summary>
public sealed partial class LoopHealth(SnapshotStore snapshots, TimeProvider time, ILogger<LoopHealth> logger)
{
    private static readonly TimeSpan BackoffMin = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan BackoffMax = TimeSpan.FromMinutes(5);
    private readonly ConcurrentDictionary<string, string?> _lastLogged = new(StringComparer.Ordinal);

    /// <summary>The loops as last seen.</summary>
    public ImmutableDictionary<string, LoopStatus> Loops => snapshots.Current.Loops;

    /// <summary>Records a completed iteration (a recovery is logged once).</summary>
    public void Succeeded(string loop)
    {
        var current = snapshots.Current.Loops.GetValueOrDefault(loop);
        if (current is { ConsecutiveFailures: 0 })
        {
            return;
        }

        if (current is { ConsecutiveFailures: > 0 })
        {
            Log.LoopRecovered(logger, loop, current.ConsecutiveFailures);
        }

        _lastLogged.TryRemove(loop, out _);
        snapshots.Update(s => s with
        {
            Loops = s.Loops.SetItem(loop, (s.Loops.GetValueOrDefault(loop) ?? new LoopStatus(loop, 0, 0, null, null)) with { ConsecutiveFailures = 0, FailingSince = null }),
        });
    }

    /// <summary>Records a failed iteration; logs it when its cause differs from the last one logged for this loop. Returns the back-off to wait.</summary>
    public TimeSpan Failed(string loop, Exception exception)
    {
        var problem = $"{exception.GetType().Name}: {exception.Message}";
        var now = time.GetUtcNow();
        LoopStatus? next = null;
        snapshots.Update(s =>
        {
            var before = s.Loops.GetValueOrDefault(loop) ?? new LoopStatus(loop, 0, 0, null, null);
            next = before with
            {
                Failures = before.Failures + 1,
                ConsecutiveFailures = before.ConsecutiveFailures + 1,
                FailingSince = before.FailingSince ?? now,
                LastProblem = problem,
            };
            return s with { Loops = s.Loops.SetItem(loop, next) };
        });

        if (_lastLogged.TryGetValue(loop, out var logged) ? logged != problem : true)
        {
            _lastLogged[loop] = problem;
            Log.LoopFailed(logger, exception, loop, problem);
        }

        var doublings = Math.Min(next!.ConsecutiveFailures - 1, 20);
        return TimeSpan.FromTicks(Math.Min(BackoffMax.Ticks, BackoffMin.Ticks << doublings));
    }

    /// <summary>
    /// Runs one iteration under supervision: true when it completed; false when it threw (recorded, then the
    /// back-off waited). A cancellation of <paramref name="stoppingToken"/> (shutdown) propagates.
    /// </summary>
    public async Task<bool> RunAsync(string loop, Func<CancellationToken, Task> iteration, CancellationToken stoppingToken)
    {
        try
        {
            await iteration(stoppingToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            await Task.Delay(Failed(loop, ex), time, stoppingToken).ConfigureAwait(false);
            return false;
        }

        Succeeded(loop);
        return true;
    }

    /// <summary>Loops that keep failing, in words (health and the systemd status line); empty when all are well.</summary>
    public static IEnumerable<string> Describe(HostSnapshot snapshot) =>
        snapshot.Loops.Values.Where(l => l.Failing).OrderBy(l => l.Name, StringComparer.Ordinal)
            .Select(l => $"loop {l.Name}: failing ({l.ConsecutiveFailures} in a row since {l.FailingSince:yyyy-MM-dd HH:mm:ss}Z): {l.LastProblem}");

    private static partial class Log
    {
        [LoggerMessage(140, LogLevel.Error, "Loop {Loop} failed unexpectedly ({Problem}); it backs off and goes on (logged once per distinct cause)")]
        public static partial void LoopFailed(ILogger logger, Exception exception, string loop, string problem);

        [LoggerMessage(141, LogLevel.Information, "Loop {Loop} running again after {Failures} failure(s)")]
        public static partial void LoopRecovered(ILogger logger, string loop, int failures);
    }
}
