using VastHostAgent.Economics;
using VastHostAgent.Gpu;
using VastHostAgent.Vast;

namespace VastHostAgent.Tests.Economics;

/// <summary>Energy, power cost, revenue, margin and break-even from successive GPU samples and Vast's earnings.</summary>
public sealed class EconomicsMeterTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.Parse("2026-12-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    internal static GpuReading Reading(int index, double? watts, double? energyJoules = null, double? limit = 450) => new()
    {
        Identity = new GpuIdentity(index, $"GPU-{index:D4}", "RTX 4090", $"00000000:{index + 1:X2}:00.0", index, null, null),
        PowerUsageWatts = watts,
        PowerLimitWatts = limit,
        EnergyConsumedJoules = energyJoules,
    };

    private static GpuSample Sample(params GpuReading[] gpus) => new() { NvmlUp = true, Gpus = gpus };

    private static EconomicsOptions Options(Action<EconomicsOptions>? change = null)
    {
        var o = new EconomicsOptions { Enabled = true, TimeZone = "UTC", PricePerKwh = 0.30, OverheadWatts = 200, PowerUsageEffectiveness = 1.0 };
        change?.Invoke(o);
        return o;
    }

    [Fact]
    public void Energy_is_counted_from_the_counter_and_a_driver_reset_is_carried_over()
    {
        var meter = new EconomicsMeter(Options(o => o.OverheadWatts = 0), 0.75);
        meter.Step(Sample(Reading(0, 300, energyJoules: 1_000_000)), null, T0);
        var second = meter.Step(Sample(Reading(0, 300, energyJoules: 1_360_000)), null, T0.AddMinutes(20)); // +360 kJ = 0.1 kWh
        Assert.Equal(360_000, second.Gpus[0].EnergyJoules, 3);
        Assert.False(second.Gpus[0].Estimated);
        Assert.Equal(0.1 * 0.30, second.CostTotal, 9);

        // The driver reloads: the counter starts again near zero. What it shows is what was used since.
        var third = meter.Step(Sample(Reading(0, 300, energyJoules: 90_000)), null, T0.AddMinutes(25));
        Assert.Equal(450_000, third.Gpus[0].EnergyJoules, 3);
        Assert.Equal(0.125 * 0.30, third.CostTotal, 9);
    }

    [Fact]
    public void Without_an_energy_counter_power_times_time_is_counted_and_marked_estimated()
    {
        var meter = new EconomicsMeter(Options(o => o.OverheadWatts = 0), 0.75);
        meter.Step(Sample(Reading(0, 400)), null, T0);
        var s = meter.Step(Sample(Reading(0, 400)), null, T0.AddMinutes(3)); // 400 W × 180 s
        Assert.Equal(72_000, s.Gpus[0].EnergyJoules, 3);
        Assert.True(s.Gpus[0].Estimated);
    }

    [Fact]
    public void Cost_per_hour_includes_the_overhead_and_PUE_and_break_even_is_per_GPU()
    {
        var meter = new EconomicsMeter(Options(o => o.PowerUsageEffectiveness = 1.1), 0.75);
        var s = meter.Step(Sample(Reading(0, 300), Reading(1, 100)), null, T0);
        var watts = (400 * 1.1) + 200;
        Assert.Equal(watts, s.MachineWatts!.Value, 9);
        Assert.Equal(watts / 1000 * 0.30, s.CostPerHour!.Value, 9);
        Assert.Equal(300 * 1.1 / 1000 * 0.30, s.Gpus[0].CostPerHour!.Value, 9);
        Assert.Equal(watts / 1000 * 0.30 / 2, s.BreakEvenListed!.Value, 9);
        Assert.Equal(s.BreakEvenListed!.Value / 0.75, s.BreakEvenRenter!.Value, 9);
        Assert.Equal(watts / 1000 * 24 * 0.30, s.CostPerDay!.Value, 9);

        // Under load: the power limit × PUE plus half the overhead, at the (flat) peak.
        Assert.Equal(((450 * 1.1) + 100) / 1000 * 0.30, s.Load!.LoadCostPerGpuHour, 9);
        Assert.Contains("450 W limit × PUE 1.10 + 200 W overhead / 2", s.Load.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void The_load_cost_uses_the_peak_of_a_time_of_use_tariff()
    {
        var meter = new EconomicsMeter(Options(o =>
        {
            o.OverheadWatts = 0;
            o.Schedule = [new TariffPeriodOptions { Days = "daily", From = "17:00", To = "21:00", PricePerKwh = 0.60 }];
        }), 0.75);
        var s = meter.Step(Sample(Reading(0, 300)), null, T0); // 10:00 UTC: off-peak
        Assert.Equal(0.30, s.DollarsPerKwh);
        Assert.Equal(0.450 * 0.60, s.Load!.LoadCostPerGpuHour, 9);
        Assert.Contains("the schedule's peak", s.Load.Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public void Revenue_is_the_mean_of_complete_days_and_margin_subtracts_the_day_cost()
    {
        var today = (long)Math.Floor(T0.ToUnixTimeSeconds() / 86400.0);
        var vast = new VastState
        {
            Machine = new VastMachine { Id = 1, NumGpus = 2, ListedGpuCost = 0.50 },
            Earnings = new VastEarnings
            {
                PerDay =
                [
                    new VastEarningsRow { Day = today, GpuEarn = 3 },
                    new VastEarningsRow { Day = today - 1, GpuEarn = 10, StoEarn = 2 },
                    new VastEarningsRow { Day = today - 2, GpuEarn = 8 },
                ],
            },
        };
        var meter = new EconomicsMeter(Options(o => o.OverheadWatts = 0), 0.75);
        var s = meter.Step(Sample(Reading(0, 500), Reading(1, 500)), vast, T0);
        Assert.Equal(10, s.RevenuePerDay!.Value, 9);
        Assert.Equal(2, s.RevenueDays);
        Assert.Equal(3, s.RevenueToday!.Value, 9);
        Assert.Equal(10 - (1.0 * 24 * 0.30), s.MarginPerDay!.Value, 9);
        Assert.Equal(0.50 - (0.450 * 0.30), s.MarginPerGpuHour!.Value, 9);
    }

    [Fact]
    public void Today_restarts_at_local_midnight()
    {
        var meter = new EconomicsMeter(Options(o => { o.OverheadWatts = 1000; o.TimeZone = "Asia/Tokyo"; }), 0.75); // UTC+9: midnight is 15:00 UTC
        meter.Step(Sample(), null, DateTimeOffset.Parse("2026-12-01T14:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var before = meter.Step(Sample(), null, DateTimeOffset.Parse("2026-12-01T14:59:00Z", System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(before.CostToday > 0);
        var after = meter.Step(Sample(), null, DateTimeOffset.Parse("2026-12-01T15:01:00Z", System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(1.0 * 2 / 60 * 0.30, after.CostToday, 9); // only the two minutes since midnight (the step spanning it counts to the new day)
        Assert.True(after.CostTotal > before.CostTotal);
    }

    [Fact]
    public void Without_NVML_nothing_is_costed_and_nothing_throws()
    {
        var meter = new EconomicsMeter(Options(), 0.75);
        var s = meter.Step(GpuSample.Unavailable("library missing"), null, T0);
        Assert.Null(s.CostPerHour);
        Assert.Null(s.Load);
        Assert.Null(s.MarginPerDay);
        Assert.Empty(s.Gpus);
    }
}
