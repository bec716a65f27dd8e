using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using VastEmulator;

namespace VastHostAgent.Tests.Vast;

/// <summary>Contracts, injected faults, the admin API and the request log of the emulator.</summary>
public sealed class EmulatorBehaviourContractAndFaultTests : EmulatorBehaviourTestBase
{
    // ------------------------------------------------------------------ contracts (admin)

    [Fact]
    public async Task Rentals_change_occupancy_counts_and_client_end_date()
    {
        var end1 = Now + 3 * 86400;
        var end2 = Now + 9 * 86400;
        var onDemand = State.StartRental(Rig, new RentalRequest("on-demand", 2, 0.35, end1));
        var reserved = await PostAsync($"/_emulator/machines/{Rig}/rentals", new JsonObject { ["type"] = "reserved", ["gpus"] = 1, ["price"] = 0.3, ["endDate"] = end2 }, key: null);
        State.StartRental(Rig, new RentalRequest("interruptible", 3, 0.25, end1));
        State.StartRental(Rig, new RentalRequest("interruptible", 1, 0.2, end1, Running: false));

        var m = Machine(Rig);
        Assert.Equal("D D R I I I x x ", m["gpu_occupancy"]!.GetValue<string>());
        Assert.Equal(3, m["current_rentals_running"]!.GetValue<int>());
        Assert.Equal(2, m["current_rentals_running_on_demand"]!.GetValue<int>());
        Assert.Equal(4, m["current_rentals_resident"]!.GetValue<int>());
        Assert.Equal(2, m["current_rentals_on_demand"]!.GetValue<int>());
        Assert.Equal(end2, m["client_end_date"]!.GetValue<double>(), 3);
        Assert.Equal(2 * 0.35 + 0.3 + 3 * 0.25, m["earn_hour"]!.GetValue<double>(), 6);
        var offers = (await PostAsync("/api/v0/bundles/", new JsonObject { ["machine_id"] = new JsonObject { ["eq"] = Rig } })).Obj["offers"]!.AsArray();
        Assert.Equal([1, 2], offers.Where(o => o!["rentable"]!.GetValue<bool>()).Select(o => o!["num_gpus"]!.GetValue<int>()).Order());

        // On-demand beats interruptible: the bid is paused, and resumes when the GPUs are free again.
        var big = State.StartRental(Rig, new RentalRequest("on-demand", 4, 0.35, end1));
        Assert.Equal("D D R D D D D x ", Machine(Rig)["gpu_occupancy"]!.GetValue<string>());
        var ended = await SendAsync(HttpMethod.Delete, $"/_emulator/machines/{Rig}/rentals/{big}", key: null);
        Assert.Equal(HttpStatusCode.OK, ended.Status);
        Assert.Equal("D D R I I I x x ", Machine(Rig)["gpu_occupancy"]!.GetValue<string>());

        State.EndRental(Rig, onDemand);
        Assert.Equal(end2, Machine(Rig)["client_end_date"]!.GetValue<double>(), 3);
        Assert.Equal(reserved.Obj["id"]!.GetValue<int>(), State.StateJson()["machines"]!.AsArray()[0]!["rentals"]!.AsArray()[1]!["id"]!.GetValue<int>());

        // Contracts end at their end date; the expired ones become cleanup material.
        Time.Advance(TimeSpan.FromDays(10));
        var later = Machine(Rig);
        Assert.Equal("x x x x x x x x ", later["gpu_occupancy"]!.GetValue<string>());
        Assert.Null(later["client_end_date"]);
        Assert.Equal(0, later["current_rentals_resident"]!.GetValue<int>());
        Assert.Equal(2 + 3, (await PutAsync($"/api/v0/machines/{Rig}/cleanup/", new JsonObject())).Obj["num_deleted"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_listing_expires_at_its_end_date_and_an_offline_machine_has_a_growing_timeout_and_no_offers()
    {
        await PostAsync($"/_emulator/machines/{Rig}/online", "{\"online\": false}", key: null);
        Time.Advance(TimeSpan.FromSeconds(90));
        var offline = Machine(Rig);
        var hidden = (await PostAsync("/api/v0/bundles/", new JsonObject { ["machine_id"] = new JsonObject { ["eq"] = Rig } })).Obj["offers"]!.AsArray();
        State.SetOnline(Rig, true);

        Assert.Equal(90, offline["timeout"]!.GetValue<int>());
        Assert.Empty(hidden);
        Assert.Equal(0, Machine(Rig)["timeout"]!.GetValue<int>());

        await PutAsync("/api/v0/machines/create_asks/", AskBody(Rig, 0.4, endDate: Now + 3600));
        Time.Advance(TimeSpan.FromHours(2));
        Assert.False(Machine(Rig)["listed"]!.GetValue<bool>());
    }

    // ------------------------------------------------------------------ faults, admin API, request log

    [Fact]
    public async Task Faults_fail_the_next_matching_requests_without_applying_their_effect()
    {
        var armed = await PostAsync("/_emulator/faults", "{\"endpoint\": \"minbid\", \"status\": 503, \"count\": 2}", key: null);
        var before = Machine(Rig)["min_bid_price"]!.GetValue<double>();
        var body = new JsonObject { ["client_id"] = "me", ["price"] = 0.99 };
        var first = await PutAsync($"/api/v0/machines/{Rig}/minbid/", body);
        var unrelated = await GetAsync("/api/v0/machines?owner=me");
        var second = await PutAsync($"/api/v0/machines/{Rig}/minbid/", body);
        var unchanged = Machine(Rig)["min_bid_price"]!.GetValue<double>();
        var third = await PutAsync($"/api/v0/machines/{Rig}/minbid/", body);

        Assert.Equal(HttpStatusCode.OK, armed.Status);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, first.Status);
        Assert.False(first.Obj["success"]!.GetValue<bool>());
        Assert.Equal(HttpStatusCode.OK, unrelated.Status);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, second.Status);
        Assert.Equal(before, unchanged);
        Assert.Equal(HttpStatusCode.OK, third.Status);
        Assert.Equal(0.99, Machine(Rig)["min_bid_price"]!.GetValue<double>());
        var log = State.Requests.Where(r => r.Endpoint == Endpoints.MinBid).ToList();
        Assert.Equal([true, true, false], log.Select(r => r.Faulted));
        Assert.Equal([false, false, true], log.Select(r => r.Applied));
    }

    [Fact]
    public async Task A_malformed_fault_answers_200_with_truncated_json_and_a_429_fault_looks_like_the_rate_limiter()
    {
        State.AddFault(new FaultSpec(Endpoints.Bundles, Malformed: true));
        State.AddFault(new FaultSpec("*", Status: 429));
        var malformed = await PostAsync("/api/v0/bundles/", "{}");
        var limited = await GetAsync("/api/v0/machines?owner=me");

        Assert.Equal(HttpStatusCode.OK, malformed.Status);
        Assert.Equal("application/json", malformed.ContentType);
        Assert.Null(malformed.Json);
        Assert.StartsWith("{\"offers\": [", malformed.Raw, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.Status);
        Assert.Contains("API requests too frequent", limited.Raw, StringComparison.Ordinal);
        Assert.False(limited.HasRetryAfter);
    }

    [Fact]
    public async Task A_timeout_fault_holds_the_request_until_the_client_gives_up_and_changes_nothing()
    {
        State.AddFault(new FaultSpec(Endpoints.CreateAsks, Timeout: true));
        using var impatient = new HttpClient { BaseAddress = Emulator.BaseUrl, Timeout = TimeSpan.FromMilliseconds(300) };
        var before = Machine(Rig)["listed_gpu_cost"]!.GetValue<double>();

        await Assert.ThrowsAsync<TaskCanceledException>(() => SendAsync(HttpMethod.Put, "/api/v0/machines/create_asks/", AskBody(Rig, 1.5), client: impatient));
        Assert.Equal(before, Machine(Rig)["listed_gpu_cost"]!.GetValue<double>());
        Assert.Empty(State.Faults);
    }

    [Fact]
    public async Task A_pass_through_delay_answers_late_but_normally()
    {
        State.AddFault(new FaultSpec(Endpoints.MinBid, DelayMs: 200, PassThrough: true));
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var reply = await PutAsync($"/api/v0/machines/{Rig}/minbid/", new JsonObject { ["client_id"] = "me", ["price"] = 0.11 });

        Assert.True(watch.ElapsedMilliseconds >= 190, watch.ElapsedMilliseconds.ToString(CultureInfo.InvariantCulture));
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal(0.11, Machine(Rig)["min_bid_price"]!.GetValue<double>());
    }

    [Fact]
    public async Task The_request_log_names_endpoints_identities_and_mutations()
    {
        await GetAsync("/api/v0/machines?owner=me");
        await GetAsync($"/api/v0/machines/{Rig}", key: State.OtherApiKey);
        await PutAsync("/api/v0/machines/create_asks/", AskBody(Rig, 0.4));
        await DeleteAsync($"/api/v0/machines/{Rig}/defjob/");
        await PostAsync("/api/v0/bundles/", "{\"limit\": 1}");
        await GetAsync("/api/v0/nope");

        var log = State.Requests;
        Assert.Equal([Endpoints.ShowMachines, Endpoints.ShowMachine, Endpoints.CreateAsks, Endpoints.RemoveDefjob, Endpoints.Bundles, null], log.Select(r => r.Endpoint));
        Assert.Equal([200, 403, 200, 200, 200, 404], log.Select(r => r.Status));
        Assert.Equal([State.PrimaryUserId, State.OtherUserId, State.PrimaryUserId, State.PrimaryUserId, State.PrimaryUserId, State.PrimaryUserId], log.Select(r => r.Identity));
        Assert.Equal([false, false, true, true, false, false], log.Select(r => r.Mutation));
        Assert.All(log, r => Assert.Equal(Now, r.Time, 3));
        Assert.Equal("PUT", log[2].Method);
        Assert.Equal("/api/v0/machines/create_asks/", log[2].Path);

        var http = (await GetAsync("/_emulator/requests", key: null)).Arr;
        Assert.Equal(6, http.Count);
        Assert.Equal("create_asks", http[2]!["endpoint"]!.GetValue<string>());
        await SendAsync(HttpMethod.Delete, "/_emulator/requests", key: null);
        Assert.Empty(State.Requests);
    }

    [Fact]
    public async Task The_admin_api_adds_machines_reports_and_resets()
    {
        var added = await PostAsync("/_emulator/machines", "{\"hostname\": \"rig-02\", \"gpu_name\": \"H100 SXM\", \"num_gpus\": 8}", key: null);
        var id = added.Obj["id"]!.GetValue<int>();
        var report = await PostAsync("/_emulator/reports", new JsonObject { ["machine_id"] = id, ["problem"] = "Network", ["message"] = "slow" }, key: null);
        var state = await GetAsync("/_emulator/state", key: null);
        var machines = (await GetAsync("/api/v0/machines?owner=me")).Obj["machines"]!.AsArray();
        var badRental = await PostAsync($"/_emulator/machines/{id}/rentals", "{\"type\": \"spot\"}", key: null);
        var tooMany = await PostAsync($"/_emulator/machines/{id}/rentals", "{\"gpus\": 9}", key: null);

        Assert.Equal(HttpStatusCode.OK, report.Status);
        Assert.Equal(2, machines.Count);
        Assert.Equal("H100 SXM", machines[1]!["gpu_name"]!.GetValue<string>());
        Assert.False(machines[1]!["listed"]!.GetValue<bool>());
        Assert.Equal(1, machines[1]!["num_reports"]!.GetValue<int>());
        Assert.Equal(2, state.Obj["accounts"]![0]!["machines"]!.AsArray().Count);
        Assert.Equal(HttpStatusCode.BadRequest, badRental.Status);
        Assert.Equal(HttpStatusCode.BadRequest, tooMany.Status);

        await PostAsync("/_emulator/reset", "{}", key: null);
        Assert.Equal([Rig], State.OwnMachineIds);
        Assert.Empty(State.Requests);
    }
}
