using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Vast;

namespace VastHostAgent.Management;

/// <summary>
/// What became of one mutation. One vocabulary for the journal (<c>result</c>), the metric
/// <c>vasthost_management_mutations_total{result}</c>, <c>plan</c>/<c>apply</c> output and logs.
/// </summary>
public enum MutationResult
{
    /// <summary>Sent, and Vast answered that it was done.</summary>
    Applied,

    /// <summary>Not sent: dry-run (decided and journaled only).</summary>
    DryRun,

    /// <summary>Not sent: the hourly mutation budget is used up.</summary>
    SkippedBudget,

    /// <summary>Not sent: a state file was found unusable; nothing changes until the agent has re-read Vast and re-established what it owns.</summary>
    HeldRecovery,

    /// <summary>Not sent: an earlier mutation's outcome is unknown; nothing changes until a read after the quarantine shows what Vast did.</summary>
    HeldQuarantine,

    /// <summary>Not sent: an earlier mutation of this cycle did not succeed; the next cycle decides again from a fresh read.</summary>
    HeldAfterFailure,

    /// <summary>Sent, no answer (timeout, dropped connection): may or may not have been applied. Never resent; quarantined.</summary>
    OutcomeUnknown,

    /// <summary>Refused with 429: nothing was done.</summary>
    RateLimited,

    /// <summary>Not sent: the client's circuit breaker is open after repeated failures.</summary>
    CircuitOpen,

    /// <summary>Vast refused it (4xx, or 200 with success false): nothing was done.</summary>
    Refused,

    /// <summary>Failed on the server or the network before it could have been applied (5xx, connection refused, unreadable answer).</summary>
    Failed,
}

/// <summary>Names of <see cref="MutationResult"/> as they appear in the journal, metrics and output (snake_case).</summary>
public static class MutationResults
{
    public static string Name(this MutationResult result) => result switch
    {
        MutationResult.Applied => "applied",
        MutationResult.DryRun => "dry_run",
        MutationResult.SkippedBudget => "skipped_budget",
        MutationResult.HeldRecovery => "held_recovery",
        MutationResult.HeldQuarantine => "held_quarantine",
        MutationResult.HeldAfterFailure => "held_after_failure",
        MutationResult.OutcomeUnknown => "outcome_unknown",
        MutationResult.RateLimited => "rate_limited",
        MutationResult.CircuitOpen => "circuit_open",
        MutationResult.Refused => "refused",
        _ => "failed",
    };

    /// <summary>Whether the call went out to Vast (the machine is re-read afterwards).</summary>
    public static bool Sent(this MutationResult result) =>
        result is MutationResult.Applied or MutationResult.OutcomeUnknown or MutationResult.RateLimited or MutationResult.Refused or MutationResult.Failed;
}

/// <summary>One mutation made (or not) in a cycle, with its result and the detail shown to the host.</summary>
public sealed record MutationRecord(PlannedMutation Mutation, MutationResult Result, string Detail);

/// <summary>
/// The mutations of one machine in one reconcile: begun after a fresh machine read, it carries the hold (a
/// recovery, a quarantine, or a failure earlier in the cycle), the results and the back-off the next cycle needs.
/// </summary>
public sealed class MutationCycle
{
    private readonly List<MutationRecord> _results = [];

    internal MutationCycle(long machineId, DateTimeOffset machineReadAt, bool dryRun)
    {
        MachineId = machineId;
        MachineReadAt = machineReadAt;
        DryRun = dryRun;
    }

    public long MachineId { get; }

    /// <summary>When the machine was read: the decisions of this cycle are based on that read.</summary>
    public DateTimeOffset MachineReadAt { get; }

    public bool DryRun { get; }

    /// <summary>Why nothing is sent this cycle (after <see cref="Hold"/>), or null.</summary>
    public (MutationResult Result, string Why)? Held { get; private set; }

    public IReadOnlyList<MutationRecord> Results => _results;

    /// <summary>When the next cycle should come at the earliest (429 back-off), or at the latest (end of a quarantine).</summary>
    public TimeSpan? BackOff { get; internal set; }

    /// <summary>Whether a call went out (the machine is re-read after the cycle).</summary>
    public bool Sent => _results.Any(r => r.Result.Sent());

    /// <summary>Holds every further mutation of this cycle (the first reason wins).</summary>
    public void Hold(MutationResult result, string why) => Held ??= (result, why);

    internal void Add(MutationRecord record) => _results.Add(record);
}

/// <summary>
/// The one way the agent changes anything on Vast. Listing, min bid, default job, maintenance (dnotify,
/// cancel_maint), cleanup and the fault guard's unlist all go through <see cref="ExecuteAsync"/>:
/// hold check → hourly budget → write-ahead note → the call → classify → journal → metrics. A mutation is never
/// resent: after a failure the cycle ends and the next one decides from a fresh read; after an unknown outcome
/// the machine is quarantined until a read taken <see cref="Quarantine"/> later shows what Vast did (a slow server
/// can apply a call long after the client gave up on it). Nothing else calls a mutating method of
/// <see cref="IVastClient"/> (a test scans the sources).
/// </summary>
public sealed class MutationPath(
    IVastClient client,
    ManagementStateStore store,
    DecisionJournal journal,
    ManagementMetrics metrics,
    IOptions<ManagementOptions> options,
    IOptions<VastOptions> vast,
    TimeProvider time,
    ILogger<MutationPath> logger)
{
    /// <summary>How long a machine stays quarantined after an unknown outcome: the configured time, and at least three request timeouts.</summary>
    public TimeSpan Quarantine => TimeSpan.FromTicks(Math.Max(options.Value.UnknownOutcomeQuarantine.Ticks, vast.Value.RequestTimeout.Ticks * 3));

    /// <summary>
    /// Begins a machine's cycle right after a fresh read of it. A write-ahead note left by a stop mid-call becomes an
    /// unknown outcome; a quarantine whose time has passed is lifted (this read shows what happened), otherwise
    /// the cycle is held.
    /// </summary>
    /// <param name="machineId">The machine.</param>
    /// <param name="machineReadAt">When the machine was read (a quarantine is lifted by a read at or after its end).</param>
    /// <param name="dryRun">Whether the cycle only decides and journals.</param>
    /// <param name="persist">False for <c>plan</c>: nothing is written.</param>
    /// <param name="listed">Whether that read shows the machine listed (null: not known).</param>
    public MutationCycle Begin(long machineId, DateTimeOffset machineReadAt, bool dryRun, bool persist, bool? listed = null)
    {
        var cycle = new MutationCycle(machineId, machineReadAt, dryRun);
        var state = store.Load();
        var unknown = state.Unknown;
        if (state.Pending is { } pending)
        {
            unknown = new UnknownOutcome(pending.At, pending.Endpoint, pending.Summary, pending.At + Quarantine);
            if (persist)
            {
                ManagementLog.ResumingAfterInterruptedMutation(logger, pending.Endpoint, pending.Summary, pending.At);
                journal.Write([JournalEntries.Mutation(time.GetUtcNow(), machineId, pending.Endpoint, MutationResult.OutcomeUnknown, dryRun,
                    $"{pending.Summary}: sent at {Stamp(pending.At)}, the agent stopped before the answer; no change until a read at or after {Stamp(unknown.Until)} shows what Vast did")]);
                store.Update(s => s with { Pending = null, Unknown = unknown });
            }
        }

        if (unknown is not null)
        {
            if (machineReadAt >= unknown.Until)
            {
                if (persist)
                {
                    journal.Write([JournalEntries.Entry(time.GetUtcNow(), "mutation", "recover", "re_read_after_unknown_outcome", dryRun,
                        $"{unknown.Summary}: no answer at {Stamp(unknown.At)}; the machine read at {Stamp(machineReadAt)}, after the quarantine, is what Vast applied: decisions start from it",
                        result: "re_read", machineId: machineId, endpoint: unknown.Endpoint)]);
                    // An unlist whose answer was lost and which Vast did apply is the agent's own unlist, as if it had
                    // been answered: remembered, so the agent relists once the reason is gone (else the machine stays off
                    // the market for good after a crash or a timeout mid-unlist).
                    var unlistedByAgent = unknown.Endpoint == VastEndpointInfo.Of(VastEndpoint.Unlist).Name && listed == false;
                    store.Update(s => s with
                    {
                        Unknown = null,
                        UnlistedByAgentReason = unlistedByAgent ? s.UnlistedByAgentReason ?? UnlistReason(unknown.Summary) : s.UnlistedByAgentReason,
                    });
                }
            }
            else
            {
                cycle.Hold(MutationResult.HeldQuarantine,
                    $"the outcome of {unknown.Summary} (sent {Stamp(unknown.At)}) is unknown: no change before a read at or after {Stamp(unknown.Until)}");
                cycle.BackOff = unknown.Until - time.GetUtcNow() + TimeSpan.FromSeconds(1);
            }
        }

        return cycle;
    }

    /// <summary>
    /// Makes (or, held / in dry-run / over budget, records without making) one mutation of the cycle's machine.
    /// <paramref name="onApplied"/> updates the management state in the same write that clears the write-ahead note.
    /// </summary>
    public async Task<MutationResult> ExecuteAsync(MutationCycle cycle, PlannedMutation mutation, CancellationToken cancellationToken,
        Func<ManagementState, DateTimeOffset, ManagementState>? onApplied = null)
    {
        var now = time.GetUtcNow();
        var endpoint = VastEndpointInfo.Of(mutation.Endpoint).Name;
        if (cycle.DryRun)
        {
            ManagementLog.DryRunWouldCall(logger, mutation.Summary);
            return Record(cycle, mutation, MutationResult.DryRun, mutation.Summary, now);
        }

        if (cycle.Held is { } held)
        {
            return Record(cycle, mutation, held.Result, $"{mutation.Summary}: not sent: {held.Why}", now);
        }

        var budget = options.Value.MutationBudgetPerHour;
        var recent = store.Load().Mutations.Where(t => now - t < TimeSpan.FromHours(1)).ToList();
        if (recent.Count >= budget)
        {
            return Record(cycle, mutation, MutationResult.SkippedBudget, $"{mutation.Summary}: mutation budget of {budget}/hour used up", now);
        }

        // Write-ahead: a stop while this call is in flight makes the next start treat it as an unknown outcome.
        store.Update(s => s with { Pending = new PendingMutation(now, endpoint, mutation.Summary), Mutations = [.. recent, now] });
        try
        {
            await CallAsync(cycle.MachineId, mutation, cancellationToken).ConfigureAwait(false);
        }
        catch (VastApiException ex)
        {
            var result = ex.Failure switch
            {
                VastFailure.OutcomeUnknown => MutationResult.OutcomeUnknown,
                VastFailure.RateLimited => MutationResult.RateLimited,
                VastFailure.CircuitOpen => MutationResult.CircuitOpen,
                VastFailure.Business or VastFailure.Rejected or VastFailure.Authentication => MutationResult.Refused,
                _ => MutationResult.Failed,
            };
            if (result == MutationResult.OutcomeUnknown)
            {
                var until = now + Quarantine;
                store.Update(s => s with { Pending = null, Unknown = new UnknownOutcome(now, endpoint, mutation.Summary, until) });
                cycle.BackOff = until - now + TimeSpan.FromSeconds(1);
                ManagementLog.OutcomeUnknown(logger, endpoint, ex.Message, until);
            }
            else
            {
                store.Update(s => s with { Pending = null });
                cycle.BackOff = ex.RetryAfter ?? cycle.BackOff;
                ManagementLog.MutationFailed(logger, endpoint, ex.Message);
            }

            cycle.Hold(MutationResult.HeldAfterFailure, $"{endpoint} {result.Name()} earlier in this cycle; the next cycle decides from a fresh read");
            return Record(cycle, mutation, result, $"{mutation.Summary}: {ex.Message}", now);
        }

        store.Update(s => onApplied is null ? s with { Pending = null } : onApplied(s with { Pending = null }, now));
        ManagementLog.Applied(logger, mutation.Summary);
        return Record(cycle, mutation, MutationResult.Applied, mutation.Summary, now);
    }

    /// <summary>The only place a mutating method of the client is called.</summary>
    private Task<VastResult> CallAsync(long id, PlannedMutation mutation, CancellationToken cancellationToken) => mutation.Endpoint switch
    {
        VastEndpoint.CreateAsks => client.ListMachineAsync(mutation.Listing!, cancellationToken),
        VastEndpoint.MinBid => client.SetMinBidAsync(id, mutation.MinBid!.Value, cancellationToken),
        VastEndpoint.CreateBids => client.SetDefaultJobAsync(mutation.DefaultJob!, cancellationToken),
        VastEndpoint.RemoveDefaultJob => client.RemoveDefaultJobAsync(id, cancellationToken),
        VastEndpoint.Unlist => client.UnlistMachineAsync(id, cancellationToken),
        VastEndpoint.ScheduleMaintenance => client.ScheduleMaintenanceAsync(id, mutation.Window!.Start, mutation.Window.Duration, mutation.Window.Category, cancellationToken),
        VastEndpoint.CancelMaintenance => client.CancelMaintenanceAsync(id, cancellationToken),
        VastEndpoint.Cleanup => client.CleanupAsync(id, cancellationToken),
        _ => throw new InvalidOperationException($"unexpected mutation {mutation.Endpoint}"),
    };

    private MutationResult Record(MutationCycle cycle, PlannedMutation mutation, MutationResult result, string detail, DateTimeOffset now)
    {
        cycle.Add(new MutationRecord(mutation, result, detail));
        metrics.Mutation(mutation.Endpoint, result.Name());
        journal.Write([JournalEntries.Mutation(now, cycle.MachineId, VastEndpointInfo.Of(mutation.Endpoint).Name, result, cycle.DryRun, detail)]);
        return result;
    }

    /// <summary>The reason of an unlist from its summary ("unlist: " + reason, see <see cref="ListingPlanner"/>).</summary>
    private static string UnlistReason(string summary) => summary.StartsWith("unlist: ", StringComparison.Ordinal) ? summary["unlist: ".Length..] : summary;

    private static string Stamp(DateTimeOffset at) => at.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
