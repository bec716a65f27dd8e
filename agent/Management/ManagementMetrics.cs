using Prometheus;
using VastHostAgent.Kernel;
using VastHostAgent.Vast;

namespace VastHostAgent.Management;

/// <summary>
/// Management instruments: decisions by kind, action and reason; mutations by endpoint and result; the
/// desired and listed price, the market value and peer count used, dry-run and the last reconcile time.
/// Label values are bounded: field names, actions and reasons are fixed sets.
/// </summary>
public sealed class ManagementMetrics
{
    private readonly IAgentMetrics _metrics;
    private readonly Counter _decisions;
    private readonly Counter _mutations;
    private readonly Gauge _desired;
    private readonly Gauge _target;
    private readonly Gauge _market;
    private readonly Gauge _peers;
    private readonly Gauge _dryRun;
    private readonly Gauge _lastReconcile;
    private readonly Gauge _budget;

    private readonly string[]? _machineLabels;

    /// <param name="metrics">The agent's registry.</param>
    /// <param name="perMachine">Label the per-machine gauges with <c>machine_id</c> and <c>hostname</c> (controller: many machines).</param>
    public ManagementMetrics(IAgentMetrics metrics, bool perMachine = false)
    {
        _metrics = metrics;
        var f = metrics.Factory;
        _machineLabels = perMachine ? ["machine_id", "hostname"] : null;
        _decisions = f.CreateCounter("vasthost_management_decisions_total", "Reconcile decisions by field (gpu price, min bid, end date, listing, …), action (change, keep, hold) and reason.", ["kind", "action", "reason"]);
        _mutations = f.CreateCounter("vasthost_management_mutations_total", "Listing changes by endpoint and result (applied, failed, outcome_unknown, rate_limited, circuit_open, skipped_budget, dry_run).", ["endpoint", "result"]);
        _desired = f.CreateGauge("vasthost_management_desired_gpu_price_dollars_per_hour", "The GPU price the agent wants listed now (after every guard), $/GPU-hour.", _machineLabels ?? []);
        _target = f.CreateGauge("vasthost_management_target_gpu_price_dollars_per_hour", "The strategy's price before the step limit, hysteresis and cooldown, $/GPU-hour.", _machineLabels ?? []);
        _market = f.CreateGauge("vasthost_management_market_price_dollars_per_hour", "The market value used (percentile of peers or of the market metrics), host side, $/GPU-hour.", _machineLabels ?? []);
        _peers = f.CreateGauge("vasthost_management_market_peers", "Comparable offers found at the last market search (own machines excluded).", _machineLabels ?? []);
        _dryRun = f.CreateGauge("vasthost_management_dry_run", "1 while management only decides and journals (management.dryRun), 0 when it changes the listing.");
        _lastReconcile = f.CreateGauge("vasthost_management_last_reconcile_timestamp_seconds", "When the listing was last reconciled.", _machineLabels ?? []);
        _budget = f.CreateGauge("vasthost_management_mutation_budget_remaining", "Changes still allowed in the rolling hour (management.mutationBudgetPerHour).", _machineLabels ?? []);
    }

    /// <summary>Whether management runs dry, known from the configuration before the first reconcile (a gauge left
    /// at 0 until then would say "changes the listing").</summary>
    public void Mode(bool dryRun)
    {
        _dryRun.Set(dryRun ? 1 : 0);
        _metrics.Changed();
    }

    public void Decision(string kind, string action, string reason)
    {
        _decisions.WithLabels(kind.Replace(' ', '_'), action, reason).Inc();
        _metrics.Changed();
    }

    public void Mutation(VastEndpoint endpoint, string result)
    {
        _mutations.WithLabels(VastEndpointInfo.Of(endpoint).Name, result).Inc();
        _metrics.Changed();
    }

    public void Reconciled(long machineId, string? hostname, DateTimeOffset at, bool dryRun, PriceDecision price, VastMachine machine, MarketSnapshot? market, int mutationsLastHour, int budget)
    {
        string[] labels = _machineLabels is null ? [] : [machineId.ToString(System.Globalization.CultureInfo.InvariantCulture), hostname ?? ""];
        _lastReconcile.WithLabels(labels).Set(at.ToUnixTimeMilliseconds() / 1000.0);
        _dryRun.Set(dryRun ? 1 : 0);
        if ((price.Action == PriceAction.Change ? price.Price : machine.ListedGpuCost) is { } desired)
        {
            _desired.WithLabels(labels).Set(desired);
        }

        if (price.Target is { } target)
        {
            _target.WithLabels(labels).Set(target);
        }

        if (price.MarketValue is { } value)
        {
            _market.WithLabels(labels).Set(value);
        }

        if (market is not null)
        {
            _peers.WithLabels(labels).Set(market.PeerPrices.Count);
        }

        _budget.WithLabels(labels).Set(Math.Max(0, budget - mutationsLastHour));
        _metrics.Changed();
    }
}
