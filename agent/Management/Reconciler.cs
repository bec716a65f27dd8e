using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Hosting;
using VastHostAgent.Vast;

namespace VastHostAgent.Management;

/// <summary>The outcome of one reconcile.</summary>
public sealed record ReconcileReport(
    DateTimeOffset At,
    bool DryRun,
    long? MachineId,
    string? Problem,
    ReconcilePlan? Plan,
    IReadOnlyList<(PlannedMutation Mutation, string Result)> Results,
    TimeSpan? BackOff);

/// <summary>
/// One reconcile: read the machine → decide (price, listing, min bid, default job) → journal → apply the
/// planned mutations one by one (unless dry-run) → re-read. Never repeats a mutation because an answer
/// was lost: after any mutation or failure the cycle ends and the next decision starts from a fresh read.
/// A write-ahead note in the state file marks a mutation in flight, so a restart re-reads instead of resending.
/// </summary>
public sealed partial class Reconciler(
    IVastClient client,
    VastMachineLocator locator,
    MarketData marketData,
    ManagementStateStore store,
    DecisionJournal journal,
    ManagementMetrics metrics,
    SnapshotStore snapshots,
    IOptions<ManagementOptions> options,
    TimeProvider time,
    ILogger<Reconciler> logger,
    IListingConstraintSource? maintenance = null) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private MarketSnapshot? _market;
    private string? _marketProblem;

    public void Dispose() => _gate.Dispose();

    /// <summary>The last market snapshot (for plan output and metrics).</summary>
    public MarketSnapshot? Market => _market;

    /// <summary>Runs one reconcile. With <paramref name="apply"/> false (plan) nothing is changed and nothing is journaled.</summary>
    public async Task<ReconcileReport> RunAsync(bool apply, bool dryRun, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await RunLockedAsync(apply, dryRun, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<ReconcileReport> RunLockedAsync(bool apply, bool dryRun, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var now = time.GetUtcNow();
        VastMachine machine;
        long id;
        try
        {
            var identity = await locator.IdentifyAsync(cancellationToken).ConfigureAwait(false);
            if (!identity.Identified)
            {
                return Problem(now, dryRun, null, identity.Problem!, apply);
            }

            id = identity.MachineId!.Value;
            machine = await client.GetMachineAsync(id, cancellationToken).ConfigureAwait(false);
            Publish(machine, id);
        }
        catch (VastApiException ex)
        {
            return Problem(now, dryRun, null, ex.Message, apply, ex.RetryAfter);
        }

        var state = Track(store.Load(), machine, id, now, o);
        if (apply)
        {
            if (state.Pending is { } pending)
            {
                ManagementLog.ResumingAfterInterruptedMutation(logger, pending.Endpoint, pending.Summary, pending.At);
                journal.Write([Entry(now, "mutation", "recover", "re_read_after_interruption", dryRun,
                    $"a {pending.Endpoint} sent at {pending.At:u} got no answer before the agent stopped; the machine was re-read and is reconciled from what Vast shows", result: "re_read")]);
                state = state with { Pending = null };
            }

            state = store.Update(_ => state);
        }

        var constraints = maintenance is null
            ? ListingConstraints.None
            : await maintenance.StepAsync(machine, snapshots.Current, apply, dryRun, cancellationToken).ConfigureAwait(false);
        if (apply && !dryRun)
        {
            state = store.Load(); // maintenance may have noted that the agent holds the listing
        }

        if (o.Pricing.Strategy == "market" && (_market is null || now - _market.FetchedAt >= o.Pricing.Market.RefreshInterval))
        {
            try
            {
                var (market, hostId) = await marketData.FetchAsync(machine, state.HostId, o.Pricing.Market, now, cancellationToken).ConfigureAwait(false);
                _market = market;
                _marketProblem = null;
                if (apply && hostId != state.HostId)
                {
                    state = store.Update(s => s with { HostId = hostId });
                }
            }
            catch (VastApiException ex)
            {
                _marketProblem = ex.Message; // the last snapshot (if any) ages; the engine holds once it is stale
            }
        }

        var occupancy = machine.OccupancyCounts();
        var rented = occupancy["on_demand"] + occupancy["interruptible"] + occupancy["reserved"];
        var input = new PricingInput(
            machine.ListedGpuCost,
            (int)(machine.NumGpus ?? 0),
            rented,
            now - (state.LastBusyAt ?? state.FirstSeenAt ?? now),
            state.BusySince is { } since ? now - since : TimeSpan.Zero,
            state.LastPriceChangeAt,
            now,
            o.Pricing.Strategy == "market" ? _market : null);
        var price = PricingEngine.Decide(input, o.Pricing);
        if (price.Reason is "market_missing" && _marketProblem is not null)
        {
            price = price with { Explanation = price.Explanation + " (" + _marketProblem + ")" };
        }

        var plan = ListingPlanner.Plan(machine, price, o, state, _market, now, constraints);
        var results = new List<(PlannedMutation, string)>(constraints.Calls);
        TimeSpan? backOff = null;
        if (apply)
        {
            var entries = plan.Items.Select(i => Entry(now, i.Field, i.Action, i.Reason, dryRun, i.Explanation, i.Current, i.Desired,
                rule: i.Field == "gpu price" ? price.Rule : null,
                inputs: i.Field == "gpu price" ? Inputs(price, machine, rented, input.IdleFor, _market) : null)).ToList();
            journal.Write(entries);
            foreach (var item in plan.Items)
            {
                metrics.Decision(item.Field, item.Action, item.Reason);
            }

            if (dryRun)
            {
                foreach (var mutation in plan.Mutations)
                {
                    results.Add((mutation, "dry_run"));
                    metrics.Mutation(mutation.Endpoint, "dry_run");
                    ManagementLog.DryRunWouldCall(logger, mutation.Summary);
                }

                journal.Write(plan.Mutations.Select(m => Entry(now, "mutation", "skip", "dry_run", true, m.Summary, result: "dry_run")));
            }
            else
            {
                backOff = await ApplyAsync(plan, price, results, cancellationToken).ConfigureAwait(false);
            }
        }

        metrics.Reconciled(now, dryRun, price, plan.Machine, _market, store.Load().Mutations.Count(t => now - t < TimeSpan.FromHours(1)), o.MutationBudgetPerHour);
        return new ReconcileReport(now, dryRun, id, null, plan, results, backOff);
    }

    private async Task<TimeSpan?> ApplyAsync(ReconcilePlan plan, PriceDecision price, List<(PlannedMutation, string)> results, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var id = plan.Machine.EffectiveId;
        TimeSpan? backOff = null;
        var attempted = false;
        foreach (var mutation in plan.Mutations)
        {
            var now = time.GetUtcNow();
            var state = store.Load();
            var recent = state.Mutations.Where(t => now - t < TimeSpan.FromHours(1)).ToList();
            if (recent.Count >= o.MutationBudgetPerHour)
            {
                Record(mutation, "skipped_budget", $"mutation budget of {o.MutationBudgetPerHour}/hour used up", results, now);
                continue;
            }

            // Write-ahead: a restart while this call is in flight re-reads instead of resending.
            store.Update(s => s with { Pending = new PendingMutation(now, VastEndpointInfo.Of(mutation.Endpoint).Name, mutation.Summary), Mutations = [.. recent, now] });
            attempted = true;
            string result;
            try
            {
                await CallAsync(id, mutation, cancellationToken).ConfigureAwait(false);
                result = "applied";
                store.Update(s => s with
                {
                    Pending = null,
                    LastApplied = mutation.Listing is { } l ? new AppliedListing(now, l.PriceGpu, l.PriceMinBid, l.EndDate, price.Explanation) : s.LastApplied,
                    LastPriceChangeAt = mutation.Listing is not null && price.Action == PriceAction.Change ? now : s.LastPriceChangeAt,
                    UnlistedByAgentReason = mutation.Endpoint switch
                    {
                        VastEndpoint.CreateAsks => null,
                        VastEndpoint.Unlist => mutation.UnlistReason,
                        _ => s.UnlistedByAgentReason,
                    },
                });
                Record(mutation, result, mutation.Summary, results, now);
            }
            catch (VastApiException ex)
            {
                result = ex.Failure switch
                {
                    VastFailure.OutcomeUnknown => "outcome_unknown",
                    VastFailure.RateLimited => "rate_limited",
                    VastFailure.CircuitOpen => "circuit_open",
                    _ => "failed",
                };
                store.Update(s => s with { Pending = null });
                backOff = ex.RetryAfter;
                Record(mutation, result, ex.Message, results, now);
                ManagementLog.MutationFailed(logger, VastEndpointInfo.Of(mutation.Endpoint).Name, ex.Message);
                break; // re-read before deciding anything else
            }
        }

        if (attempted)
        {
            try
            {
                // Re-read so the metrics show what Vast now has; the next cycle decides from a fresh read too.
                Publish(await client.GetMachineAsync(id, cancellationToken).ConfigureAwait(false), id);
            }
            catch (VastApiException)
            {
                // the next cycle reads again
            }
        }

        return backOff;
    }

    /// <summary>Shares a fresh machine read with the snapshot (metrics; the poller then skips its own read).</summary>
    private void Publish(VastMachine machine, long id)
    {
        var at = time.GetUtcNow();
        snapshots.Update(s => s with
        {
            Vast = (s.Vast ?? new VastState()) with { Up = true, Problem = null, IdentificationProblem = null, MachineId = id, Machine = machine, MachineReadAt = at },
        });
    }

    private Task<VastResult> CallAsync(long id, PlannedMutation mutation, CancellationToken cancellationToken) => mutation.Endpoint switch
    {
        VastEndpoint.CreateAsks => client.ListMachineAsync(mutation.Listing!, cancellationToken),
        VastEndpoint.MinBid => client.SetMinBidAsync(id, mutation.MinBid!.Value, cancellationToken),
        VastEndpoint.CreateBids => client.SetDefaultJobAsync(mutation.DefaultJob!, cancellationToken),
        VastEndpoint.RemoveDefaultJob => client.RemoveDefaultJobAsync(id, cancellationToken),
        VastEndpoint.Unlist => client.UnlistMachineAsync(id, cancellationToken),
        _ => throw new InvalidOperationException($"unexpected mutation {mutation.Endpoint}"),
    };

    private void Record(PlannedMutation mutation, string result, string detail, List<(PlannedMutation, string)> results, DateTimeOffset now)
    {
        results.Add((mutation, result));
        metrics.Mutation(mutation.Endpoint, result);
        journal.Write([Entry(now, "mutation", result == "applied" ? "change" : "skip", result, false, detail, result: result)]);
        if (result == "applied")
        {
            ManagementLog.Applied(logger, mutation.Summary);
        }
    }

    /// <summary>Occupancy history for idle/busy pricing.</summary>
    private static ManagementState Track(ManagementState state, VastMachine machine, long id, DateTimeOffset now, ManagementOptions o)
    {
        var counts = machine.OccupancyCounts();
        var rented = counts["on_demand"] + counts["interruptible"] + counts["reserved"];
        var busy = machine.NumGpus is > 0 && (double)rented / machine.NumGpus.Value >= o.Pricing.Occupancy.BusyTarget;
        return state with
        {
            MachineId = id,
            FirstSeenAt = state.FirstSeenAt ?? now,
            LastBusyAt = rented > 0 ? now : state.LastBusyAt,
            BusySince = busy ? state.BusySince ?? now : null,
        };
    }

    private ReconcileReport Problem(DateTimeOffset now, bool dryRun, long? id, string problem, bool apply, TimeSpan? backOff = null)
    {
        ManagementLog.CannotReconcile(logger, problem);
        if (apply)
        {
            journal.Write([Entry(now, "reconcile", "hold", "cannot_read_machine", dryRun, problem)]);
            metrics.Decision("reconcile", "hold", "cannot_read_machine");
        }

        return new ReconcileReport(now, dryRun, id, problem, null, [], backOff);
    }

    private static JournalInputs Inputs(PriceDecision price, VastMachine machine, int rented, TimeSpan idle, MarketSnapshot? market)
    {
        double? P(double p) => market is { PeerPrices.Count: > 0 } m ? Math.Round(PricingEngine.Percentile(m.PeerPrices, p), 4) : null;
        return new(price.Peers, price.MarketValue, P(10), P(50), P(90), rented, (int)(machine.NumGpus ?? 0), Math.Round(idle.TotalHours, 2), market?.Description);
    }

    /// <summary>A journal line; a change decided in dry-run gets the result "dry_run". Also used by maintenance and the fault guard.</summary>
    internal static JournalEntry Entry(DateTimeOffset at, string kind, string action, string reason, bool dryRun, string? explanation,
        string? old = null, string? @new = null, string? rule = null, JournalInputs? inputs = null, string? result = null) => new()
        {
            Time = at,
            Kind = kind,
            Action = action,
            Reason = reason,
            Rule = rule,
            Old = old,
            New = @new,
            DryRun = dryRun,
            Result = result ?? (dryRun && action == "change" ? "dry_run" : null),
            Explanation = explanation,
            Inputs = inputs,
        };
}
