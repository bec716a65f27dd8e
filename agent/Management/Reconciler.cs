using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;
using VastHostAgent.Vast;

namespace VastHostAgent.Management;

/// <summary>The outcome of one reconcile.</summary>
public sealed record ReconcileReport(
    DateTimeOffset At,
    bool DryRun,
    long? MachineId,
    string? Problem,
    ReconcilePlan? Plan,
    IReadOnlyList<MutationRecord> Results,
    TimeSpan? BackOff)
{
    /// <summary>State files that were unusable and were re-established from this cycle's read (no change made this cycle).</summary>
    public IReadOnlyList<string> Recovered { get; init; } = [];
}

/// <summary>
/// One reconcile: read the machine → re-establish any unusable state file from that read → decide (price,
/// listing, min bid, default job; maintenance and the fault guard first) → journal → apply the planned
/// mutations one by one through the <see cref="MutationPath"/> (unless dry-run) → re-read. Never repeats a
/// mutation because an answer was lost: after any failure the cycle ends and the next decision starts from a
/// fresh read, and after an unknown outcome the machine is quarantined until a later read shows what happened.
/// </summary>
public sealed partial class Reconciler(
    IVastClient client,
    VastMachineLocator locator,
    MarketData marketData,
    ManagementStateStore store,
    MutationPath mutations,
    DecisionJournal journal,
    ManagementMetrics metrics,
    SnapshotStore snapshots,
    IOptions<ManagementOptions> options,
    TimeProvider time,
    ILogger<Reconciler> logger,
    IListingConstraintSource? maintenance = null) : IReconcileDriver, IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private MarketSnapshot? _market;
    private string? _marketProblem;

    public void Dispose() => _gate.Dispose();

    /// <summary>The last market snapshot (for plan output and metrics).</summary>
    public MarketSnapshot? Market => _market;

    /// <inheritdoc />
    public async Task<IReadOnlyList<ReconcileReport>> RunCycleAsync(bool apply, bool dryRun, CancellationToken cancellationToken) =>
        [await RunAsync(apply, dryRun, cancellationToken).ConfigureAwait(false)];

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

        var target = new ManagedMachine(id, machine.Hostname, "", o, store, mutations, maintenance);
        if (o.Pricing.Strategy == PricingStrategy.Market && (_market is null || now - _market.FetchedAt >= o.Pricing.Market.RefreshInterval))
        {
            try
            {
                var (market, hostId) = await marketData.FetchAsync(machine, store.Load().HostId, o.Pricing.Market, now, cancellationToken).ConfigureAwait(false);
                _market = market;
                _marketProblem = null;
                if (apply && hostId != store.Load().HostId && store.Read().Recovery is null)
                {
                    store.Update(s => s with { HostId = hostId });
                }
            }
            catch (VastApiException ex)
            {
                _marketProblem = ex.Message; // the last snapshot (if any) ages; the engine holds once it is stale
            }
        }

        return await ReconcileAsync(target, machine, _market, _marketProblem, null, apply, dryRun, rereadAfterChange: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Decides and (with <paramref name="apply"/>) carries out one machine's cycle from a fresh read of it: state
    /// recovery, maintenance and the fault guard, price, listing, min bid, default job. The caller serialises cycles
    /// of one machine.
    /// </summary>
    /// <param name="target">The machine, its policy and state.</param>
    /// <param name="machine">The machine as just read.</param>
    /// <param name="market">The market snapshot of the machine's class (null: none yet).</param>
    /// <param name="marketProblem">Why the last market search failed (null when it did not).</param>
    /// <param name="health">The rig's health (controller: from Prometheus); null = the local snapshot's.</param>
    /// <param name="apply">False for <c>plan</c>.</param>
    /// <param name="dryRun">Decide and journal only.</param>
    /// <param name="rereadAfterChange">Read the machine again after a change was sent (standalone: for the metrics).</param>
    /// <param name="cancellationToken">Cancels the cycle.</param>
    /// <param name="journalKeeps">Journal fields that stay as they are too (standalone); a controller journals only changes and holds.</param>
    /// <param name="holdBudget">Set when an account-wide budget is spent: no mutation this cycle, and why.</param>
    public async Task<ReconcileReport> ReconcileAsync(
        ManagedMachine target, VastMachine machine, MarketSnapshot? market, string? marketProblem, RigObservation? health,
        bool apply, bool dryRun, bool rereadAfterChange, CancellationToken cancellationToken, string? holdBudget = null, bool journalKeeps = true)
    {
        var o = target.Options;
        var store = target.State;
        var mutations = target.Mutations;
        var maintenance = target.Constraints;
        var id = target.Id;
        var now = time.GetUtcNow();
        // An unusable state file (found now, or earlier by this or another process) is re-established from this
        // fresh read before anything is decided, and nothing is changed on Vast in this cycle.
        var recovered = new List<string>();
        var managementRead = store.Read();
        var management = managementRead.Value;
        if (managementRead.Recovery is { } lost)
        {
            management = Reestablish(management, machine, id, now);
            recovered.Add($"{ManagementStateStore.FileName} ({lost.Problem}; set aside as {lost.SetAsideAs ?? "-"}): "
                + (management.UnlistedByAgentReason is { } why ? $"the agent's own unlist re-established from the journal ({why}); " : "")
                + "cooldown restarted, occupancy history reset");
            if (apply)
            {
                store.Resolve(_ => management);
            }
        }

        if (maintenance is not null)
        {
            recovered.AddRange(maintenance.Recover(machine, management, apply));
        }

        var state = Track(management, machine, id, now, o);
        if (apply)
        {
            state = store.Update(s => Track(s, machine, id, now, o));
        }

        var cycle = mutations.Begin(id, now, dryRun, persist: apply, listed: machine.Listed);
        if (holdBudget is not null)
        {
            cycle.Hold(MutationResult.SkippedBudget, holdBudget);
        }

        if (recovered.Count > 0)
        {
            var what = string.Join("; ", recovered);
            cycle.Hold(MutationResult.HeldRecovery, "state re-established from Vast this cycle: " + what);
            if (apply)
            {
                ManagementLog.StateRecovered(logger, what);
                journal.Write(recovered.Select(r => JournalEntries.Entry(now, "state", "recover", "state_file_unusable", dryRun,
                    r + "; no change on Vast this cycle", machineId: id)));
            }
        }

        var constraints = maintenance is null
            ? ListingConstraints.None
            : await maintenance.StepAsync(machine, health, cycle, apply, cancellationToken).ConfigureAwait(false);
        if (apply)
        {
            state = store.Load(); // maintenance may have noted that the agent holds the listing
        }

        // One GPU-hour's electricity under load: the controller reads it from the rig's series, standalone from its own economics.
        var power = health is not null ? health.PowerCost : snapshots.Current.Part<RigPowerCost>();
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
            o.Pricing.Strategy == PricingStrategy.Market ? market : null,
            power?.LoadCostPerGpuHour);
        var price = PricingEngine.Decide(input, o.Pricing);
        if (price.Reason is "market_missing" && marketProblem is not null)
        {
            price = price with { Explanation = price.Explanation + " (" + marketProblem + ")" };
        }

        var plan = ListingPlanner.Plan(machine, price, o, state, market, now, constraints, power);
        if (apply)
        {
            var entries = plan.Items.Where(i => journalKeeps || i.Action != "keep").Select(i => JournalEntries.Entry(now, i.Field, i.Action, i.Reason, dryRun, i.Explanation, i.Current, i.Desired,
                rule: i.Field == "gpu price" ? price.Rule : null,
                inputs: i.Field == "gpu price" ? Inputs(price, machine, rented, input.IdleFor, market) : null,
                machineId: id)).ToList();
            journal.Write(entries);
            foreach (var item in plan.Items)
            {
                metrics.Decision(item.Field, item.Action, item.Reason);
            }

            foreach (var mutation in plan.Mutations)
            {
                await mutations.ExecuteAsync(cycle, mutation, cancellationToken, (s, at) => Applied(s, mutation, price, at)).ConfigureAwait(false);
            }

            if (cycle.Sent && rereadAfterChange)
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
        }

        metrics.Reconciled(id, target.Hostname, now, dryRun, price, plan.Machine, market, store.Load().Mutations.Count(t => now - t < TimeSpan.FromHours(1)), o.MutationBudgetPerHour);
        return new ReconcileReport(now, dryRun, id, null, plan, cycle.Results, cycle.BackOff) { Recovered = recovered };
    }

    /// <summary>What an applied listing mutation changes in the management state (in the write that clears the write-ahead note).</summary>
    private static ManagementState Applied(ManagementState s, PlannedMutation mutation, PriceDecision price, DateTimeOffset at) => s with
    {
        LastApplied = mutation.Listing is { } l ? new AppliedListing(at, price.Explanation, l.PriceGpu, l.PriceMinBid, l.EndDate, l.Duration) : s.LastApplied,
        LastPriceChangeAt = mutation.Listing is not null && price.Action == PriceAction.Change ? at : s.LastPriceChangeAt,
        UnlistedByAgentReason = mutation.Endpoint switch
        {
            VastEndpoint.CreateAsks => null,
            VastEndpoint.Unlist => mutation.UnlistReason,
            _ => s.UnlistedByAgentReason,
        },
    };

    /// <summary>
    /// The management state after its file was unusable, re-established from the machine as read now and the
    /// journal: whether the agent itself unlisted the machine (so it keeps holding it, and relists only once the
    /// reason is gone) comes from the journal's last applied listing change; the cooldown restarts now (the time
    /// of the last price change is lost, so the next change waits a full cooldown).
    /// </summary>
    private ManagementState Reestablish(ManagementState empty, VastMachine machine, long id, DateTimeOffset now) => empty with
    {
        MachineId = id,
        FirstSeenAt = now,
        LastPriceChangeAt = now,
        UnlistedByAgentReason = machine.Listed == true ? null : journal.LastUnlistByAgent(id),
    };

    /// <summary>Shares a fresh machine read with the snapshot (metrics; the poller then skips its own read).</summary>
    private void Publish(VastMachine machine, long id)
    {
        var at = time.GetUtcNow();
        snapshots.Update(s => s.WithVast((s.Vast ?? new VastState()) with { Up = true, Problem = null, IdentificationProblem = null, MachineId = id, Machine = machine, MachineReadAt = at }));
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
            journal.Write([JournalEntries.Entry(now, "reconcile", "hold", "cannot_read_machine", dryRun, problem, machineId: id)]);
            metrics.Decision("reconcile", "hold", "cannot_read_machine");
        }

        return new ReconcileReport(now, dryRun, id, problem, null, [], backOff);
    }

    private static JournalInputs Inputs(PriceDecision price, VastMachine machine, int rented, TimeSpan idle, MarketSnapshot? market)
    {
        double? P(double p) => market is { PeerPrices.Count: > 0 } m ? Math.Round(PricingEngine.Percentile(m.PeerPrices, p), 4) : null;
        return new(price.Peers, price.MarketValue, P(10), P(50), P(90), rented, (int)(machine.NumGpus ?? 0), Math.Round(idle.TotalHours, 2), market?.Description);
    }
}
