using System.Net;
using System.Text.Json.Nodes;
using VastEmulator;

namespace VastHostAgent.Tests.Vast;

/// <summary>The emulator's machine endpoints (vast-api.md §2.1–2.7, §4): show, create_asks, unlist, minimum bid, default job.</summary>
public sealed class EmulatorBehaviourMachineTests : EmulatorBehaviourTestBase
{
    // ------------------------------------------------------------------ §2.1/2.2/§4 machines

    [Fact]
    public async Task Show_machines_is_wrapped_and_show_machine_is_a_bare_one_element_array()
    {
        var all = await GetAsync("/api/v0/machines?owner=me");
        var one = await GetAsync($"/api/v0/machines/{Rig}?owner=me");
        var others = await GetAsync($"/api/v0/machines/{State.OtherMachineId}?owner=me");
        var missing = await GetAsync("/api/v0/machines/999999?owner=me");

        var machines = all.Obj["machines"]!.AsArray();
        Assert.Equal(Rig, Assert.Single(machines)!["id"]!.GetValue<int>());
        Assert.Equal(Rig, Assert.Single(one.Arr)!["machine_id"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.Forbidden, others.Status);
        Assert.Equal("not_authorized", others.Obj["error"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
        Assert.Equal("application/json", all.ContentType);
    }

    [Fact]
    public async Task The_machine_object_has_the_documented_fields_and_realistic_values()
    {
        var m = (await GetAsync($"/api/v0/machines/{Rig}")).Arr[0]!.AsObject();
        string[] fields =
        [
            "id", "machine_id", "hostname", "geolocation", "timeout", "mobo_name", "num_gpus", "total_flops", "gpu_name", "gpu_ram",
            "gpu_max_cur_temp", "gpu_lanes", "gpu_mem_bw", "bw_nvlink", "pcie_bw", "pci_gen", "cpu_name", "cpu_ram", "cpu_cores",
            "cpu_arch", "listed", "start_date", "end_date", "duration", "credit_discount_max", "listed_min_gpu_count",
            "listed_gpu_cost", "listed_storage_cost", "listed_volume_cost", "volume_total_size", "listed_inet_up_cost",
            "listed_inet_down_cost", "min_bid_price", "gpu_occupancy", "bid_gpu_cost", "bid_image", "bid_image_args",
            "bid_image_args_str", "disk_space", "max_disk_space", "alloc_disk_space", "avail_disk_space", "disk_name", "disk_bw",
            "inet_up", "inet_down", "earn_hour", "earn_day", "verification", "error_description", "vm_error_msg", "vm_error_level",
            "current_rentals_running", "current_rentals_running_on_demand", "current_rentals_resident", "current_rentals_on_demand",
            "reliability2", "direct_port_count", "public_ipaddr", "num_reports", "num_recent_reports", "client_end_date",
            "machine_maintenance", "clients", "driver_version", "cuda_max_good", "kernel_version", "ubuntu_version",
        ];
        Assert.All(fields, f => Assert.True(m.ContainsKey(f), f));
        Assert.Equal("rig-01", m["hostname"]!.GetValue<string>());
        Assert.Equal("RTX 4090", m["gpu_name"]!.GetValue<string>());
        Assert.Equal(8, m["num_gpus"]!.GetValue<int>());
        Assert.Equal(24564, m["gpu_ram"]!.GetValue<int>());
        Assert.Equal(0.98, m["reliability2"]!.GetValue<double>());
        Assert.Equal("verified", m["verification"]!.GetValue<string>());
        Assert.Equal(0, m["timeout"]!.GetValue<int>());
        Assert.Equal("x x x x x x x x ", m["gpu_occupancy"]!.GetValue<string>());
        Assert.True(m["listed"]!.GetValue<bool>());
        Assert.Null(m["client_end_date"]);
        Assert.Null(m["bid_image"]);
        // Floats are written like Python does (a client must not read them into integers).
        var raw = (await GetAsync($"/api/v0/machines/{Rig}")).Raw;
        Assert.Contains("\"gpu_max_cur_temp\":34.0", raw, StringComparison.Ordinal);
    }

    // ------------------------------------------------------------------ §2.3 create_asks

    [Fact]
    public async Task Create_asks_with_min_chunk_null_is_400_and_without_it_defaults_to_1()
    {
        var explicitNull = await PutAsync("/api/v0/machines/create_asks/", AskBody(Rig, 0.4, minChunk: null));
        var chunk4 = await PutAsync("/api/v0/machines/create_asks/", AskBody(Rig, 0.4, minChunk: 4));
        var body = AskBody(Rig, 0.4);
        body.Remove("min_chunk");
        var absent = await PutAsync("/api/v0/machines/create_asks/", body);

        Assert.Equal(HttpStatusCode.BadRequest, explicitNull.Status);
        Assert.Equal("{\"error\":\"invalid_args\",\"msg\":\"Invalid machine id or min_chunk\"}", explicitNull.Raw);
        Assert.Equal(HttpStatusCode.OK, chunk4.Status);
        Assert.Equal(HttpStatusCode.OK, absent.Status);
        Assert.Equal(1, Machine(Rig)["listed_min_gpu_count"]!.GetValue<int>());
    }

    [Fact]
    public async Task Create_asks_maps_every_field_onto_the_machine_and_derives_one_offer_per_chunk()
    {
        var end = Math.Round(Now + 20 * 86400);
        var reply = await PutAsync("/api/v0/machines/create_asks/", new JsonObject
        {
            ["machine"] = Rig,
            ["price_gpu"] = 0.42,
            ["price_disk"] = 0.2,
            ["price_inetu"] = 0.004,
            ["price_inetd"] = 0.003,
            ["price_min_bid"] = 0.31,
            ["min_chunk"] = 2,
            ["end_date"] = end,
            ["credit_discount_max"] = 0.25,
            ["duration"] = null,
            ["vol_size"] = 300,
            ["vol_price"] = 0.12,
        });

        Assert.Equal("{\"success\":true,\"extended\":0}", reply.Raw);
        var m = Machine(Rig);
        Assert.True(m["listed"]!.GetValue<bool>());
        Assert.Equal(0.42, m["listed_gpu_cost"]!.GetValue<double>());
        Assert.Equal(0.2, m["listed_storage_cost"]!.GetValue<double>());
        Assert.Equal(0.004, m["listed_inet_up_cost"]!.GetValue<double>());
        Assert.Equal(0.003, m["listed_inet_down_cost"]!.GetValue<double>());
        Assert.Equal(0.31, m["min_bid_price"]!.GetValue<double>());
        Assert.Equal(2, m["listed_min_gpu_count"]!.GetValue<int>());
        Assert.Equal(0.25, m["credit_discount_max"]!.GetValue<double>());
        Assert.Equal(end, m["end_date"]!.GetValue<double>());
        Assert.Equal(0.12, m["listed_volume_cost"]!.GetValue<double>());
        Assert.Equal(300, m["volume_total_size"]!.GetValue<int>());

        var offers = (await PostAsync("/api/v0/bundles/", new JsonObject { ["machine_id"] = new JsonObject { ["eq"] = Rig } })).Obj["offers"]!.AsArray();
        Assert.Equal([2, 4, 8], offers.Select(o => o!["num_gpus"]!.GetValue<int>()).Order());
        Assert.All(offers, o =>
        {
            Assert.Equal(State.PrimaryUserId, o!["host_id"]!.GetValue<int>());
            Assert.Equal(o["num_gpus"]!.GetValue<int>() * 0.42 / Pricing.HostShare, o["dph_base"]!.GetValue<double>(), 9);
            Assert.True(o["rentable"]!.GetValue<bool>());
        });
    }

    [Fact]
    public async Task Create_asks_null_fields_keep_current_values_and_duration_sets_a_rolling_end_date()
    {
        var before = Machine(Rig);
        var body = AskBody(Rig);
        body["duration"] = "2 weeks";
        var reply = await PutAsync("/api/v0/machines/create_asks/", body);

        var after = Machine(Rig);
        Assert.Equal(HttpStatusCode.OK, reply.Status);
        foreach (var field in new[] { "listed_gpu_cost", "listed_storage_cost", "listed_inet_up_cost", "min_bid_price", "credit_discount_max", "volume_total_size" })
        {
            Assert.Equal(before[field]!.ToJsonString(), after[field]!.ToJsonString());
        }

        Assert.Equal(Now + 14 * 86400, after["end_date"]!.GetValue<double>(), 3);
        Assert.Equal(14 * 86400.0, after["duration"]!.GetValue<double>());

        Time.Advance(TimeSpan.FromDays(3));
        Assert.Equal(Now + 14 * 86400, Machine(Rig)["end_date"]!.GetValue<double>(), 3);
    }

    [Fact]
    public async Task Create_asks_errors_use_the_documented_statuses_and_shapes()
    {
        var unknown = await PutAsync("/api/v0/machines/create_asks/", AskBody(999999, 0.4));
        var notOwner = await PutAsync("/api/v0/machines/create_asks/", AskBody(State.OtherMachineId, 0.4));
        var badChunk = await PutAsync("/api/v0/machines/create_asks/", AskBody(Rig, 0.4, minChunk: 3));
        var past = await PutAsync("/api/v0/machines/create_asks/", AskBody(Rig, 0.9, endDate: Now - 10));
        var notJson = await SendAsync(HttpMethod.Put, "/api/v0/machines/create_asks/", "{machine: 1");

        Assert.Equal(HttpStatusCode.BadRequest, unknown.Status);
        Assert.Equal("invalid_args", unknown.Obj["error"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.Forbidden, notOwner.Status);
        Assert.Equal("{\"error\":\"not_authorized\",\"msg\":\"Only machine owner can create ask contracts\"}", notOwner.Raw);
        Assert.Equal(HttpStatusCode.BadRequest, badChunk.Status);
        Assert.Equal(HttpStatusCode.OK, past.Status);
        Assert.False(past.Obj["success"]!.GetValue<bool>());
        Assert.NotEqual(0.9, Machine(Rig)["listed_gpu_cost"]!.GetValue<double>());
        Assert.Equal(HttpStatusCode.BadRequest, notJson.Status);
        Assert.Equal("{\"error\":\"invalid_request\",\"msg\":\"Invalid json body\"}", notJson.Raw);
    }

    [Fact]
    public async Task Raising_the_price_above_an_on_demand_contract_creates_a_pending_increase_and_cheaper_terms_extend()
    {
        var contractEnd = Now + 5 * 86400;
        var rental = State.StartRental(Rig, new RentalRequest("on-demand", 2, 0.30, contractEnd));
        var raised = await PutAsync("/api/v0/machines/create_asks/", AskBody(Rig, 0.45));
        var pending = await GetAsync("/api/v0/instances/pending-price-increases/");

        Assert.Equal(0, raised.Obj["extended"]!.GetValue<int>());
        Assert.True(pending.Obj["success"]!.GetValue<bool>());
        Assert.Equal(1, pending.Obj["count"]!.GetValue<int>());
        var row = Assert.Single(pending.Obj["pending_price_increases"]!.AsArray())!;
        Assert.Equal(rental, row["contract_id"]!.GetValue<int>());
        Assert.Equal(State.PrimaryUserId, row["host_id"]!.GetValue<int>());
        Assert.Equal(0.45 / 3600, row["new_gpu_costpersec"]!.GetValue<double>(), 12);
        Assert.Equal(0.30 / 3600, row["old_gpu_costpersec"]!.GetValue<double>(), 12);
        Assert.Equal(contractEnd, row["contract_end_date"]!.GetValue<double>(), 3);

        // Same or cheaper terms with a later end date: the contract is pushed out and the pending row goes away.
        var newEnd = Math.Round(Now + 40 * 86400);
        var cheaper = await PutAsync("/api/v0/machines/create_asks/", AskBody(Rig, 0.28, endDate: newEnd));
        Assert.Equal(1, cheaper.Obj["extended"]!.GetValue<int>());
        Assert.Empty((await GetAsync("/api/v0/instances/pending-price-increases/")).Obj["pending_price_increases"]!.AsArray());
        Assert.Equal(newEnd, Machine(Rig)["client_end_date"]!.GetValue<double>());
    }

    [Fact]
    public async Task A_free_listing_still_renders_valid_offers()
    {
        var body = AskBody(Rig, 0);
        body["price_disk"] = 0;
        body["price_min_bid"] = 0;
        var reply = await PutAsync("/api/v0/machines/create_asks/", body);
        var offers = await PostAsync("/api/v0/bundles/", new JsonObject { ["machine_id"] = new JsonObject { ["eq"] = Rig }, ["order"] = new JsonArray(new JsonArray("score", "desc")) });

        Assert.Equal(HttpStatusCode.OK, reply.Status);
        Assert.Equal(HttpStatusCode.OK, offers.Status);
        Assert.All(offers.Obj["offers"]!.AsArray(), o => Assert.Equal(0.0, o!["dph_total"]!.GetValue<double>()));
    }

    // ------------------------------------------------------------------ §2.4–2.7 unlist, minbid, defjob

    [Fact]
    public async Task Unlist_removes_the_offers_and_keeps_the_contracts()
    {
        State.StartRental(Rig, new RentalRequest("on-demand", 2));
        var reply = await DeleteAsync($"/api/v0/machines/{Rig}/asks/");
        var offers = await PostAsync("/api/v0/bundles/", new JsonObject { ["machine_id"] = new JsonObject { ["eq"] = Rig } });
        var notOwner = await DeleteAsync($"/api/v0/machines/{State.OtherMachineId}/asks/");

        Assert.Equal($"{{\"success\":true,\"machine_id\":{Rig},\"user_id\":{State.PrimaryUserId}}}", reply.Raw);
        Assert.False(Machine(Rig)["listed"]!.GetValue<bool>());
        Assert.Empty(offers.Obj["offers"]!.AsArray());
        Assert.Equal(1, Machine(Rig)["current_rentals_running"]!.GetValue<int>());
        Assert.Equal(HttpStatusCode.NotFound, notOwner.Status);
    }

    [Fact]
    public async Task Minbid_echoes_the_request_body_as_an_object()
    {
        var body = new JsonObject { ["client_id"] = "me", ["price"] = 0.27 };
        var reply = await PutAsync($"/api/v0/machines/{Rig}/minbid/", body);
        var notOwner = await PutAsync($"/api/v0/machines/{State.OtherMachineId}/minbid/", body);

        Assert.Equal("{\"success\":true,\"you_sent\":{\"client_id\":\"me\",\"price\":0.27}}", reply.Raw);
        Assert.Equal(0.27, Machine(Rig)["min_bid_price"]!.GetValue<double>());
        Assert.Equal(HttpStatusCode.Forbidden, notOwner.Status);
    }

    [Fact]
    public async Task Create_bids_sets_the_default_job_and_defjob_delete_clears_it()
    {
        var body = new JsonObject
        {
            ["machine"] = Rig,
            ["price_gpu"] = 0.2,
            ["price_inetu"] = null,
            ["price_inetd"] = null,
            ["image"] = "vastai/base:latest",
            ["args"] = new JsonArray("--mine", "eth"),
        };
        var set = await PutAsync("/api/v0/machines/create_bids/", body);
        var withJob = Machine(Rig);
        var removed = await DeleteAsync($"/api/v0/machines/{Rig}/defjob/");
        var cleared = Machine(Rig);

        Assert.True(set.Obj["success"]!.GetValue<bool>());
        Assert.Equal(Rig, set.Obj["machine_id"]!.GetValue<int>());
        Assert.Equal(State.PrimaryUserId, set.Obj["user_id"]!.GetValue<int>());
        Assert.Equal(body.ToJsonString(), set.Obj["you_sent"]!.ToJsonString());
        Assert.Equal(0.2, withJob["bid_gpu_cost"]!.GetValue<double>());
        Assert.Equal("vastai/base:latest", withJob["bid_image"]!.GetValue<string>());
        Assert.Equal("[\"--mine\",\"eth\"]", withJob["bid_image_args"]!.ToJsonString());
        Assert.Equal("--mine eth", withJob["bid_image_args_str"]!.GetValue<string>());
        Assert.Equal($"{{\"success\":true,\"machine_id\":{Rig},\"user_id\":{State.PrimaryUserId}}}", removed.Raw);
        Assert.Null(cleared["bid_image"]);
        Assert.Null(cleared["bid_gpu_cost"]);
        Assert.Null(cleared["bid_image_args"]);
    }
}
