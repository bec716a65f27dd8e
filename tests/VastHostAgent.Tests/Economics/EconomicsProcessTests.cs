using System.Globalization;
using VastEmulator;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Economics;

/// <summary>
/// The real agent with 8 simulated GPUs (150 + i W each, 450 W limit) and the emulator's earnings: the cost,
/// revenue, margin and break-even a host reads on /metrics, in <c>status</c> and in <c>plan</c>, worked out by hand.
/// </summary>
public sealed class EconomicsProcessTests : IAsyncLifetime
{
    private RunningEmulator _emulator = null!;

    public async Task InitializeAsync() =>
        _emulator = await EmulatorApp.StartAsync(new EmulatorOptions { RateLimitScale = 0.02, OfferCount = 200, SeedRentals = true, MachineHostnames = ["rig-01"] });

    public async Task DisposeAsync() => await _emulator.DisposeAsync();

    [Fact]
    public async Task Cost_revenue_margin_and_break_even_follow_the_draw_the_tariff_and_the_earnings()
    {
        var dir = TestEnvironment.NewTempDirectory("economics");
        var keyFile = Path.Combine(dir, "vast.key");
        await File.WriteAllTextAsync(keyFile, _emulator.ApiKey);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var nvml = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "8" });
        var config = new AgentConfig
        {
            WorkDirectory = dir,
            FakeNvmlState = nvml.Path,
            SampleInterval = "00:00:01",
            Environment =
            {
                ["VASTHOST_VAST__ENABLED"] = "true",
                ["VASTHOST_VAST__BASEURL"] = _emulator.BaseUrl.GetLeftPart(UriPartial.Authority),
                ["VASTHOST_VAST__APIKEYFILE"] = keyFile,
                ["VASTHOST_VAST__HOSTNAME"] = "rig-01",
                ["VASTHOST_VAST__POLLINTERVAL"] = "00:00:10",
                ["VASTHOST_VAST__SPACINGSCALE"] = "0.02",
                ["VASTHOST_VAST__DEFAULTSPACINGSECONDS"] = "1",
                ["VASTHOST_MANAGEMENT__ENABLED"] = "true",
                ["VASTHOST_MANAGEMENT__DRYRUN"] = "true",
                ["VASTHOST_MANAGEMENT__RECONCILEINTERVAL"] = "00:01:00",
                ["VASTHOST_MANAGEMENT__MINBID__MODE"] = "powerCost",
                ["VASTHOST_MANAGEMENT__MINBID__POWERCOSTFACTOR"] = "1.5",
                ["VASTHOST_ECONOMICS__ENABLED"] = "true",
                ["VASTHOST_ECONOMICS__PRICEPERKWH"] = "0.25",
                ["VASTHOST_ECONOMICS__TIMEZONE"] = "UTC",
                ["VASTHOST_ECONOMICS__OVERHEADWATTS"] = "200",
                ["VASTHOST_ECONOMICS__POWERUSAGEEFFECTIVENESS"] = "1.1",
            },
        };
        await using var agent = AgentProcess.Start(config);
        var m = await agent.ScrapeUntilAsync(
            e => e.Named("vasthost_economics_margin_dollars_per_day").Any() && e.Named("vasthost_economics_margin_dollars_per_gpu_hour").Any()
                && e.Named("vasthost_vast_earnings_dollars").Any(),
            "economics with Vast earnings", TimeSpan.FromSeconds(60));

        // Draw: 8 GPUs at 150..157 W = 1228 W, × PUE 1.1 + 200 W overhead = 1550.8 W; at 0.25 $/kWh.
        const double watts = 1228 * 1.1 + 200;
        const double perHour = watts / 1000 * 0.25;
        Assert.Equal(watts, m.Value("vasthost_economics_power_watts")!.Value, 6);
        Assert.Equal(perHour, m.Value("vasthost_economics_power_cost_dollars_per_hour")!.Value, 6);
        Assert.Equal(perHour * 24, m.Value("vasthost_economics_power_cost_dollars_per_day")!.Value, 6);
        Assert.Equal(0.15 * 1.1 / 1000 * 0.25 * 1000, m.Value("vasthost_economics_gpu_power_cost_dollars_per_hour", ("gpu", "0"))!.Value, 6);
        Assert.Equal(8, m.Named("vasthost_economics_gpu_power_cost_dollars_per_hour").Count());
        Assert.Equal(1, m.Value("vasthost_economics_info", ("currency", "USD"), ("time_zone", "UTC"), ("tariff", "flat")));

        // Break-even: the rig's cost per hour over its 8 GPUs (host side), ÷ the 0.75 host share for renters.
        Assert.Equal(perHour / 8, m.Value("vasthost_economics_break_even_dollars_per_gpu_hour", ("side", "listed"))!.Value, 6);
        Assert.Equal(perHour / 8 / 0.75, m.Value("vasthost_economics_break_even_dollars_per_gpu_hour", ("side", "renter"))!.Value, 6);

        // Under load: 450 W × 1.1 + 200 W / 8 = 520 W → 0.13 $/GPU-h; the listed 0.337 leaves 0.207.
        Assert.Equal(0.13, m.Value("vasthost_economics_load_cost_dollars_per_gpu_hour")!.Value, 6);
        Assert.Equal(0.337 - 0.13, m.Value("vasthost_economics_margin_dollars_per_gpu_hour")!.Value, 6);

        // Revenue: the mean of Vast's complete days 1..6 (every kind), as the agent exports them; margin = revenue − cost.
        var days = m.Named("vasthost_vast_earnings_dollars")
            .Where(s => int.Parse(s.Label("days_ago"), CultureInfo.InvariantCulture) is >= 1 and <= 6)
            .GroupBy(s => s.Label("days_ago")).Select(g => g.Sum(s => s.Value)).ToList();
        Assert.Equal(6, days.Count);
        var revenue = m.Value("vasthost_economics_revenue_dollars_per_day")!.Value;
        Assert.Equal(days.Average(), revenue, 3);
        Assert.Equal(revenue - perHour * 24, m.Value("vasthost_economics_margin_dollars_per_day")!.Value, 3);

        // Energy counters rise with the draw, and a driver reset of NVML's counter does not take them back.
        var rising = await agent.ScrapeUntilAsync(e => e.Value("vasthost_economics_gpu_energy_joules_total", ("gpu", "0")) > 0, "energy counted");
        var before = rising.Value("vasthost_economics_gpu_energy_joules_total", ("gpu", "0"))!.Value;
        nvml.Set("gpu.0.energy_mj", "5");
        var reset = await agent.ScrapeUntilAsync(
            e => e.Value("vasthost_gpu_energy_consumed_joules_total", ("gpu", "0")) < 1 && e.Value("vasthost_economics_gpu_energy_joules_total", ("gpu", "0")) > before,
            "the driver's counter reset");
        var atReset = reset.Value("vasthost_economics_gpu_energy_joules_total", ("gpu", "0"))!.Value;
        nvml.Set("gpu.0.energy_mj", "60005"); // 60 J more after the reset
        var later = await agent.ScrapeUntilAsync(e => e.Value("vasthost_economics_gpu_energy_joules_total", ("gpu", "0")) > atReset + 1, "60 J after the reset");
        // 60 J, plus the 0.005 J the reset counter started at when the economics sample of `reset` predates it.
        Assert.InRange(later.Value("vasthost_economics_gpu_energy_joules_total", ("gpu", "0"))!.Value - atReset, 60 - 1e-6, 60.005 + 1e-6);
        Metrics.MetricsDocumentationTests.AssertDocumented(later);

        // status: the daemon's numbers in two lines.
        var status = await AgentProcess.RunToExitAsync(["status", "--config", Path.Combine(dir, "agent.json")], config.Environment);
        Assert.True(status.ExitCode == 0, status.Stdout + status.Stderr);
        Assert.Contains("Power: 1551 W costs $0.388/h, $9.30/day at 0.25 USD/kWh", status.Stdout, StringComparison.Ordinal);
        Assert.Contains($"Revenue: ${revenue.ToString("0.00", CultureInfo.InvariantCulture)}/day (mean of 6 day(s))", status.Stdout, StringComparison.Ordinal);
        Assert.Contains("$0.207/GPU-h rented", status.Stdout, StringComparison.Ordinal);
        Assert.Contains("Break-even: $0.048/GPU-h listed ($0.065 renter)", status.Stdout, StringComparison.Ordinal);

        // plan: the powerCost min bid, explained: 0.13 × 1.5 = 0.195.
        var plan = await AgentProcess.RunToExitAsync(["plan", "--config", Path.Combine(dir, "agent.json")], config.Environment);
        Assert.True(plan.ExitCode == 0, plan.Stdout + plan.Stderr);
        Assert.Contains("$0.1950", plan.Stdout, StringComparison.Ordinal);
        Assert.Contains("power under load: 450 W limit × PUE 1.10 + 200 W overhead / 8 = 520 W at 0.25 $/kWh = 0.13 $/GPU-h; × 1.5 = 0.195", plan.Stdout, StringComparison.Ordinal);
    }
}
