using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;
using VastHostAgent.Management;
using VastHostAgent.Vast;

namespace VastHostAgent.Fleet;

/// <summary>
/// The controller's reconcile: one <c>GET /machines</c> for the whole account per cycle, then every managed
/// machine in turn through the same per-machine reconcile a standalone agent runs (its own state, mutation path,
/// windows and guard), with the market shared per class and rig health read once per cycle from Prometheus.
/// Reads do not grow with the machine count; mutations happen only where a machine is out of sync, one at a time,
/// paced by the client's per-endpoint spacing, within a per-machine and an account-wide hourly budget. A 429 or
/// an open circuit ends the cycle (the rest wait for the next one).
/// </summary>
public sealed class FleetReconciler(
    IVastClient client,
    Reconciler reconciler,
    FleetMachines machines,
    FleetMarket market,
    FleetMetrics metrics,
    SnapshotStore snapshots,
    IOptions<FleetOptions> options,
    FleetPolicies policies,
    TimeProvider time,
    ILogger<FleetReconciler> logger,
    IRigHealthSource? rigHealth = null) : IReconcileDriver, IFleetStatusSource, IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _lastSelectionProblem;

    public void Dispose() => _gate.Dispose();

    /// <summary>The last cycle's selection (for plan, status and metrics).</summary>
    public FleetSelection? Selection { get; private set; }

    /// <summary>The last rig health read.</summary>
    public RigHealthReport? Health { get; private set; }

    /// <inheritdoc/>
    public FleetStatus? Current { get; private set; }

    public async Task<IReadOnlyList<ReconcileReport>> RunCycleAsync(bool apply, bool dryRun, CancellationToken cancellationToken) =>
        await RunAsync(apply, dryRun, only: null, cancellationToken).ConfigureAwait(false);

    /// <summary>One cycle; <paramref name="only"/> limits the decisions to one machine (by id or host name) for <c>plan --machine</c>.</summary>
    public async Task<IReadOnlyList<ReconcileReport>> RunAsync(bool apply, bool dryRun, string? only, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await RunLockedAsync(apply, dryRun, only, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<IReadOnlyList<ReconcileReport>> RunLockedAsync(bool apply, bool dryRun, string? only, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        IReadOnlyList<VastMachine> all;
        try
        {
            all = await client.GetMachinesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (VastApiException ex)
        {
            FleetLog.CannotReadMachines(logger, ex.Message);
            return [new ReconcileReport(now, dryRun, null, ex.Message, null, [], ex.RetryAfter)];
        }

        var readAt = time.GetUtcNow();
        snapshots.Update(s => s.WithVast((s.Vast ?? new VastState()) with { Up = true, Problem = null, Machines = all, MachinesReadAt = readAt }));

        var o = options.Value;
        var selection = FleetSelection.Select(all, o.Machines);
        Selection = selection;
        metrics.Selection(selection, o.Machines);
        ReportSelection(selection, o.Machines);

        var managed = selection.Machines.Where(m => m.Managed).ToList();
        if (only is not null)
        {
            managed = [.. managed.Where(m => m.Machine.EffectiveId.ToString(CultureInfo.InvariantCulture) == only
                || string.Equals(m.Machine.Hostname?.Trim(), only, StringComparison.OrdinalIgnoreCase))];
        }

        var policyOf = managed.ToDictionary(m => m.Machine.EffectiveId, m => policies[o.Machines[m.Entry!.Value].Profile.Trim()]);
        RigHealthReport? health = null;
        if (managed.Any(m => policyOf[m.Machine.EffectiveId].FaultGuard.Enabled))
        {
            health = rigHealth is null
                ? new RigHealthReport(false, "no rig health source (fleet.prometheus.url)", now, new Dictionary<string, RigObservation>())
                : await rigHealth.ReadAsync(cancellationToken).ConfigureAwait(false);
            Health = health;
            metrics.RigHealth(health);
        }

        // One market per class, searched only when due, for the machines that price from the market.
        var classes = managed
            .Where(m => policyOf[m.Machine.EffectiveId].Management.Pricing.Strategy == PricingStrategy.Market)
            .GroupBy(m => FleetMarket.ClassOf(m.Machine, policyOf[m.Machine.EffectiveId].Management.Pricing.Market))
            .ToList();
        var markets = new Dictionary<MarketClass, (MarketSnapshot? Snapshot, string? Problem)>();
        foreach (var group in classes)
        {
            var pricing = policyOf[group.First().Machine.EffectiveId].Management.Pricing.Market;
            markets[group.Key] = await market.GetAsync(group.Key, [.. group.Select(m => m.Machine)], pricing, cancellationToken).ConfigureAwait(false);
        }

        if (only is null)
        {
            var held = new List<FleetHeldMachine>();
            var heldCount = 0;
            foreach (var m in managed.Where(m => health is not null && policyOf[m.Machine.EffectiveId].FaultGuard.Enabled))
            {
                if (health!.For(m.Machine.EffectiveId, m.Machine.Hostname) is { Known: false } unknown)
                {
                    heldCount++;
                    if (held.Count < 20)
                    {
                        held.Add(new FleetHeldMachine(m.Machine.EffectiveId, m.Machine.Hostname, unknown.Problem ?? "rig health unknown"));
                    }
                }
            }

            Current = new FleetStatus(readAt, all.Count, selection.Managed, selection.ReadOnly, selection.Conflicts,
                health is null ? null : new FleetRigHealthStatus(health.Up, health.Problem, health.At, health.ByKey.Values.Count(v => v.Known)),
                heldCount, held);
        }

        var reports = new List<ReconcileReport>(managed.Count);
        var accountBudget = o.MutationBudgetPerHour;
        foreach (var match in managed)
        {
            var machine = match.Machine;
            var id = machine.EffectiveId;
            var policy = policyOf[id];
            var target = machines.For(id, machine.Hostname, policy);
            var (snapshot, problem) = policy.Management.Pricing.Strategy == PricingStrategy.Market
                ? markets[FleetMarket.ClassOf(machine, policy.Management.Pricing.Market)]
                : (null, null);
            var hold = machines.MutationsInLastHour(time.GetUtcNow()) >= accountBudget
                ? string.Create(CultureInfo.InvariantCulture, $"the account's mutation budget of {accountBudget}/hour (fleet.mutationBudgetPerHour) is used up")
                : null;
            var observation = health?.For(id, machine.Hostname);
            var report = await reconciler.ReconcileAsync(target, machine, snapshot, problem, observation,
                apply, dryRun, rereadAfterChange: false, cancellationToken, hold, journalKeeps: false).ConfigureAwait(false);
            reports.Add(report);
            machines.Sent(Enumerable.Repeat(time.GetUtcNow(), report.Results.Count(r => r.Result.Sent())));
            metrics.Reconciled(id, machine.Hostname, report, observation);
            if (report.BackOff is { } backOff && backOff > TimeSpan.Zero
                && report.Results.Any(r => r.Result is MutationResult.RateLimited or MutationResult.CircuitOpen))
            {
                FleetLog.CycleCutShort(logger, id, backOff);
                break;
            }
        }

        return reports;
    }

    private void ReportSelection(FleetSelection selection, List<MachineSelector> entries)
    {
        var problems = new List<string>();
        for (var i = 0; i < entries.Count; i++)
        {
            if (selection.MatchesPerEntry[i] == 0)
            {
                problems.Add($"{FleetSelection.Describe(entries, i)} selects no machine of the account");
            }
        }

        foreach (var conflict in selection.Machines.Where(m => m.Conflict.Count > 0))
        {
            problems.Add(string.Create(CultureInfo.InvariantCulture,
                $"machine {conflict.Machine.EffectiveId} ({conflict.Machine.Hostname}) is claimed by {string.Join(" and ", conflict.Conflict.Select(c => FleetSelection.Describe(entries, c)))}: left alone (read-only) until one entry claims it"));
        }

        var text = problems.Count == 0 ? null : string.Join("; ", problems);
        if (text != _lastSelectionProblem)
        {
            if (text is not null)
            {
                FleetLog.SelectionProblem(logger, text);
            }

            _lastSelectionProblem = text;
        }
    }
}
