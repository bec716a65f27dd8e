using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using VastEmulator;

namespace VastHostAgent.Tests.Vast;

/// <summary>The emulator's maintenance, cleanup, reports, earnings, user and invoice endpoints (vast-api.md §2.8–2.17).</summary>
public sealed class EmulatorBehaviourMaintenanceAndAccountTests : EmulatorBehaviourTestBase
{
    // ------------------------------------------------------------------ §2.8–2.10 maintenance

    [Fact]
    public async Task Dnotify_accepts_epoch_floats_and_iso_strings_and_answers_a_string_you_sent()
    {
        State.StartRental(Rig, new RentalRequest("on-demand", 1));
        State.StartRental(Rig, new RentalRequest("interruptible", 1));
        var epoch = await PutAsync($"/api/v0/machines/{Rig}/dnotify/", new JsonObject
        {
            ["client_id"] = "me",
            ["sdate"] = Now + 7200.5,
            ["duration"] = 0.5,
            ["maintenance_category"] = "not provided",
        });
        var iso = await PutAsync($"/api/v0/machines/{Rig}/dnotify", new JsonObject
        {
            ["client_id"] = "me",
            ["sdate"] = Start.AddDays(2).ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["duration"] = 3,
            ["maintenance_category"] = "gpu",
            ["maintenance_reason"] = "replace a GPU fan that is rattling, scheduled with the datacenter staff for the morning",
        });
        var badCategory = await PutAsync($"/api/v0/machines/{Rig}/dnotify/", new JsonObject { ["sdate"] = Now + 60, ["duration"] = 1, ["maintenance_category"] = "cosmic rays" });
        var badDate = await PutAsync($"/api/v0/machines/{Rig}/dnotify/", new JsonObject { ["sdate"] = "soon", ["duration"] = 1, ["maintenance_category"] = "power" });
        var unknown = await PutAsync("/api/v0/machines/999999/dnotify/", new JsonObject { ["sdate"] = Now + 60, ["duration"] = 1 });

        Assert.Equal("{\"success\":true,\"you_sent\":\"2 notifications sent\"}", epoch.Raw);
        Assert.Equal("2 notifications sent", iso.Obj["you_sent"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.BadRequest, badCategory.Status);
        Assert.Equal(HttpStatusCode.BadRequest, badDate.Status);
        Assert.Equal(HttpStatusCode.NotFound, unknown.Status);

        var windows = (await GetAsync($"/api/v0/machines/maintenances?owner=me&machine_ids={Uri.EscapeDataString($"[{Rig}, {State.OtherMachineId}]")}")).Arr;
        Assert.Equal(2, windows.Count);
        var first = windows[0]!;
        Assert.Equal(Rig, first["machine_id"]!.GetValue<int>());
        Assert.Equal(Now + 7200.5, first["start_time"]!.GetValue<double>(), 3);
        Assert.Equal(Now + 7200.5 + 1800, first["end_time"]!.GetValue<double>(), 3);
        Assert.Equal(0.5, first["duration_hours"]!.GetValue<double>());
        Assert.Equal("not provided", first["maintenance_category"]!.GetValue<string>());
        Assert.Equal(Start.AddDays(2).ToUnixTimeSeconds(), windows[1]!["start_time"]!.GetValue<double>());
        Assert.Equal(2, Machine(Rig)["machine_maintenance"]!.AsArray().Count);
    }

    [Fact]
    public async Task Cancel_maint_deletes_every_window_and_says_how_many()
    {
        await PutAsync($"/api/v0/machines/{Rig}/dnotify/", new JsonObject { ["sdate"] = Now + 60, ["duration"] = 1, ["maintenance_category"] = "power" });
        await PutAsync($"/api/v0/machines/{Rig}/dnotify/", new JsonObject { ["sdate"] = Now + 7200, ["duration"] = 2, ["maintenance_category"] = "disk" });
        var reply = await PutAsync($"/api/v0/machines/{Rig}/cancel_maint/", new JsonObject { ["client_id"] = "me", ["machine_id"] = Rig });
        var unknown = await PutAsync("/api/v0/machines/999999/cancel_maint/", new JsonObject { ["client_id"] = "me", ["machine_id"] = 999999 });

        Assert.True(reply.Obj["success"]!.GetValue<bool>());
        Assert.Equal(Now, reply.Obj["ctime"]!.GetValue<double>(), 3);
        Assert.Equal(Rig, reply.Obj["machine_id"]!.GetValue<int>());
        Assert.Equal($"deleted 2 scheduled maintenance window(s) on machine {Rig}", reply.Obj["msg"]!.GetValue<string>());
        Assert.Empty((await GetAsync($"/api/v0/machines/maintenances?owner=me&machine_ids=[{Rig}]")).Arr);
        Assert.Equal(HttpStatusCode.NotFound, unknown.Status);
        Assert.Equal($"{{\"success\":false,\"msg\":\"No such machine id\",\"machine_id\":999999,\"user_id\":{State.PrimaryUserId}}}", unknown.Raw);
    }

    // ------------------------------------------------------------------ §2.11–2.14 cleanup, force delete, reports

    [Fact]
    public async Task Cleanup_reports_and_force_delete_behave_as_documented()
    {
        State.AddReport(Rig, "Hardware", "GPU 3 fell off the bus");
        var reports = await SendAsync(HttpMethod.Get, $"/api/v0/machines/{Rig}/reports/", new JsonObject { ["machine_id"] = Rig });
        var cleanup = await PutAsync($"/api/v0/machines/{Rig}/cleanup/", new JsonObject());
        var again = await PutAsync($"/api/v0/machines/{Rig}/cleanup/", new JsonObject());
        var extra = State.AddMachine("rig-99", "RTX 3090", 4);
        State.StartRental(extra, new RentalRequest("on-demand", 1));
        var busy = await PostAsync($"/api/v0/machines/{extra}/force_delete/", "{}");

        var report = Assert.Single(reports.Arr)!;
        Assert.Equal("Hardware", report["problem"]!.GetValue<string>());
        Assert.Equal("GPU 3 fell off the bus", report["message"]!.GetValue<string>());
        Assert.Equal(Now, report["created_at"]!.GetValue<double>(), 3);
        Assert.Equal(1, Machine(Rig)["num_reports"]!.GetValue<int>());
        Assert.Equal(2, cleanup.Obj["num_deleted"]!.GetValue<int>());
        Assert.Equal(State.PrimaryUserId, cleanup.Obj["user_id"]!.GetValue<int>());
        Assert.Equal($"deleted 2 expired contracts on machine {Rig}", cleanup.Obj["msg"]!.GetValue<string>());
        Assert.Equal(0, again.Obj["num_deleted"]!.GetValue<int>());
        Assert.False(busy.Obj["success"]!.GetValue<bool>());

        var idle = State.AddMachine("rig-98", "RTX 3090", 2);
        var deleted = await PostAsync($"/api/v0/machines/{idle}/force_delete/", "{}");
        Assert.Equal("{\"success\":true}", deleted.Raw);
        Assert.DoesNotContain(idle, State.OwnMachineIds);
    }

    // ------------------------------------------------------------------ §2.15 earnings, §2.17 user

    [Fact]
    public async Task Earnings_filter_per_day_by_float_day_numbers_and_machid()
    {
        var today = (long)Math.Floor(Now / 86400);
        var sday = ((today - 3) + 0.5).ToString(CultureInfo.InvariantCulture);
        var eday = ((today - 1) + 0.25).ToString(CultureInfo.InvariantCulture);
        var all = await GetAsync($"/api/v0/users/me/machine-earnings?owner=me&sday={sday}&eday={eday}&machid=null");
        var one = await GetAsync($"/api/v0/users/me/machine-earnings?owner=me&sday={sday}&eday={eday}&machid={Rig}");
        var none = await GetAsync($"/api/v0/users/me/machine-earnings?owner=me&sday={sday}&eday={eday}&machid={State.OtherMachineId}");

        var days = all.Obj["per_day"]!.AsArray();
        Assert.Equal([today - 3, today - 2, today - 1], days.Select(d => d!["day"]!.GetValue<long>()));
        Assert.Equal(days.Sum(d => d!["gpu_earn"]!.GetValue<double>()), all.Obj["summary"]!["total_gpu"]!.GetValue<double>(), 6);
        Assert.Equal(Rig, Assert.Single(all.Obj["per_machine"]!.AsArray())!["machine_id"]!.GetValue<int>());
        Assert.Equal(all.Obj["per_day"]!.ToJsonString(), one.Obj["per_day"]!.ToJsonString());
        Assert.Empty(none.Obj["per_machine"]!.AsArray());
        foreach (var key in new[] { "username", "email", "fullname", "address1", "address2", "city", "zip", "country", "taxinfo" })
        {
            Assert.True(all.Obj.ContainsKey(key), key);
        }

        var current = all.Obj["current"]!.AsObject();
        Assert.Equal(["balance", "service_fee", "total", "credit"], current.Select(p => p.Key));

        // A running contract accrues: 2 GPUs × $0.50 × 3 h = $3 today.
        State.StartRental(Rig, new RentalRequest("on-demand", 2, 0.5));
        Time.Advance(TimeSpan.FromHours(3));
        var now = (Now / 86400).ToString(CultureInfo.InvariantCulture);
        var accrued = await GetAsync($"/api/v0/users/me/machine-earnings?owner=me&sday={now}&eday={now}&machid=null");
        Assert.Equal(3.0, Assert.Single(accrued.Obj["per_day"]!.AsArray())!["gpu_earn"]!.GetValue<double>(), 6);
    }

    [Fact]
    public async Task Current_user_has_the_documented_fields_and_the_callers_api_key()
    {
        var user = (await GetAsync("/api/v0/users/current")).Obj;

        Assert.Equal(State.PrimaryUserId, user["id"]!.GetValue<int>());
        Assert.Equal("demo-host", user["username"]!.GetValue<string>());
        foreach (var key in new[] { "key_id", "email", "balance", "credit", "ssh_key", "sid", "fullname", "has_payout", "email_verified" })
        {
            Assert.True(user.ContainsKey(key), key);
        }

        Assert.Equal(Key, user["api_key"]!.GetValue<string>()); // the real API returns it; the CLI pops it before printing
    }

    [Fact]
    public async Task Invoices_v1_need_a_date_range_and_list_weekly_payouts()
    {
        var filters = Uri.EscapeDataString($"{{\"when\": {{\"gte\": {Now - 40 * 86400}, \"lte\": {Now}}}}}");
        var missing = await SendAsync(HttpMethod.Get, "/api/v1/invoices/?limit=10");
        var listed = await SendAsync(HttpMethod.Get, $"/api/v1/invoices/?select_filters={filters}&latest_first=true&limit=10");

        Assert.Equal(HttpStatusCode.OK, missing.Status);
        Assert.Equal("{\"success\":false,\"error\":\"Invalid date range\"}", missing.Raw);
        Assert.True(listed.Obj["success"]!.GetValue<bool>());
        var results = listed.Obj["results"]!.AsArray();
        Assert.Equal(4, results.Count);
        Assert.All(results, r => Assert.Equal("payout", r!["type"]!.GetValue<string>()));
        Assert.True(results[0]!["end"]!.GetValue<double>() > results[1]!["end"]!.GetValue<double>());
        Assert.Null(listed.Obj["next_token"]);
    }
}
