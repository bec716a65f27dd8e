using CsCheck;
using VastHostAgent.Economics;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;
using VastHostAgent.Management;
using VastHostAgent.Vast;

namespace VastHostAgent.Tests.Economics;

/// <summary>
/// The powerCost min bid and the break-even price guard, over random prices, draws, tariffs and configurations:
/// whatever the market says, the agent never sets an on-demand price below a rented GPU-hour's electricity, and the
/// min bid never drops below it either (unless the on-demand price itself caps it).
/// </summary>
public sealed class PowerCostGuardTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2026-12-01T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static RigPowerCost Load(double watts, int gpus, double overhead, double pue, double tariff)
    {
        var meter = new EconomicsMeter(new EconomicsOptions { Enabled = true, TimeZone = "UTC", PricePerKwh = tariff, OverheadWatts = overhead, PowerUsageEffectiveness = pue }, 0.75);
        var readings = Enumerable.Range(0, gpus).Select(i => EconomicsMeterTests.Reading(i, watts / 2, limit: watts)).ToArray();
        return meter.Step(new GpuSample { NvmlUp = true, Gpus = readings }, null, Now).Load!;
    }

    private static VastMachine Machine(double? price, double? minBid) => new()
    {
        Id = 48211,
        Hostname = "rig-01",
        NumGpus = 8,
        GpuName = "RTX 4090",
        Listed = true,
        ListedGpuCost = price,
        MinBidPrice = minBid,
        ListedMinGpuCount = 1,
        EndDate = Now.AddDays(20).ToUnixTimeSeconds(),
        GpuOccupancy = "x x x x x x x x",
    };

    [Fact]
    public void No_price_set_is_below_the_break_even_and_the_min_bid_covers_the_power_cost()
    {
        var gen =
            from watts in Gen.Double[50, 1000]
            from gpus in Gen.Int[1, 10]
            from overhead in Gen.Double[0, 3000]
            from pue in Gen.Double[1, 3]
            from tariff in Gen.Double[0, 5]
            from fixedPrice in Gen.Double[0.001, 5]
            from current in Gen.Double[0.001, 5].Nullable()
            from minBid in Gen.Double[0, 5].Nullable()
            from floor in Gen.Double[0.001, 1]
            from width in Gen.Double[0.01, 20]
            from maxStep in Gen.Double[0.01, 1]
            from factor in Gen.Double[1, 20]
            from rented in Gen.Int[0, 8]
            from allow in Gen.Bool
            select (watts, gpus, overhead, pue, tariff, fixedPrice, current, minBid, floor, width, maxStep, factor, rented, allow);

        gen.Sample(t =>
        {
            var load = Load(t.watts, t.gpus, t.overhead, t.pue, t.tariff);
            var o = new ManagementOptions
            {
                Pricing = new PricingOptions
                {
                    Strategy = PricingStrategy.Fixed,
                    FixedPrice = t.fixedPrice,
                    Floor = t.floor,
                    Ceiling = t.floor + t.width,
                    MaxChangePerStep = t.maxStep,
                    MinChange = 0,
                    Cooldown = TimeSpan.Zero,
                    AllowBelowBreakEven = t.allow,
                },
                MinBid = new MinBidOptions { Mode = MinBidMode.PowerCost, PowerCostFactor = t.factor, Floor = 0.01 },
            };
            var machine = Machine(t.current, t.minBid);
            var price = PricingEngine.Decide(new PricingInput(t.current, 8, t.rented, TimeSpan.Zero, TimeSpan.Zero, null, Now, null, load.LoadCostPerGpuHour), o.Pricing);
            var plan = ListingPlanner.Plan(machine, price, o, new ManagementState(), null, Now, null, load);
            var onDemand = price.Action == PriceAction.Change ? price.Price : t.current;
            var planned = plan.Items.Single(i => i.Field == "min bid");
            var bid = double.Parse(planned.Desired.TrimStart('$'), System.Globalization.CultureInfo.InvariantCulture);

            // 1. The price guard: a price the agent sets is never below the break-even (unless allowed).
            if (price.Action == PriceAction.Change && !t.allow && price.Price < load.LoadCostPerGpuHour - 1e-12)
            {
                return false;
            }

            // 2. The min bid: at least the power cost × factor, unless the on-demand price caps it (Vast takes no min bid above it).
            var wanted = Math.Max(0.01, load.LoadCostPerGpuHour * t.factor);
            // A capped bid is the on-demand price rounded down to 4 decimals: never above it, not even by rounding.
            return onDemand is { } cap && cap < wanted ? bid <= cap + 1e-12 && bid > cap - 0.0001 - 1e-12 : bid >= wanted - 1e-9;
        }, iter: 20_000);
    }

    /// <summary>
    /// The same guards against electricity worked out here, not by the meter: random time-of-use tariffs (up to four
    /// periods on random weekdays and hours, in a random zone and currency), GPUs with different power limits, a
    /// market of random peers and random instants of the week. At no instant may one GPU-hour at the rig's highest
    /// power limit (× PUE, plus its share of the overhead) cost more than a price the agent sets, or than the min bid
    /// it plans (unless the on-demand price caps that).
    /// </summary>
    [Fact]
    public void Against_a_time_of_use_tariff_no_hour_of_the_week_costs_more_than_a_price_the_agent_sets()
    {
        string[] zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Adelaide"];
        string[] days = ["daily", "mon-fri", "sat,sun", "tue", "fri-mon"];
        var periods =
            from d in Gen.Int[0, days.Length - 1]
            from start in Gen.Int[0, 47]
            from to in Gen.Int[0, 48]
            from price in Gen.Double[0, 1.2]
            select new TariffPeriodOptions { Days = days[d], From = Half(start), To = Half(to), PricePerKwh = price };
        var gen =
            from zone in Gen.Int[0, zones.Length - 1]
            from flat in Gen.Double[0, 1.2]
            from schedule in periods.Array[0, 4]
            from unit in Gen.Double[0.5, 4]
            from limits in Gen.Double[50, 1000].Array[1, 10]
            from overhead in Gen.Double[0, 3000]
            from pue in Gen.Double[1, 3]
            from peers in Gen.Double[0.01, 6].Array[0, 40]
            from strategy in Gen.Int[0, 1]
            from fixedPrice in Gen.Double[0.001, 5]
            from current in Gen.Double[0.001, 5].Nullable()
            from floor in Gen.Double[0.001, 1]
            from width in Gen.Double[0.01, 20]
            from factor in Gen.Double[1, 5]
            from minutes in Gen.Int[0, (7 * 24 * 60) - 1]
            select (zone, flat, schedule, unit, limits, overhead, pue, peers, strategy, fixedPrice, current, floor, width, factor, minutes);

        gen.Sample(t =>
        {
            var economics = new EconomicsOptions
            {
                Enabled = true,
                TimeZone = zones[t.zone],
                PricePerKwh = t.flat,
                Schedule = [.. t.schedule],
                DollarsPerUnit = t.unit,
                OverheadWatts = t.overhead,
                PowerUsageEffectiveness = t.pue,
            };
            var meter = new EconomicsMeter(economics, 0.75);
            var at = Now.AddMinutes(t.minutes);
            var readings = t.limits.Select((limit, i) => EconomicsMeterTests.Reading(i, limit / 3, limit: limit)).ToArray();
            var load = meter.Step(new GpuSample { NvmlUp = true, Gpus = readings }, null, at).Load!;

            // Worked out here: the tariff at this instant (from the meter's schedule) must be below the peak the
            // configuration allows, and one GPU-hour at the highest limit costs at most that.
            var tariffNow = meter.Tariff.DollarsPerKwhAt(at);
            var peak = t.schedule.Select(p => p.PricePerKwh).Append(t.flat).Max() * t.unit;
            var kilowatts = ((t.limits.Max() * t.pue) + (t.overhead / t.limits.Length)) / 1000;
            var gpuHourNow = kilowatts * tariffNow;
            var gpuHourPeak = kilowatts * peak;
            if (tariffNow > peak + 1e-12 || Math.Abs(load.LoadCostPerGpuHour - gpuHourPeak) > 1e-9 * Math.Max(1, gpuHourPeak))
            {
                return false;
            }

            var pricing = new PricingOptions
            {
                Strategy = t.strategy == 0 ? PricingStrategy.Fixed : PricingStrategy.Market,
                FixedPrice = t.fixedPrice,
                Floor = t.floor,
                Ceiling = t.floor + t.width,
                MaxChangePerStep = 1,
                MinChange = 0,
                Cooldown = TimeSpan.Zero,
                Market = new MarketPricingOptions { MinPeers = 5 },
            };
            var market = new MarketSnapshot(at, t.peers, t.peers.Length, 0, 0, 0.75, "configured", null, 0, "random");
            var price = PricingEngine.Decide(new PricingInput(t.current, 8, 0, TimeSpan.Zero, TimeSpan.Zero, null, at, market, load.LoadCostPerGpuHour), pricing);
            if (price.Action == PriceAction.Change && (price.Price is not { } set || set < gpuHourNow - 1e-12 || set < t.floor || set > t.floor + t.width))
            {
                return false;
            }

            var o = new ManagementOptions { Pricing = pricing, MinBid = new MinBidOptions { Mode = MinBidMode.PowerCost, PowerCostFactor = t.factor, Floor = 0.01 } };
            var plan = ListingPlanner.Plan(Machine(t.current, null), price, o, new ManagementState(), null, at, null, load);
            var bid = double.Parse(plan.Items.Single(i => i.Field == "min bid").Desired.TrimStart('$'), System.Globalization.CultureInfo.InvariantCulture);
            var onDemand = price.Action == PriceAction.Change ? price.Price : t.current;
            var wanted = Math.Max(0.01, gpuHourPeak * t.factor);
            return onDemand is { } cap && cap < wanted ? bid <= cap + 1e-12 : bid >= wanted - 1e-9 && bid >= gpuHourNow;
        }, iter: 10_000);

        static string Half(int halfHours) => $"{halfHours / 2:00}:{(halfHours % 2) * 30:00}";
    }

    [Fact]
    public void The_plan_explains_the_power_cost_min_bid()
    {
        var load = new RigPowerCost(0.1215, "450 W limit = 450 W at 0.27 $/kWh = 0.1215 $/GPU-h", Now);
        var o = new ManagementOptions { MinBid = new MinBidOptions { Mode = MinBidMode.PowerCost, PowerCostFactor = 1.5 } };
        var price = new PriceDecision(PriceAction.Hold, 0.40, 0.40, "fixed", "in_sync", "in sync", 0, null);
        var item = ListingPlanner.Plan(Machine(0.40, 0.10), price, o, new ManagementState(), null, Now, null, load).Items.Single(i => i.Field == "min bid");
        Assert.Equal(("$0.1823", "change"), (item.Desired, item.Action));
        Assert.Contains("power under load: 450 W limit", item.Explanation, StringComparison.Ordinal);
        Assert.Contains("× 1.5 = 0.1823", item.Explanation, StringComparison.Ordinal);

        var unknown = ListingPlanner.Plan(Machine(0.40, 0.10), price, o, new ManagementState(), null, Now, null, null).Items.Single(i => i.Field == "min bid");
        Assert.Equal(("keep", "power_cost_unknown"), (unknown.Action, unknown.Reason));
    }

    [Fact]
    public void A_market_price_below_the_break_even_is_lifted_to_it_and_explained()
    {
        var o = new PricingOptions { Strategy = PricingStrategy.Fixed, FixedPrice = 0.10, Floor = 0.05, Ceiling = 2, MinChange = 0, Cooldown = TimeSpan.Zero, MaxChangePerStep = 1 };
        var d = PricingEngine.Decide(new PricingInput(0.30, 8, 0, TimeSpan.Zero, TimeSpan.Zero, null, Now, null, 0.1801), o);
        Assert.Equal(PriceAction.Change, d.Action);
        Assert.Equal(0.1801, d.Price);
        Assert.Contains("below the break-even under load", d.Explanation, StringComparison.Ordinal);

        var above = PricingEngine.Decide(new PricingInput(0.30, 8, 0, TimeSpan.Zero, TimeSpan.Zero, null, Now, null, 3.0), o);
        Assert.Equal((PriceAction.Hold, "break_even_above_ceiling"), (above.Action, above.Reason));

        var allowed = PricingEngine.Decide(new PricingInput(0.30, 8, 0, TimeSpan.Zero, TimeSpan.Zero, null, Now, null, 0.1801), new PricingOptions
        {
            Strategy = PricingStrategy.Fixed,
            FixedPrice = 0.10,
            Floor = 0.05,
            Ceiling = 2,
            MinChange = 0,
            Cooldown = TimeSpan.Zero,
            MaxChangePerStep = 1,
            AllowBelowBreakEven = true,
        });
        Assert.Equal(0.10, allowed.Price);
    }
}
