using VastEmulator;
using VastHostAgent.Tests.Maintenance;

namespace VastHostAgent.Tests.Management;

/// <summary>
/// The offer's end date rolls with Vast's own <c>duration</c> (the server moves it to now + duration daily): a
/// listing in sync needs no periodic create_asks, whatever the time; a maintenance window turns it into a fixed
/// end date at the window's start, and the rolling duration comes back after the window.
/// </summary>
public sealed class RollingEndDateTests
{
    private const double ThirtyDays = 30 * 86400;

    [Fact]
    public async Task Months_pass_with_one_create_asks_that_sets_the_duration_and_none_after_it()
    {
        await using var rig = await MaintenanceRig.StartAsync(new() { ["management:defaultJob:mode"] = "unmanaged" });
        await rig.ReconcileAsync();
        var before = rig.Requests(Endpoints.CreateAsks);
        var rollingSince = (DateTimeOffset?)null;

        // Ninety days, one reconcile every 12 hours. A fixed end date (30 days, refreshed below 7) needs a
        // create_asks every 23 days; the listing's fixed end date is switched to the duration at its first refresh,
        // and from then on Vast keeps the end date about 30 days ahead by itself.
        for (var day = 0.5; day <= 90; day += 0.5)
        {
            await rig.ReconcileAtAsync(rig.Now.AddHours(12));
            Assert.True(rig.Listed, $"unlisted on day {day}");
            if (rig.Machine["duration"] is { } duration)
            {
                Assert.Equal(ThirtyDays, duration.GetValue<double>());
                rollingSince ??= rig.Now;
                Assert.InRange(rig.EndDate!.Value - rig.Now.ToUnixTimeSeconds(), ThirtyDays - 86400, ThirtyDays + 5);
            }
        }

        Assert.NotNull(rollingSince);
        Assert.True(rollingSince < MaintenanceRig.DefaultStart.AddDays(30), $"the duration was set only on {rollingSince:O}");
        Assert.Equal(before + 1, rig.Requests(Endpoints.CreateAsks));
    }

    [Fact]
    public async Task A_window_fixes_the_end_date_at_its_start_and_the_rolling_duration_returns_after_it()
    {
        var start = MaintenanceRig.DefaultStart.AddHours(4);
        await using var rig = await MaintenanceRig.StartAsync(new()
        {
            ["management:defaultJob:mode"] = "unmanaged",
            ["maintenance:windows:0:id"] = "w1",
            ["maintenance:windows:0:start"] = start.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            ["maintenance:windows:0:duration"] = "02:00:00",
            ["maintenance:windows:0:category"] = "power",
        });
        await rig.ReconcileAsync();
        Assert.Equal(start.ToUnixTimeSeconds(), rig.EndDate);   // fixed: no new contract outlives the window
        Assert.Null(rig.Machine["duration"]);

        await rig.ReconcileAtAsync(start.AddHours(-2));            // the notice period: scheduled on Vast
        await rig.ReconcileAtAsync(start);                         // in maintenance
        Assert.False(rig.Listed);
        await rig.ReconcileAtAsync(start.AddHours(2));             // done: listed again, rolling again
        Assert.True(rig.Listed);
        Assert.Equal(ThirtyDays, rig.Machine["duration"]!.GetValue<double>());
        Assert.InRange(rig.EndDate!.Value - rig.Now.ToUnixTimeSeconds(), ThirtyDays - 600, ThirtyDays + 5);
    }
}
