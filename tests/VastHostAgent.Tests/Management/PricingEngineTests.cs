using CsCheck;
using VastHostAgent.Management;

namespace VastHostAgent.Tests.Management;

/// <summary>The GPU price: strategies, occupancy steps and the hard guards, including a property test over random inputs.</summary>
public sealed class PricingEngineTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2026-11-27T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static PricingOptions Market(Action<PricingOptions>? change = null)
    {
        var o = new PricingOptions { Strategy = PricingStrategy.Market, Floor = 0.20, Ceiling = 0.80, MaxChangePerStep = 0.10, MinChange = 0.02, Cooldown = TimeSpan.FromHours(1) };
        change?.Invoke(o);
        return o;
    }

    private static MarketSnapshot Peers(params double[] prices) =>
        new(Now.AddMinutes(-5), prices, prices.Length, 0, 0, 0.75, "configured", null, 0, "RTX 4090, 8+ GPUs");

    private static PricingInput Input(double? current, MarketSnapshot? market, int rented = 0, TimeSpan? idle = null, DateTimeOffset? lastChange = null, TimeSpan? busy = null) =>
        new(current, 8, rented, idle ?? TimeSpan.Zero, busy ?? TimeSpan.Zero, lastChange, Now, market);

    [Fact]
    public void A_rising_market_raises_the_price_at_most_one_step_at_a_time()
    {
        var d = PricingEngine.Decide(Input(0.40, Peers(0.55, 0.60, 0.62, 0.65, 0.70)), Market());
        Assert.Equal(PriceAction.Change, d.Action);
        Assert.Equal(0.44, d.Price);               // +10 % of 0.40, not the median 0.62
        Assert.Equal(0.62, d.Target);
        Assert.Equal("limited_step", d.Reason);
        Assert.Equal("market_peers", d.Rule);
    }

    [Fact]
    public void A_falling_market_lowers_the_price_and_a_small_move_is_taken_whole()
    {
        var d = PricingEngine.Decide(Input(0.40, Peers(0.36, 0.37, 0.38, 0.39, 0.41)), Market());
        Assert.Equal(PriceAction.Change, d.Action);
        Assert.Equal(0.38, d.Price);
        Assert.Equal("follow_target", d.Reason);
    }

    [Fact]
    public void Outliers_do_not_move_the_median()
    {
        var d = PricingEngine.Decide(Input(0.40, Peers(0.001, 0.39, 0.40, 0.41, 0.40, 999)), Market());
        Assert.Equal(PriceAction.Hold, d.Action);
        Assert.Equal("in_sync", d.Reason);
    }

    [Fact]
    public void Too_few_peers_use_the_market_metrics_or_else_hold()
    {
        var fewPeers = Peers(0.30, 0.70) with { MetricsPercentiles = new Dictionary<int, double> { [10] = 0.3, [50] = 0.45, [90] = 0.6 }, MetricsCount = 900 };
        var withMetrics = PricingEngine.Decide(Input(0.44, fewPeers), Market());
        Assert.Equal(PriceAction.Change, withMetrics.Action);
        Assert.Equal("market_metrics", withMetrics.Rule);
        Assert.Equal(0.45, withMetrics.Price);

        var noMetrics = PricingEngine.Decide(Input(0.44, Peers(0.30, 0.70)), Market());
        Assert.Equal((PriceAction.Hold, "too_few_peers", 0.44), (noMetrics.Action, noMetrics.Reason, noMetrics.Price));

        var fallbackOff = PricingEngine.Decide(Input(0.44, fewPeers), Market(o => o.Market.UseMetricsFallback = false));
        Assert.Equal("too_few_peers", fallbackOff.Reason);
    }

    [Fact]
    public void Stale_missing_or_empty_market_data_holds_the_current_price()
    {
        var stale = PricingEngine.Decide(Input(0.44, Peers(0.3, 0.3, 0.3, 0.3, 0.3) with { FetchedAt = Now.AddHours(-4) }), Market());
        Assert.Equal((PriceAction.Hold, "market_stale", 0.44), (stale.Action, stale.Reason, stale.Price));
        Assert.Equal("market_missing", PricingEngine.Decide(Input(0.44, null), Market()).Reason);
        Assert.Equal("too_few_peers", PricingEngine.Decide(Input(0.44, Peers()), Market()).Reason);
    }

    [Fact]
    public void Multiplier_and_offset_apply_to_the_percentile()
    {
        var d = PricingEngine.Decide(Input(0.40, Peers(0.40, 0.40, 0.40, 0.40, 0.40)), Market(o => { o.Market.Multiplier = 0.95; o.Market.Offset = 0.01; }));
        Assert.Equal(0.39, d.Price);
    }

    [Fact]
    public void No_raise_while_rented_hysteresis_and_cooldown_hold()
    {
        var market = Peers(0.50, 0.50, 0.50, 0.50, 0.50);
        Assert.Equal("no_raise_while_rented", PricingEngine.Decide(Input(0.40, market, rented: 2), Market()).Reason);
        Assert.Equal(PriceAction.Change, PricingEngine.Decide(Input(0.40, market, rented: 2), Market(o => o.NoRaiseWhileRented = false)).Action);
        Assert.Equal(PriceAction.Change, PricingEngine.Decide(Input(0.60, market, rented: 2), Market()).Action); // lowering is fine
        Assert.Equal("below_min_change", PricingEngine.Decide(Input(0.495, market), Market()).Reason);
        Assert.Equal("cooldown", PricingEngine.Decide(Input(0.40, market, lastChange: Now.AddMinutes(-30)), Market()).Reason);
        Assert.Equal(PriceAction.Change, PricingEngine.Decide(Input(0.40, market, lastChange: Now.AddMinutes(-61)), Market()).Action);
    }

    [Fact]
    public void Fixed_strategy_and_out_of_bounds_prices_go_straight_into_the_bounds()
    {
        var fixedPrice = Market(o => { o.Strategy = PricingStrategy.Fixed; o.FixedPrice = 0.35; });
        Assert.Equal(0.35, PricingEngine.Decide(Input(null, null), fixedPrice).Price);
        var tooHigh = PricingEngine.Decide(Input(3.00, null), fixedPrice);
        Assert.Equal((PriceAction.Change, "out_of_bounds", 0.35), (tooHigh.Action, tooHigh.Reason, tooHigh.Price));
        var clamped = PricingEngine.Decide(Input(0.21, null), Market(o => { o.Strategy = PricingStrategy.Fixed; o.FixedPrice = 0.05; }));
        Assert.Equal(0.20, clamped.Target); // the floor
        Assert.Equal("off", PricingEngine.Decide(Input(5.0, null), Market(o => o.Strategy = PricingStrategy.Off)).Rule);
        Assert.Equal(PriceAction.Hold, PricingEngine.Decide(Input(5.0, null), Market(o => o.Strategy = PricingStrategy.Off)).Action); // off never touches the price
    }

    [Fact]
    public void Idle_decay_over_simulated_days_steps_down_to_the_floor_and_stops()
    {
        var o = Market(p =>
        {
            p.Strategy = PricingStrategy.Fixed;
            p.FixedPrice = 0.50;
            p.Occupancy.Enabled = true;
            p.Occupancy.IdleAfter = TimeSpan.FromHours(12);
            p.Occupancy.StepInterval = TimeSpan.FromHours(6);
            p.Occupancy.StepDown = 0.10;
        });
        double price = 0.50;
        DateTimeOffset? lastChange = null;
        var idleSince = Now;
        var history = new List<double>();
        for (var hour = 0; hour <= 24 * 14; hour++)
        {
            var at = Now.AddHours(hour);
            var d = PricingEngine.Decide(new PricingInput(price, 8, 0, at - idleSince, TimeSpan.Zero, lastChange, at, null), o);
            Assert.InRange(d.Price!.Value, o.Floor, o.Ceiling);
            if (d.Action == PriceAction.Change)
            {
                price = d.Price.Value;
                lastChange = at;
                history.Add(price);
            }
        }

        Assert.Equal(0.50, history.Count == 0 ? 0 : 0.50); // started at the fixed price
        Assert.Equal(o.Floor, price);                        // reached the floor…
        Assert.Equal(o.Floor, history[^1]);
        Assert.True(history.Zip(history.Skip(1)).All(p => p.Second < p.First), "only steps down while idle");
        // …and stays there: two more weeks change nothing.
        var later = PricingEngine.Decide(new PricingInput(price, 8, 0, TimeSpan.FromDays(28), TimeSpan.Zero, lastChange, Now.AddDays(28), null), o);
        Assert.Equal(PriceAction.Hold, later.Action);
    }

    [Fact]
    public void A_busy_machine_steps_up_while_occupancy_stays_above_target_unless_rented_no_raise_applies()
    {
        var o = Market(p =>
        {
            p.Strategy = PricingStrategy.Fixed;
            p.FixedPrice = 0.40;
            p.NoRaiseWhileRented = false;
            p.Occupancy.Enabled = true;
            p.Occupancy.BusyTarget = 0.75;
            p.Occupancy.StepInterval = TimeSpan.FromHours(6);
            p.Occupancy.StepUp = 0.05;
        });
        var d = PricingEngine.Decide(Input(0.40, null, rented: 7, busy: TimeSpan.FromHours(12)), o);
        Assert.Equal(PriceAction.Change, d.Action);
        Assert.Equal(0.44, d.Price);          // target 0.40 × 1.05² = 0.441, limited to +10 %
        Assert.Contains("+busy", d.Rule, StringComparison.Ordinal);
        o.NoRaiseWhileRented = true;
        Assert.Equal("no_raise_while_rented", PricingEngine.Decide(Input(0.40, null, rented: 7, busy: TimeSpan.FromHours(12)), o).Reason);
    }

    [Fact]
    public void No_input_can_produce_a_price_outside_the_floor_and_ceiling()
    {
        var options =
            from floor in Gen.Double[0.001, 5]
            from width in Gen.Double[0, 5]
            from maxStep in Gen.Double[0.01, 1]
            from minChange in Gen.Double[0, 0.01]
            from strategy in Gen.OneOf(PricingStrategy.Fixed, PricingStrategy.Market)
            from fixedPrice in Gen.Double[0, 100]
            from percentile in Gen.Double[1, 99]
            from multiplier in Gen.Double[0.1, 10]
            from offset in Gen.Double[-10, 10]
            from minPeers in Gen.Int[1, 20]
            from occupancy in Gen.Bool
            from stepDown in Gen.Double[0, 0.5]
            from stepUp in Gen.Double[0, 0.5]
            from noRaise in Gen.Bool
            select new PricingOptions
            {
                Strategy = strategy,
                FixedPrice = fixedPrice,
                Floor = floor,
                Ceiling = floor + width,
                MaxChangePerStep = maxStep,
                MinChange = minChange,
                Cooldown = TimeSpan.FromMinutes(30),
                NoRaiseWhileRented = noRaise,
                Market = new MarketPricingOptions { Percentile = percentile, Multiplier = multiplier, Offset = offset, MinPeers = minPeers },
                Occupancy = new OccupancyPricingOptions { Enabled = occupancy, StepDown = stepDown, StepUp = stepUp, IdleAfter = TimeSpan.FromHours(1), StepInterval = TimeSpan.FromHours(2), BusyTarget = 0.5 },
            };
        var inputs =
            from current in Gen.Double[-1, 200].Nullable()
            from peers in Gen.Double[0.0001, 2000].Array[0, 60]
            from nan in Gen.Bool
            from age in Gen.Int[0, 600]
            from rented in Gen.Int[0, 8]
            from idleHours in Gen.Double[0, 2000]
            from busyHours in Gen.Double[0, 2000]
            from sinceChange in Gen.Int[0, 240].Nullable()
            from metrics in Gen.Double[-1, 500].Array[0, 5]
            select new PricingInput(current, 8, rented, TimeSpan.FromHours(idleHours), TimeSpan.FromHours(busyHours),
                sinceChange is { } m ? Now.AddMinutes(-m) : null, Now,
                new MarketSnapshot(Now.AddMinutes(-age), nan ? [.. peers, double.NaN] : peers, peers.Length, 0, 0, 0.75, "configured",
                    metrics.Select((v, i) => (Key: 10 + (20 * i), Value: v)).ToDictionary(x => x.Key, x => x.Value), 500, "random"));

        Gen.Select(options, inputs).Sample((o, input) =>
        {
            var d = PricingEngine.Decide(input, o);
            if (d.Action == PriceAction.Change)
            {
                return d.Price is { } p && p >= o.Floor && p <= o.Ceiling && double.IsFinite(p);
            }

            return d.Price == (input.CurrentPrice is { } c && double.IsFinite(c) && c > 0 ? c : null);
        }, iter: 20_000);
    }

    [Fact]
    public void A_step_never_moves_an_in_bounds_price_by_more_than_the_maximum_change()
    {
        var gen =
            from floor in Gen.Double[0.01, 1]
            from width in Gen.Double[0.1, 5]
            from maxStep in Gen.Double[0.02, 0.5]
            from current in Gen.Double[0, 1]
            from target in Gen.Double[0.001, 100]
            select (floor, width, maxStep, current, target);
        gen.Sample(t =>
        {
            var o = new PricingOptions { Strategy = PricingStrategy.Fixed, FixedPrice = t.target, Floor = t.floor, Ceiling = t.floor + t.width, MaxChangePerStep = t.maxStep, MinChange = 0, Cooldown = TimeSpan.Zero };
            var current = t.floor + (t.current * t.width);
            var d = PricingEngine.Decide(new PricingInput(current, 8, 0, TimeSpan.Zero, TimeSpan.Zero, null, Now, null), o);
            return d.Action == PriceAction.Hold || Math.Abs(d.Price!.Value - current) <= (current * t.maxStep) + 0.0001;
        }, iter: 10_000);
    }
}
