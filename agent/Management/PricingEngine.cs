namespace VastHostAgent.Management;

/// <summary>What the market looked like when it was last searched. Prices are host-side $/GPU-hour.</summary>
/// <param name="FetchedAt">When the search ran.</param>
/// <param name="PeerPrices">Per-GPU host prices of comparable offers (own machines excluded, deduplicated, sane).</param>
/// <param name="OffersSeen">Offers the search returned.</param>
/// <param name="OwnExcluded">Offers of this host's own machines that were excluded.</param>
/// <param name="Malformed">Offers left out for missing or absurd numbers.</param>
/// <param name="HostShare">Host share applied to peers' renter prices.</param>
/// <param name="HostShareSource">Where the share came from: "own offers" or "configured".</param>
/// <param name="MetricsPercentiles">Host-side percentiles from the market metrics (10, 25, 50, 75, 90), when fetched.</param>
/// <param name="MetricsCount">GPUs the metrics cover.</param>
/// <param name="Description">The comparison set in words (model, GPU bucket, verified).</param>
public sealed record MarketSnapshot(
    DateTimeOffset FetchedAt,
    IReadOnlyList<double> PeerPrices,
    int OffersSeen,
    int OwnExcluded,
    int Malformed,
    double HostShare,
    string HostShareSource,
    IReadOnlyDictionary<int, double>? MetricsPercentiles,
    double MetricsCount,
    string Description);

/// <summary>Everything a pricing decision looks at.</summary>
/// <param name="CurrentPrice">The listed on-demand price ($/GPU-hour), if any.</param>
/// <param name="NumGpus">GPUs of the machine.</param>
/// <param name="RentedGpus">GPUs rented now (any kind).</param>
/// <param name="IdleFor">Time since a GPU was last rented.</param>
/// <param name="BusyFor">Time the machine has been at its busy target.</param>
/// <param name="LastChange">When the agent last changed the price.</param>
/// <param name="Now">The decision's time.</param>
/// <param name="Market">The market of the machine's class (market strategy).</param>
/// <param name="BreakEven">The rig's electricity for one GPU-hour under load ($, host side; null: economics off or not known yet): no price set is below it unless <c>pricing.allowBelowBreakEven</c>.</param>
public sealed record PricingInput(
    double? CurrentPrice,
    int NumGpus,
    int RentedGpus,
    TimeSpan IdleFor,
    TimeSpan BusyFor,
    DateTimeOffset? LastChange,
    DateTimeOffset Now,
    MarketSnapshot? Market,
    double? BreakEven = null);

/// <summary>The outcome for the GPU price.</summary>
public enum PriceAction
{
    /// <summary>Leave the price as it is (already right, or not safe to change).</summary>
    Hold,

    /// <summary>Set <see cref="PriceDecision.Price"/>.</summary>
    Change,
}

/// <summary>A pricing decision and why. <see cref="Reason"/> is one of a bounded set (metric label).</summary>
public sealed record PriceDecision(
    PriceAction Action,
    double? Price,
    double? Target,
    string Rule,
    string Reason,
    string Explanation,
    int Peers,
    double? MarketValue);

/// <summary>
/// The GPU price, decided from the strategy (fixed or market percentile), the occupancy adjustments, and
/// the hard guards: floor and ceiling, the break-even price under load (economics), maximum change per step, minimum
/// change worth making, cooldown and no raise while rented. Pure: no I/O, no clock of its own. Whatever the inputs, a
/// price it sets is within [floor, ceiling] and, with a known break-even, not below it (property tests generate
/// markets, histories, draws, tariffs and configurations to hold it to that).
/// </summary>
public static class PricingEngine
{
    public static PriceDecision Decide(PricingInput input, PricingOptions o)
    {
        var current = input.CurrentPrice is { } c && double.IsFinite(c) && c > 0 ? c : (double?)null;
        if (o.Strategy == PricingStrategy.Off)
        {
            return Hold(current, null, "off", "strategy_off", "pricing.strategy is off: the price is not managed", 0, null);
        }

        double basePrice;
        string rule;
        string explanation;
        var peers = 0;
        double? marketValue = null;
        if (o.Strategy == PricingStrategy.Fixed)
        {
            basePrice = o.FixedPrice ?? double.NaN;
            rule = "fixed";
            explanation = Inv($"fixed price {basePrice:0.####}");
        }
        else
        {
            var m = o.Market;
            var market = input.Market;
            if (market is null)
            {
                return Hold(current, null, "market", "market_missing", "no market data yet: holding the current price", 0, null);
            }

            peers = market.PeerPrices.Count;
            if (input.Now - market.FetchedAt > m.MaxAge)
            {
                return Hold(current, null, "market", "market_stale", Inv($"market data is {(input.Now - market.FetchedAt).TotalMinutes:0} min old (max {m.MaxAge.TotalMinutes:0}): holding"), peers, null);
            }

            if (peers >= m.MinPeers)
            {
                marketValue = Percentile(market.PeerPrices, m.Percentile);
                rule = "market_peers";
                explanation = Inv($"p{m.Percentile:0} of {peers} comparable offers = {marketValue:0.####}");
            }
            else if (m.UseMetricsFallback && market.MetricsPercentiles is { Count: > 0 } percentiles && market.MetricsCount >= m.MinPeers
                     && Nearest(percentiles, m.Percentile) is { } fromMetrics)
            {
                marketValue = fromMetrics.Value;
                rule = "market_metrics";
                explanation = Inv($"only {peers} comparable offers; market metrics p{fromMetrics.Key} over {market.MetricsCount:0} GPUs = {marketValue:0.####}");
            }
            else
            {
                return Hold(current, null, "market", "too_few_peers", Inv($"only {peers} comparable offers (need {m.MinPeers}) and no usable market metrics: holding"), peers, null);
            }

            basePrice = (marketValue.Value * m.Multiplier) + m.Offset;
            if (m.Multiplier != 1 || m.Offset != 0)
            {
                explanation += Inv($" × {m.Multiplier:0.###} + {m.Offset:0.####} = {basePrice:0.####}");
            }
        }

        if (!double.IsFinite(basePrice) || basePrice <= 0)
        {
            return Hold(current, null, rule, "market_malformed", "the computed price is not a positive number: holding", peers, marketValue);
        }

        var occupancy = o.Occupancy;
        if (occupancy.Enabled && input.NumGpus > 0)
        {
            if (input.RentedGpus == 0 && input.IdleFor > occupancy.IdleAfter && occupancy.StepDown > 0)
            {
                var steps = 1 + (int)Math.Min(1000, Math.Floor((input.IdleFor - occupancy.IdleAfter) / occupancy.StepInterval));
                basePrice *= Math.Pow(1 - occupancy.StepDown, steps);
                rule += "+idle";
                explanation += Inv($"; idle {input.IdleFor.TotalHours:0.#} h: {steps} step(s) down of {occupancy.StepDown:P0} → {basePrice:0.####}");
            }
            else if ((double)input.RentedGpus / input.NumGpus >= occupancy.BusyTarget && input.BusyFor >= occupancy.StepInterval && occupancy.StepUp > 0)
            {
                var steps = (int)Math.Min(1000, Math.Floor(input.BusyFor / occupancy.StepInterval));
                basePrice *= Math.Pow(1 + occupancy.StepUp, steps);
                rule += "+busy";
                explanation += Inv($"; {input.RentedGpus}/{input.NumGpus} GPUs rented for {input.BusyFor.TotalHours:0.#} h: {steps} step(s) up of {occupancy.StepUp:P0} → {basePrice:0.####}");
            }
        }

        var target = Clamp(basePrice, o);
        if (target != basePrice)
        {
            explanation += Inv($"; clamped to [{o.Floor:0.####}, {o.Ceiling:0.####}] → {target:0.####}");
        }

        // Never below what a rented GPU-hour costs in electricity (unless configured to): raise the target to the
        // break-even, or hold when even the ceiling is below it.
        var breakEven = input.BreakEven is { } be && double.IsFinite(be) && be > 0 && !o.AllowBelowBreakEven ? Math.Ceiling(be * 10000) / 10000 : (double?)null;
        if (breakEven is { } floorByPower && target < floorByPower)
        {
            if (floorByPower > o.Ceiling)
            {
                return Hold(current, target, rule, "break_even_above_ceiling",
                    explanation + Inv($"; the break-even under load {floorByPower:0.####} is above the ceiling {o.Ceiling:0.####}: holding (raise pricing.ceiling, or pricing.allowBelowBreakEven)"), peers, marketValue);
            }

            target = floorByPower;
            rule += "+break_even";
            explanation += Inv($"; below the break-even under load → {target:0.####} (electricity of a rented GPU-hour)");
        }

        if (current is null)
        {
            return new PriceDecision(PriceAction.Change, target, target, rule, "first_price", explanation + "; no price listed yet", peers, marketValue);
        }

        if (current < o.Floor || current > o.Ceiling)
        {
            return new PriceDecision(PriceAction.Change, target, target, rule, "out_of_bounds",
                explanation + Inv($"; the listed {current:0.####} is outside [{o.Floor:0.####}, {o.Ceiling:0.####}]: set at once"), peers, marketValue);
        }

        if (breakEven is { } minimum && current < minimum)
        {
            return new PriceDecision(PriceAction.Change, target, target, rule, "below_break_even",
                explanation + Inv($"; the listed {current:0.####} is below the break-even under load {minimum:0.####}: set at once"), peers, marketValue);
        }

        var delta = target - current.Value;
        if (Math.Abs(delta) < 1e-9)
        {
            return Hold(current, target, rule, "in_sync", explanation + "; already listed at this price", peers, marketValue);
        }

        if (o.NoRaiseWhileRented && input.RentedGpus > 0 && delta > 0)
        {
            return Hold(current, target, rule, "no_raise_while_rented",
                explanation + Inv($"; {input.RentedGpus} GPU(s) rented: no raise while rented (renters would get a price increase to accept)"), peers, marketValue);
        }

        if (Math.Abs(delta) / current.Value < o.MinChange)
        {
            return Hold(current, target, rule, "below_min_change", explanation + Inv($"; {delta / current.Value:+0.0%;-0.0%} is below the {o.MinChange:P0} worth changing"), peers, marketValue);
        }

        if (input.LastChange is { } last && input.Now - last < o.Cooldown)
        {
            return Hold(current, target, rule, "cooldown", explanation + Inv($"; last change {(input.Now - last).TotalMinutes:0} min ago, cooldown {o.Cooldown.TotalMinutes:0} min"), peers, marketValue);
        }

        var reason = "follow_target";
        var next = target;
        var maxDelta = current.Value * o.MaxChangePerStep;
        if (Math.Abs(delta) > maxDelta)
        {
            next = current.Value + (Math.Sign(delta) * maxDelta);
            reason = "limited_step";
            explanation += Inv($"; limited to {o.MaxChangePerStep:P0} per step → {next:0.####}");
        }

        next = Clamp(Math.Round(next, 4, MidpointRounding.AwayFromZero), o);
        if (Math.Abs(next - current.Value) < 1e-9)
        {
            return Hold(current, target, rule, "in_sync", explanation + "; rounds to the listed price", peers, marketValue);
        }

        return new PriceDecision(PriceAction.Change, next, target, rule, reason, explanation, peers, marketValue);
    }

    /// <summary>Linear-interpolated percentile (p in 0..100) of the values.</summary>
    public static double Percentile(IReadOnlyList<double> values, double p)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.Order().ToArray();
        var rank = p / 100.0 * (sorted.Length - 1);
        var lo = (int)Math.Floor(rank);
        var hi = (int)Math.Ceiling(rank);
        return sorted[lo] + ((sorted[hi] - sorted[lo]) * (rank - lo));
    }

    private static KeyValuePair<int, double>? Nearest(IReadOnlyDictionary<int, double> percentiles, double p)
    {
        var usable = percentiles.Where(kv => double.IsFinite(kv.Value) && kv.Value > 0).ToList();
        return usable.Count == 0 ? null : usable.OrderBy(kv => Math.Abs(kv.Key - p)).First();
    }

    private static double Clamp(double value, PricingOptions o) => Math.Min(o.Ceiling, Math.Max(o.Floor, value));

    private static PriceDecision Hold(double? current, double? target, string rule, string reason, string explanation, int peers, double? market) =>
        new(PriceAction.Hold, current, target, rule, reason, explanation, peers, market);

    private static string Inv(FormattableString text) => FormattableString.Invariant(text);
}
