using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using VastEmulator;
using VastHostAgent.Maintenance;
using VastHostAgent.Management;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Maintenance;

/// <summary>
/// Maintenance windows through their whole life against the emulator on a shared fake clock: what Vast
/// shows at each step (offer end date, dnotify, listing, default job) and what the agent persisted.
/// </summary>
public sealed class MaintenanceWindowTests
{
    private static readonly DateTimeOffset T0 = MaintenanceRig.DefaultStart;               // 2026-11-30 08:00Z
    private static readonly DateTimeOffset Start = T0.AddHours(4);                          // 12:00Z
    private static readonly DateTimeOffset End = Start.AddHours(2);                         // 14:00Z

    private static Dictionary<string, string?> Window(string id = "w1", DateTimeOffset? start = null, string duration = "02:00:00", int index = 0) => new()
    {
        [$"maintenance:windows:{index}:id"] = id,
        [$"maintenance:windows:{index}:start"] = (start ?? Start).ToString("o", CultureInfo.InvariantCulture),
        [$"maintenance:windows:{index}:duration"] = duration,
        [$"maintenance:windows:{index}:category"] = "gpu",
    };

    private static Dictionary<string, string?> With(Dictionary<string, string?> a, Dictionary<string, string?> b) =>
        a.Concat(b).ToDictionary(kv => kv.Key, kv => kv.Value);

    private static int Mutations(MaintenanceRig rig) => rig.Emulator.State.Requests.Count(r => r.Mutation);

    [Fact]
    public async Task Without_rentals_a_window_is_clamped_scheduled_carried_out_and_the_listing_restored()
    {
        await using var rig = await MaintenanceRig.StartAsync(Window());

        // Planned: the offer end date is clamped to the window's start, so no new contract can outlive it.
        await rig.ReconcileAsync();
        Assert.Equal(Start.ToUnixTimeSeconds(), rig.EndDate);
        Assert.Equal(MaintenanceRig.JobImage, rig.DefaultJob);
        await rig.ReconcileAtAsync(T0.AddMinutes(5));
        Assert.Equal(WindowState.Clamped, rig.Window("w1").State);
        Assert.Equal(0, rig.VastWindows);

        // Not yet within the notice period: nothing on Vast.
        var quiet = Mutations(rig);
        await rig.ReconcileAtAsync(Start.AddHours(-2).AddMinutes(-1));
        Assert.Equal(quiet, Mutations(rig));

        // Notice period reached: scheduled on Vast (renters notified).
        await rig.ReconcileAtAsync(Start.AddHours(-2));
        Assert.Equal(WindowState.Scheduled, rig.Window("w1").State);
        Assert.Equal(1, rig.VastWindows);
        Assert.Equal(1, rig.Applied(Endpoints.Dnotify));
        var metrics = Exposition.Parse(await rig.Host.MetricsAsync());
        Assert.Equal(Start.ToUnixTimeSeconds(), metrics.Value("vasthost_maintenance_next_start_timestamp_seconds"));
        Assert.Equal(End.ToUnixTimeSeconds(), metrics.Value("vasthost_maintenance_next_end_timestamp_seconds"));
        Assert.Equal(1, metrics.Value("vasthost_maintenance_windows", ("state", "scheduled")));
        Assert.Equal(0, metrics.Value("vasthost_maintenance_in_maintenance"));
        Metrics.MetricsDocumentationTests.AssertDocumented(metrics);
        var lint = await Promtool.CheckMetricsAsync(metrics.Text);
        Assert.True(lint.ExitCode == 0, lint.Output);

        // Start: in maintenance: the default job is removed and the machine is off the market.
        await rig.ReconcileAtAsync(Start);
        Assert.Equal(WindowState.Active, rig.Window("w1").State);
        Assert.False(rig.Listed);
        Assert.Null(rig.DefaultJob);
        Assert.Equal(1, Exposition.Parse(await rig.Host.MetricsAsync()).Value("vasthost_maintenance_in_maintenance"));
        var during = Mutations(rig);
        await rig.ReconcileAtAsync(Start.AddHours(1));
        Assert.Equal(during, Mutations(rig));

        // End: listing, rolling end date and default job restored.
        await rig.ReconcileAtAsync(End);
        Assert.Equal(WindowState.Done, rig.Window("w1").State);
        Assert.True(rig.Listed);
        Assert.InRange(rig.EndDate!.Value, End.AddDays(30).ToUnixTimeSeconds() - 60, End.AddDays(30).ToUnixTimeSeconds() + 60);
        Assert.Equal(MaintenanceRig.JobImage, rig.DefaultJob);
        metrics = Exposition.Parse(await rig.Host.MetricsAsync());
        Assert.Equal(0, metrics.Value("vasthost_maintenance_in_maintenance"));
        Assert.Empty(metrics.Named("vasthost_maintenance_next_start_timestamp_seconds"));

        // Back in sync: nothing more happens.
        var after = Mutations(rig);
        for (var i = 1; i <= 5; i++)
        {
            await rig.ReconcileAtAsync(End.AddMinutes(5 * i));
        }

        Assert.Equal(after, Mutations(rig));
        Assert.Equal(1, rig.Applied(Endpoints.Dnotify));
        Assert.Equal(0, rig.Requests(Endpoints.CancelMaint));
        Assert.Equal(1, rig.Applied(Endpoints.RemoveDefjob));
        Assert.True(rig.Applied(Endpoints.Unlist) <= 1);
        Assert.Equal(["planned", "clamped", "scheduled", "active", "done"], rig.Window("w1").History.Select(h => h.To.ToString()));
        Assert.Contains(rig.Journal(), e => e.Kind == "maintenance window" && e.Action == "done" && e.Explanation!.Contains("restored", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_offer_stays_clamped_to_the_start_in_every_state_until_the_window_is_active()
    {
        // Defect 12.1: right after clamped -> scheduled the end date went back to now + 30 days.
        await using var rig = await MaintenanceRig.StartAsync(Window());
        await rig.ReconcileAsync();
        await rig.ReconcileAtAsync(T0.AddMinutes(5));
        Assert.Equal(WindowState.Clamped, rig.Window("w1").State);
        await rig.ReconcileAtAsync(Start.AddHours(-2));
        Assert.Equal(WindowState.Scheduled, rig.Window("w1").State);
        foreach (var minutesBefore in new[] { 115, 90, 60, 30, 11, 9, 5, 1 })
        {
            await rig.ReconcileAtAsync(Start.AddMinutes(-minutesBefore));
            Assert.Equal(WindowState.Scheduled, rig.Window("w1").State);
            Assert.True(rig.EndDate <= Start.ToUnixTimeSeconds(), $"{minutesBefore} min before the start the offer ends {rig.EndDate}, after the window's start {Start.ToUnixTimeSeconds()}");
            var plan = await rig.PlanAsync();
            var end = Assert.Single(plan.Plan!.Items, i => i.Field == "end date");
            Assert.Equal("keep", end.Action);
        }
    }

    [Fact]
    public async Task A_window_added_minutes_before_its_start_unlists_the_machine_and_relists_it_afterwards()
    {
        // Too close to clamp the offer (it runs for weeks, and an end date seconds away would be in the past by
        // the time Vast applies it): it is not extended, and at the start the agent takes the machine off the market.
        await using var rig = await MaintenanceRig.StartAsync();
        await rig.ReconcileAsync();
        Assert.True(rig.EndDate > End.ToUnixTimeSeconds());
        var endBefore = rig.EndDate;
        var start = rig.Now.AddSeconds(30);
        new MaintenanceStore(rig.StateDirectory).Update(b => b with
        {
            Windows = [new MaintenanceWindow { Id = "late", Source = WindowSource.Cli, Start = start, Duration = TimeSpan.FromHours(1), Category = "power" }],
        });
        await rig.ReconcileAsync();
        Assert.Equal(WindowState.Scheduled, rig.Window("late").State);
        Assert.True(rig.Listed);
        Assert.Equal(endBefore, rig.EndDate);

        await rig.ReconcileAtAsync(start);
        Assert.Equal(WindowState.Active, rig.Window("late").State);
        Assert.False(rig.Listed);
        Assert.Null(rig.DefaultJob);
        Assert.Equal(1, rig.Applied(Endpoints.Unlist));
        Assert.Contains(rig.Journal(), e => e.Kind == "listing" && e.Reason == "unlist" && e.Explanation!.Contains("maintenance window late", StringComparison.Ordinal));

        await rig.ReconcileAtAsync(start.AddHours(1));
        Assert.Equal(WindowState.Done, rig.Window("late").State);
        Assert.True(rig.Listed);
        Assert.Equal(MaintenanceRig.JobImage, rig.DefaultJob);
        Assert.Equal(1, rig.Applied(Endpoints.Dnotify));
        Assert.Equal(1, rig.Applied(Endpoints.Unlist));
    }

    [Fact]
    public async Task Start_and_end_hooks_run_once_with_the_window_in_their_environment_and_a_hanging_hook_is_killed()
    {
        var dir = TestEnvironment.NewTempDirectory("hooks");
        await using var rig = await MaintenanceRig.StartAsync(With(Window(), new()
        {
            ["maintenance:startHook"] = $"echo \"$VASTHOST_WINDOW_EVENT $VASTHOST_WINDOW_ID $VASTHOST_WINDOW_CATEGORY\" >> {dir}/hooks.log; echo stopping services",
            ["maintenance:endHook"] = $"echo \"$VASTHOST_WINDOW_EVENT $VASTHOST_WINDOW_ID\" >> {dir}/hooks.log; sleep 30",
            ["maintenance:hookTimeout"] = "00:00:02",
        }));
        foreach (var at in new[] { T0, Start.AddHours(-2), Start, Start.AddMinutes(30), End, End.AddMinutes(5) })
        {
            await rig.ReconcileAtAsync(at);
        }

        Assert.Equal(["start w1 gpu", "end w1"], File.ReadAllLines(Path.Combine(dir, "hooks.log")));
        var hooks = rig.Journal().Where(e => e.Kind == "maintenance hook").ToList();
        Assert.Equal(2, hooks.Count);
        Assert.Contains("exit 0: stopping services", hooks[0].Explanation, StringComparison.Ordinal);
        Assert.Contains("killed after 2 s", hooks[1].Explanation, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_hook_still_running_when_the_agent_stops_is_killed_instead_of_outliving_the_stop()
    {
        // Issue 12: a hook could run for its whole timeout (5 min) past a stop.
        var dir = TestEnvironment.NewTempDirectory("hooks-stop");
        var pidFile = Path.Combine(dir, "hook.pid");
        await using var rig = await MaintenanceRig.StartAsync(With(Window(), new()
        {
            ["maintenance:startHook"] = $"echo $$ > {pidFile}; exec sleep 300",
            ["maintenance:hookTimeout"] = "01:00:00",
        }));
        await rig.ReconcileAtAsync(T0);
        await rig.ReconcileAtAsync(Start.AddHours(-2));
        rig.Clock.Advance(Start - rig.Now);

        using var stop = new CancellationTokenSource();
        var reconcile = rig.Host.Services.GetRequiredService<VastHostAgent.Management.Reconciler>().RunAsync(apply: true, dryRun: false, stop.Token);
        await rig.PumpUntilAsync(() => File.Exists(pidFile) && new FileInfo(pidFile).Length > 0, "the start hook to run");

        var pid = int.Parse(File.ReadAllText(pidFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var stopped = System.Diagnostics.Stopwatch.StartNew();
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reconcile);
        Assert.True(stopped.Elapsed < TimeSpan.FromSeconds(10), $"the reconcile took {stopped.Elapsed} to stop");
        await Support.Poll.UntilAsync(() => !File.Exists($"/proc/{pid}/stat") || File.ReadAllText($"/proc/{pid}/stat").Split(' ')[2] == "Z",
            TimeSpan.FromSeconds(10), "the hook process to be gone");
        Assert.Contains(rig.Journal(), e => e.Kind == "maintenance hook" && e.Explanation!.Contains("killed: the agent is stopping", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_contract_running_past_the_start_defers_the_window_visibly_and_it_runs_after_the_contract()
    {
        await using var rig = await MaintenanceRig.StartAsync(Window());
        var contractEnd = Start.AddHours(5).AddMinutes(20);   // 17:20Z
        rig.Emulator.State.StartRental(rig.MachineId, new RentalRequest("on-demand", 2, EndDate: contractEnd.ToUnixTimeSeconds()));

        await rig.ReconcileAsync();
        await rig.ReconcileAtAsync(Start.AddHours(-2));
        var w = rig.Window("w1");
        Assert.Equal(WindowState.Deferred, w.State);
        Assert.Equal(DateTimeOffset.Parse("2026-11-30T18:00:00Z", CultureInfo.InvariantCulture), w.Start);
        Assert.Equal(Start, w.OriginalStart);
        Assert.Equal(1, w.Deferrals);
        Assert.Contains("a client contract runs until 2026-11-30 17:20Z: deferred from 2026-11-30 12:00Z to 2026-11-30 18:00Z", w.Why, StringComparison.Ordinal);
        Assert.Equal(0, rig.Requests(Endpoints.Dnotify));
        var metrics = Exposition.Parse(await rig.Host.MetricsAsync());
        Assert.Equal(1, metrics.Value("vasthost_maintenance_deferrals_total"));
        Assert.Equal(1, metrics.Value("vasthost_maintenance_windows", ("state", "deferred")));
        Assert.Contains(rig.Journal(), e => e.Kind == "maintenance window" && e.Action == "deferred");

        // maint list shows why.
        var status = MaintenanceStatus.Read(rig.Host.Services, rig.Now);
        Assert.Contains("deferred from 2026-11-30 12:00Z", Assert.Single(status.Windows).Why, StringComparison.Ordinal);

        // The offer end date follows the new start; the original start passes without maintenance.
        await rig.ReconcileAtAsync(Start.AddMinutes(1));
        Assert.Equal(WindowState.Deferred, rig.Window("w1").State);
        Assert.True(rig.Listed);
        Assert.Equal(rig.Window("w1").Start.ToUnixTimeSeconds(), rig.EndDate);

        // The contract ends at 17:20; at 18:00 - 2 h notice it is still running, yet it ends before the new start: no new deferral.
        await rig.ReconcileAtAsync(DateTimeOffset.Parse("2026-11-30T16:00:00Z", CultureInfo.InvariantCulture));
        Assert.Equal(WindowState.Scheduled, rig.Window("w1").State);
        await rig.ReconcileAtAsync(DateTimeOffset.Parse("2026-11-30T18:00:00Z", CultureInfo.InvariantCulture));
        Assert.Equal(WindowState.Active, rig.Window("w1").State);
        await rig.ReconcileAtAsync(DateTimeOffset.Parse("2026-11-30T20:00:00Z", CultureInfo.InvariantCulture));
        Assert.Equal(WindowState.Done, rig.Window("w1").State);
        Assert.Equal(1, rig.Applied(Endpoints.Dnotify));
        Assert.Equal(1, rig.Window("w1").Deferrals);
        Assert.True(rig.Listed);
    }

    [Fact]
    public async Task With_policy_proceed_the_window_keeps_its_start_and_the_renters_are_notified()
    {
        await using var rig = await MaintenanceRig.StartAsync(With(Window(), new() { ["maintenance:conflictPolicy"] = "proceed" }));
        rig.Emulator.State.StartRental(rig.MachineId, new RentalRequest("on-demand", 2, EndDate: Start.AddHours(5).ToUnixTimeSeconds()));

        await rig.ReconcileAsync();
        await rig.ReconcileAtAsync(Start.AddHours(-2));
        var w = rig.Window("w1");
        Assert.Equal(WindowState.Scheduled, w.State);
        Assert.Equal(Start, w.Start);
        Assert.Contains("renters until 2026-11-30 17:00Z notified (conflictPolicy proceed)", w.Why, StringComparison.Ordinal);
        Assert.Equal(1, rig.Applied(Endpoints.Dnotify));
        Assert.Equal(0, w.Deferrals);
    }

    public static TheoryData<string> CancelPoints => new() { "planned", "clamped", "scheduled", "active" };

    [Theory]
    [MemberData(nameof(CancelPoints))]
    public async Task Cancelling_at_any_state_restores_the_listing_and_cancels_on_Vast_only_what_was_scheduled_there(string at)
    {
        await using var rig = await MaintenanceRig.StartAsync(Window());
        var times = new Dictionary<string, DateTimeOffset>
        {
            ["planned"] = T0,
            ["clamped"] = T0.AddMinutes(5),
            ["scheduled"] = Start.AddHours(-2),
            ["active"] = Start,
        };
        foreach (var (state, time) in times.OrderBy(t => t.Value))
        {
            await rig.ReconcileAtAsync(time);
            if (state == at)
            {
                break;
            }
        }

        Assert.Equal(at, rig.Window("w1").State.ToString());
        rig.Cancel("w1");
        await rig.ReconcileAtAsync(rig.Now.AddMinutes(5));
        var w = rig.Window("w1");
        Assert.Equal(WindowState.Cancelled, w.State);
        var wasOnVast = at is "scheduled" or "active";
        Assert.Equal(wasOnVast ? 1 : 0, rig.Requests(Endpoints.CancelMaint));
        Assert.Equal(0, rig.VastWindows);
        Assert.Contains(wasOnVast ? "cancel_maint" : "listing restored", w.Why, StringComparison.Ordinal);

        // Restored: listed, the end date rolling again (no longer clamped to the window), the default job back.
        Assert.True(rig.Listed);
        Assert.True(rig.EndDate > End.AddDays(20).ToUnixTimeSeconds(), $"end date {rig.EndDate} still clamped");
        Assert.Equal(MaintenanceRig.JobImage, rig.DefaultJob);

        // And it stays cancelled: not scheduled again, nothing repeated.
        var after = Mutations(rig);
        await rig.ReconcileAtAsync(Start.AddMinutes(30));
        await rig.ReconcileAtAsync(End.AddMinutes(30));
        Assert.Equal(after, Mutations(rig));
        Assert.Equal(wasOnVast ? 1 : 0, rig.Requests(Endpoints.Dnotify));
    }

    [Fact]
    public async Task Cancel_maint_removes_every_window_on_Vast_so_the_agent_schedules_the_others_again()
    {
        var second = Start.AddHours(1).AddMinutes(30);
        await using var rig = await MaintenanceRig.StartAsync(With(Window("a"), Window("b", second, "01:00:00", 1)));
        await rig.ReconcileAsync();
        await rig.ReconcileAtAsync(second.AddHours(-2));
        Assert.Equal(WindowState.Scheduled, rig.Window("a").State);
        Assert.Equal(WindowState.Scheduled, rig.Window("b").State);
        Assert.Equal(2, rig.VastWindows);

        rig.Cancel("a");
        await rig.ReconcileAtAsync(rig.Now.AddMinutes(1));
        Assert.Equal(WindowState.Cancelled, rig.Window("a").State);
        Assert.Equal(WindowState.Planned, rig.Window("b").State);
        Assert.Contains("cancel_maint removed every window on Vast", rig.Window("b").Why, StringComparison.Ordinal);
        var report = await rig.ReconcileAtAsync(rig.Now.AddMinutes(1));
        Assert.True(rig.Window("b").State == WindowState.Scheduled, Explain(rig, "b", report));
        var onVast = Assert.Single(rig.Machine["machine_maintenance"]!.AsArray());
        Assert.Equal(second.ToUnixTimeSeconds(), onVast!["start_time"]!.GetValue<double>());
        Assert.Equal(3, rig.Applied(Endpoints.Dnotify));
        Assert.Equal(1, rig.Applied(Endpoints.CancelMaint));
    }

    [Fact]
    public async Task A_window_cancelled_in_the_Vast_console_is_respected_not_scheduled_again()
    {
        await using var rig = await MaintenanceRig.StartAsync(Window());
        await rig.ReconcileAsync();
        await rig.ReconcileAtAsync(Start.AddHours(-2));
        Assert.Equal(1, rig.VastWindows);

        await rig.Host.Client.CancelMaintenanceAsync(rig.MachineId, default);   // the host, by hand
        await rig.ReconcileAtAsync(Start.AddHours(-1));
        var w = rig.Window("w1");
        Assert.Equal(WindowState.Cancelled, w.State);
        Assert.Contains("cancelled outside the agent", w.Why, StringComparison.Ordinal);
        await rig.ReconcileAtAsync(Start);
        Assert.Equal(1, rig.Requests(Endpoints.Dnotify));
        Assert.True(rig.Listed);
    }

    [Fact]
    public async Task A_window_removed_from_the_configuration_is_cancelled_and_cancel_maint_sent()
    {
        await using var rig = await MaintenanceRig.StartAsync(Window());
        await rig.ReconcileAsync();
        await rig.ReconcileAtAsync(Start.AddHours(-2));
        Assert.Equal(WindowState.Scheduled, rig.Window("w1").State);

        // The configuration is read at start: a restart with the entry deleted is how a host removes it.
        await rig.RestartWithAsync(s => s.Where(kv => !kv.Key.StartsWith("maintenance:windows:", StringComparison.Ordinal)).ToDictionary(kv => kv.Key, kv => kv.Value));
        await rig.ReconcileAtAsync(Start.AddHours(-1));
        Assert.Equal(WindowState.Cancelled, rig.Window("w1").State);
        Assert.Contains("removed from the configuration", rig.Window("w1").Why, StringComparison.Ordinal);
        Assert.Equal(1, rig.Applied(Endpoints.CancelMaint));
        Assert.Equal(0, rig.VastWindows);
    }

    [Fact]
    public async Task In_dry_run_windows_are_decided_and_journaled_but_nothing_is_sent_and_nothing_moves()
    {
        await using var rig = await MaintenanceRig.StartAsync(Window());
        await rig.ReconcileAsync(dryRun: true);
        await rig.ReconcileAtAsync(Start.AddHours(-2), dryRun: true);
        await rig.ReconcileAtAsync(Start, dryRun: true);
        Assert.DoesNotContain(rig.Emulator.State.Requests, r => r.Mutation);
        Assert.Equal(WindowState.Planned, rig.Window("w1").State);
        var journal = rig.Journal();
        Assert.Contains(journal, e => e.Kind == "mutation" && e.Result == "dry_run" && e.Endpoint == "dnotify" && e.Explanation!.StartsWith("dnotify for window w1", StringComparison.Ordinal));
        Assert.Contains(journal, e => e.Kind == "end date" && e.Reason == "maintenance_cap");
    }

    [Fact]
    public async Task Each_transition_survives_a_restart_and_a_lost_dnotify_answer_is_never_resent()
    {
        await using var rig = await MaintenanceRig.StartAsync(Window());
        await rig.ReconcileAsync();
        await rig.RestartAsync();
        await rig.ReconcileAtAsync(T0.AddMinutes(5));
        Assert.Equal(WindowState.Clamped, rig.Window("w1").State);
        await rig.RestartAsync();

        // dnotify lands on Vast but its answer is lost (the client times out first).
        rig.Emulator.State.AddFault(new FaultSpec(Endpoints.Dnotify, DelayMs: 3000, PassThrough: true));
        await rig.RestartWithAsync(s => { s["vast:requestTimeout"] = "00:00:01"; return s; });
        await rig.ReconcileAtAsync(Start.AddHours(-2));
        await Poll.UntilAsync(() => rig.Applied(Endpoints.Dnotify) == 1, TimeSpan.FromSeconds(10), "the delayed dnotify to land");
        Assert.Equal(WindowState.Clamped, rig.Window("w1").State);
        await rig.RestartWithAsync(s => { s["vast:requestTimeout"] = "00:05:00"; return s; });
        // The first read after the unknown outcome's quarantine (management.unknownOutcomeQuarantine, 5 min after the call).
        await rig.ReconcileAtAsync(Start.AddHours(-2).AddMinutes(6));
        Assert.Equal(WindowState.Scheduled, rig.Window("w1").State);
        Assert.Contains("found scheduled on Vast (not sent again)", rig.Window("w1").Why, StringComparison.Ordinal);

        foreach (var at in new[] { Start, Start.AddMinutes(30), End, End.AddMinutes(5) })
        {
            await rig.RestartAsync();
            await rig.ReconcileAtAsync(at);
        }

        Assert.Equal(WindowState.Done, rig.Window("w1").State);
        Assert.Equal(1, rig.Requests(Endpoints.Dnotify));
        Assert.Equal(1, rig.Applied(Endpoints.RemoveDefjob));
        Assert.True(rig.Listed);
        Assert.Equal(MaintenanceRig.JobImage, rig.DefaultJob);
        Assert.Equal(["planned", "clamped", "scheduled", "active", "done"], rig.Window("w1").History.Select(h => h.To.ToString()));
    }

    [Fact]
    public async Task A_recurring_window_follows_its_time_zone_across_the_DST_change()
    {
        // Sundays 02:00 in Berlin: 01:00Z in winter; on 2026-03-29 02:00 does not exist (clocks jump to 03:00 CEST = 01:00Z); then 00:00Z.
        await using var rig = await MaintenanceRig.StartAsync(new()
        {
            ["maintenance:recurring:0:id"] = "sunday",
            ["maintenance:recurring:0:cron"] = "0 2 * * 0",
            ["maintenance:recurring:0:timeZone"] = "Europe/Berlin",
            ["maintenance:recurring:0:duration"] = "01:00:00",
            ["maintenance:recurring:0:category"] = "software",
        }, start: DateTimeOffset.Parse("2026-03-20T12:00:00Z", CultureInfo.InvariantCulture));

        for (var t = rig.Now; t < DateTimeOffset.Parse("2026-04-06T00:00:00Z", CultureInfo.InvariantCulture); t = t.AddHours(1))
        {
            await rig.ReconcileAtAsync(t);
        }

        var done = rig.Book.Windows.Where(w => w.State == WindowState.Done).OrderBy(w => w.Start).Select(w => w.Start.ToString("yyyy-MM-ddTHH:mmZ", CultureInfo.InvariantCulture));
        Assert.Equal(["2026-03-22T01:00Z", "2026-03-29T01:00Z", "2026-04-05T00:00Z"], done);
        Assert.Equal(3, rig.Applied(Endpoints.Dnotify));
        Assert.Equal(WindowState.Clamped, rig.Book.Windows.Single(w => w.State.IsOpen).State);
        Assert.Equal("sunday@20260412T0000Z", rig.Book.Windows.Single(w => w.State.IsOpen).Id);
    }

    [Fact]
    public void Cron_occurrences_honour_both_DST_changes()
    {
        var daily = new RecurringWindowOptions { Id = "d", Cron = "30 2 * * *", TimeZone = "Europe/Berlin" };
        // Spring: 02:30 does not exist on 2026-03-29; Cronos runs it at the transition (03:00 CEST = 01:00Z).
        Assert.Equal(DateTimeOffset.Parse("2026-03-29T01:00:00Z", CultureInfo.InvariantCulture), Schedule.Next(daily, DateTimeOffset.Parse("2026-03-28T02:00:00Z", CultureInfo.InvariantCulture)));
        // Autumn: 02:30 happens twice on 2026-10-25; the window runs once (the first, 00:30Z), then the next day at 01:30Z.
        var first = Schedule.Next(daily, DateTimeOffset.Parse("2026-10-24T12:00:00Z", CultureInfo.InvariantCulture))!.Value;
        Assert.Equal(DateTimeOffset.Parse("2026-10-25T00:30:00Z", CultureInfo.InvariantCulture), first);
        Assert.Equal(DateTimeOffset.Parse("2026-10-26T01:30:00Z", CultureInfo.InvariantCulture), Schedule.Next(daily, first.AddMinutes(1)));
    }

    /// <summary>What a failed expectation about a window needs to be diagnosed: the window, the cycle and the journal's tail.</summary>
    internal static string Explain(MaintenanceRig rig, string id, ReconcileReport report)
    {
        var w = rig.Window(id);
        return $"window {id} is {w.State} ({w.Why}) at {rig.Now:O}; cycle problem: {report.Problem ?? "-"}; results: "
            + string.Join("; ", report.Results.Select(r => $"{r.Mutation.Endpoint} {r.Result} {r.Detail}"))
            + "; journal: " + string.Join(" | ", rig.Journal().TakeLast(8).Select(j => $"{j.Time:HH:mm:ss} {j.Kind} {j.Action} {j.Result} {j.Reason}"));
    }
}
