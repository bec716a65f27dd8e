using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using VastEmulator;

namespace VastHostAgent.Tests.Vast;

/// <summary>
/// Starts one emulator per test (IAsyncLifetime) on a fake clock and talks to it with raw HttpClient requests,
/// the way the agent's client will. Each checklist item of vast-api.md §6 has a test here.
/// </summary>
public abstract class EmulatorBehaviourTestBase : IAsyncLifetime
{
    protected static readonly DateTimeOffset Start = new(2026, 8, 15, 12, 0, 0, TimeSpan.Zero);

    protected FakeTimeProvider Time { get; } = new(Start);

    protected RunningEmulator Emulator { get; private set; } = null!;

    protected EmulatorState State => Emulator.State;

    protected HttpClient Http { get; private set; } = null!;

    protected string Key => Emulator.ApiKey;

    protected int Rig => State.OwnMachineIds[0];

    protected double Now => Time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;

    /// <summary>The options the emulator runs with; Log may be set after the start.</summary>
    protected EmulatorOptions Settings { get; private set; } = null!;

    protected virtual EmulatorOptions Options() => new()
    {
        TimeProvider = Time,
        RateLimitsEnabled = false,
        OfferCount = 400,
        DuplicateOfferFraction = 0.1,
    };

    public async Task InitializeAsync()
    {
        Settings = Options();
        Emulator = await EmulatorApp.StartAsync(Settings);
        Http = new HttpClient { BaseAddress = Emulator.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Emulator.DisposeAsync();
    }

    /// <summary>Sends a request; key null = no credentials; body is serialised JSON (a string is sent verbatim).</summary>
    protected async Task<Reply> SendAsync(HttpMethod method, string path, object? body = null, string? key = "", bool viaQuery = false, HttpClient? client = null)
    {
        key = key == "" ? Key : key;
        if (key is not null && viaQuery)
        {
            path += (path.Contains('?', StringComparison.Ordinal) ? "&" : "?") + "api_key=" + Uri.EscapeDataString(key);
        }

        using var request = new HttpRequestMessage(method, path);
        if (key is not null && !viaQuery)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        if (body is not null)
        {
            var text = body as string ?? (body as JsonNode)?.ToJsonString() ?? throw new ArgumentException("body must be a string or a JsonNode");
            request.Content = new StringContent(text, Encoding.UTF8, "application/json");
        }

        using var response = await (client ?? Http).SendAsync(request);
        var raw = await response.Content.ReadAsStringAsync();
        JsonNode? json = null;
        try
        {
            json = raw.Length == 0 ? null : JsonNode.Parse(raw);
        }
        catch (System.Text.Json.JsonException)
        {
            // Plain-text or truncated bodies are asserted on Raw.
        }

        return new Reply(response.StatusCode, raw, json, response.Content.Headers.ContentType?.ToString(), response.Headers.Contains("Retry-After"));
    }

    protected Task<Reply> GetAsync(string path, string? key = "", bool viaQuery = false) => SendAsync(HttpMethod.Get, path, null, key, viaQuery);

    protected Task<Reply> PutAsync(string path, JsonNode body, string? key = "") => SendAsync(HttpMethod.Put, path, body, key);

    protected Task<Reply> PostAsync(string path, object body, string? key = "") => SendAsync(HttpMethod.Post, path, body, key);

    protected Task<Reply> DeleteAsync(string path, string? key = "") => SendAsync(HttpMethod.Delete, path, new JsonObject(), key);

    protected JsonObject Machine(int id) => State.MachineJson(id) ?? throw new InvalidOperationException($"no machine {id}");

    /// <summary>The create_asks body the CLI sends: every key present, unspecified ones null, min_chunk 1.</summary>
    protected static JsonObject AskBody(int machine, double? priceGpu = null, double? endDate = null, int? minChunk = 1) => new()
    {
        ["machine"] = machine,
        ["price_gpu"] = priceGpu,
        ["price_disk"] = null,
        ["price_inetu"] = null,
        ["price_inetd"] = null,
        ["price_min_bid"] = null,
        ["min_chunk"] = minChunk,
        ["end_date"] = endDate,
        ["credit_discount_max"] = null,
        ["duration"] = null,
        ["vol_size"] = null,
        ["vol_price"] = null,
    };

    protected sealed record Reply(HttpStatusCode Status, string Raw, JsonNode? Json, string? ContentType, bool HasRetryAfter)
    {
        public JsonObject Obj => Json as JsonObject ?? throw new InvalidOperationException("not a JSON object: " + Raw);

        public JsonArray Arr => Json as JsonArray ?? throw new InvalidOperationException("not a JSON array: " + Raw);
    }
}

public sealed class EmulatorBehaviourTests : EmulatorBehaviourTestBase
{
    // ------------------------------------------------------------------ §1 auth, paths, user segments

    [Fact]
    public async Task Auth_accepts_the_bearer_header_and_the_api_key_query_parameter()
    {
        var bearer = await GetAsync("/api/v0/machines?owner=me");
        var query = await GetAsync("/api/v0/machines?owner=me", viaQuery: true);

        Assert.Equal(HttpStatusCode.OK, bearer.Status);
        Assert.Equal(HttpStatusCode.OK, query.Status);
        Assert.Equal(bearer.Raw, query.Raw);
    }

    [Fact]
    public async Task Auth_failures_have_the_documented_shapes()
    {
        var unknown = await GetAsync("/api/v0/machines?owner=me", key: "deadbeef");
        var unknownViaQuery = await GetAsync("/api/v0/users/current", key: "deadbeef", viaQuery: true);
        var none = await GetAsync("/api/v0/machines?owner=me", key: null);
        var bundlesBadKey = await PostAsync("/api/v0/bundles/", "{}", key: "deadbeef");
        var invoicesBadKey = await GetAsync("/api/v1/invoices/", key: "deadbeef");
        var bundlesAnonymous = await PostAsync("/api/v0/bundles/", "{\"limit\": 2}", key: null);

        Assert.Equal(HttpStatusCode.Unauthorized, unknown.Status);
        Assert.Equal("{\"msg\":\"Invalid user key\"}", unknown.Raw);
        Assert.Equal(HttpStatusCode.Unauthorized, unknownViaQuery.Status);
        Assert.Equal(HttpStatusCode.Forbidden, none.Status);
        Assert.Equal("{\"success\":false,\"error\":\"auth_error\",\"msg\":\"This action requires login.\"}", none.Raw);
        Assert.Equal(HttpStatusCode.NotFound, bundlesBadKey.Status);
        Assert.Equal("{\"success\":false,\"error\":\"auth_error\",\"msg\":\"Invalid user key\"}", bundlesBadKey.Raw);
        Assert.Equal(HttpStatusCode.NotFound, invoicesBadKey.Status);
        Assert.Equal("auth_error", invoicesBadKey.Obj["error"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, bundlesAnonymous.Status);
        Assert.Equal(2, bundlesAnonymous.Obj["offers"]!.AsArray().Count);
    }

    [Fact]
    public async Task The_api_key_is_never_echoed_in_responses_or_in_the_request_log()
    {
        var lines = new List<string>();
        Settings.Log = line =>
        {
            lock (lines)
            {
                lines.Add(line);
            }
        };
        var replies = new List<Reply>
        {
            await GetAsync("/api/v0/users/current", viaQuery: true),
            await GetAsync("/api/v0/machines?owner=me&extra=1", viaQuery: true),
            await PutAsync($"/api/v0/machines/{Rig}/minbid/", new JsonObject { ["client_id"] = "me", ["price"] = 0.2 }),
            await GetAsync("/api/v0/machines?owner=me", key: Key + "x", viaQuery: true),
        };
        var log = await GetAsync("/_emulator/requests", key: null);

        Assert.All(replies, r => Assert.DoesNotContain(Key, r.Raw, StringComparison.Ordinal));
        Assert.DoesNotContain(Key, log.Raw, StringComparison.Ordinal);
        Assert.DoesNotContain("api_key", log.Raw, StringComparison.Ordinal);
        Assert.Null(replies[0].Obj["api_key"]);
        Assert.Equal("owner=me&extra=1", State.Requests[1].Query);
        Assert.Equal(4, lines.Count);
        Assert.All(lines, l => Assert.DoesNotContain(Key, l, StringComparison.Ordinal));
        Assert.Equal($"GET /api/v0/users/current -> 200 current_user user={State.PrimaryUserId}", lines[0]);
    }

    [Fact]
    public async Task Every_path_works_with_and_without_a_trailing_slash()
    {
        var paths = new[]
        {
            "/api/v0/machines?owner=me", "/api/v0/machines/?owner=me",
            $"/api/v0/machines/{Rig}?owner=me", $"/api/v0/machines/{Rig}/?owner=me",
            "/api/v0/users/current", "/api/v0/users/current/",
            $"/api/v0/machines/maintenances?owner=me&machine_ids=[{Rig}]", $"/api/v0/machines/maintenances/?owner=me&machine_ids=[{Rig}]",
            $"/api/v0/machines/{Rig}/reports", $"/api/v0/machines/{Rig}/reports/",
            "/api/v0/metrics/gpu/current?verified=all", "/api/v0/metrics/gpu/current/?verified=all",
            "/api/v0/instances/pending-price-increases", "/api/v0/instances/pending-price-increases/",
            "/api/v0/bundles", "/api/v0/bundles/",
        };
        foreach (var path in paths)
        {
            Assert.Equal(HttpStatusCode.OK, (await GetAsync(path)).Status);
        }

        Assert.Equal(HttpStatusCode.OK, (await DeleteAsync($"/api/v0/machines/{Rig}/asks")).Status);
        Assert.Equal(HttpStatusCode.OK, (await DeleteAsync($"/api/v0/machines/{Rig}/asks/")).Status);
        Assert.Equal(HttpStatusCode.OK, (await PutAsync($"/api/v0/machines/{Rig}/dnotify", new JsonObject { ["sdate"] = Now + 3600, ["duration"] = 1 })).Status);
        Assert.Equal(HttpStatusCode.OK, (await PutAsync("/api/v0/machines/create_asks", AskBody(Rig))).Status);
    }

    [Fact]
    public async Task User_segment_me_current_0_and_the_own_id_all_mean_the_caller()
    {
        var sday = (Now / 86400 - 2).ToString(CultureInfo.InvariantCulture);
        foreach (var segment in new[] { "me", "current", "0", State.PrimaryUserId.ToString(CultureInfo.InvariantCulture) })
        {
            var user = await GetAsync($"/api/v0/users/{segment}/");
            var earnings = await GetAsync($"/api/v0/users/{segment}/machine-earnings?owner=me&sday={sday}&eday={sday}&machid=null");
            Assert.Equal(State.PrimaryUserId, user.Obj["id"]!.GetValue<int>());
            Assert.Equal(HttpStatusCode.OK, earnings.Status);
        }

        var someoneElse = await GetAsync($"/api/v0/users/{State.OtherUserId}/machine-earnings?owner=me");
        Assert.Equal(HttpStatusCode.Forbidden, someoneElse.Status);
    }

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
    public async Task Current_user_has_the_documented_fields_and_never_the_api_key()
    {
        var user = (await GetAsync("/api/v0/users/current")).Obj;

        Assert.Equal(State.PrimaryUserId, user["id"]!.GetValue<int>());
        Assert.Equal("demo-host", user["username"]!.GetValue<string>());
        foreach (var key in new[] { "key_id", "email", "balance", "credit", "ssh_key", "sid", "fullname", "has_payout", "email_verified" })
        {
            Assert.True(user.ContainsKey(key), key);
        }

        Assert.False(user.ContainsKey("api_key"));
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

    // ------------------------------------------------------------------ §5 offer search

    [Fact]
    public async Task Bundles_compare_numerically_even_when_values_are_strings()
    {
        var reply = await PostAsync("/api/v0/bundles/", new JsonObject
        {
            ["num_gpus"] = new JsonObject { ["eq"] = "1" },
            ["reliability"] = new JsonObject { ["gt"] = "0.98" },
            ["gpu_name"] = new JsonObject { ["eq"] = "RTX 4090" },
            ["verified"] = new JsonObject { ["eq"] = true },
            ["external"] = new JsonObject { ["eq"] = false },
            ["type"] = "on-demand",
            ["allocated_storage"] = 5.0,
        });

        Assert.Equal("application/json", reply.ContentType);
        var offers = reply.Obj["offers"]!.AsArray();
        Assert.NotEmpty(offers);
        Assert.All(offers, o =>
        {
            Assert.Equal(1, o!["num_gpus"]!.GetValue<int>());
            Assert.True(o["reliability"]!.GetValue<double>() > 0.98);
            Assert.Equal("RTX 4090", o["gpu_name"]!.GetValue<string>());
            Assert.True(o["verified"]!.GetValue<bool>());
            Assert.Equal(o["dph_base"]!.GetValue<double>() + 5.0 * o["storage_cost"]!.GetValue<double>() / Pricing.HoursPerMonth, o["dph_total"]!.GetValue<double>(), 9);
        });
    }

    [Fact]
    public async Task Bundles_support_notin_in_multiple_ops_per_field_and_eq_any()
    {
        var everything = (await PostAsync("/api/v0/bundles/", "{}")).Obj["offers"]!.AsArray();
        var range = (await PostAsync("/api/v0/bundles/", "{\"num_gpus\": {\"gte\": \"2\", \"lte\": 4}, \"gpu_name\": {\"notin\": [\"RTX 4090\", \"RTX 3090\"]}}")).Obj["offers"]!.AsArray();
        var chosen = (await PostAsync("/api/v0/bundles/", "{\"gpu_name\": {\"in\": [\"H100 SXM\", \"A100 SXM4\"]}, \"rentable\": {\"eq\": \"true\"}}")).Obj["offers"]!.AsArray();
        var any = (await PostAsync("/api/v0/bundles/", "{\"verified\": {\"eq\": \"any\"}, \"rented\": {\"eq\": \"any\"}, \"machine_id\": {\"eq\": " + Rig + "}}")).Obj["offers"]!.AsArray();
        var neq = (await PostAsync("/api/v0/bundles/", "{\"verification\": {\"neq\": \"verified\"}}")).Obj["offers"]!.AsArray();
        var badOp = await PostAsync("/api/v0/bundles/", "{\"num_gpus\": {\"nin\": [1]}}");

        Assert.NotEmpty(range);
        Assert.All(range, o =>
        {
            Assert.InRange(o!["num_gpus"]!.GetValue<int>(), 2, 4);
            Assert.DoesNotContain(o["gpu_name"]!.GetValue<string>(), new[] { "RTX 4090", "RTX 3090" });
        });
        Assert.NotEmpty(chosen);
        Assert.All(chosen, o => Assert.Contains(o!["gpu_name"]!.GetValue<string>(), new[] { "H100 SXM", "A100 SXM4" }));
        Assert.All(chosen, o => Assert.True(o!["rentable"]!.GetValue<bool>()));
        Assert.Equal(4, any.Count);
        Assert.All(neq, o => Assert.NotEqual("verified", o!["verification"]!.GetValue<string>()));
        Assert.True(everything.Count > range.Count + neq.Count);
        Assert.Equal(HttpStatusCode.BadRequest, badOp.Status);
        Assert.Equal("invalid_request", badOp.Obj["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task Bundles_get_with_q_put_search_asks_order_and_limit()
    {
        var q = "{\"external\":{\"eq\":\"false\"},\"type\":\"on-demand\",\"disable_bundling\":true,\"order\":[[\"dph_total\",\"asc\"]],\"limit\":25}";
        var get = await GetAsync("/api/v0/bundles/?q=" + Uri.EscapeDataString(q));
        var post = await PostAsync("/api/v0/bundles/", q);
        var search = await PutAsync("/api/v0/search/asks/", new JsonObject
        {
            ["select_cols"] = new JsonArray("id", "dph_total", "gpu_name"),
            ["q"] = JsonNode.Parse(q),
        });
        var descending = await PostAsync("/api/v0/bundles/", "{\"order\": [[\"score\", \"desc\"]], \"limit\": 10}");
        var bad = await PostAsync("/api/v0/bundles/", "not json");
        var badGet = await GetAsync("/api/v0/bundles/?q=" + Uri.EscapeDataString("{oops"));

        Assert.Equal("application/json", get.ContentType);
        Assert.Equal(get.Raw, post.Raw);
        var prices = get.Obj["offers"]!.AsArray().Select(o => o!["dph_total"]!.GetValue<double>()).ToList();
        Assert.Equal(25, prices.Count);
        Assert.Equal(prices.Order(), prices);
        var projected = search.Obj["offers"]!.AsArray();
        Assert.Equal(25, projected.Count);
        Assert.Equal(["id", "dph_total", "gpu_name"], projected[0]!.AsObject().Select(p => p.Key));
        var scores = descending.Obj["offers"]!.AsArray().Select(o => o!["score"]!.GetValue<double>()).ToList();
        Assert.Equal(scores.OrderDescending(), scores);
        Assert.Equal(HttpStatusCode.BadRequest, bad.Status);
        Assert.Equal("{\"error\":\"invalid_request\",\"msg\":\"Invalid json body\"}", bad.Raw);
        Assert.Equal(HttpStatusCode.BadRequest, badGet.Status);
    }

    [Fact]
    public async Task Bundles_contain_the_own_offers_duplicates_and_stray_whitespace_like_the_real_market()
    {
        var offers = (await PostAsync("/api/v0/bundles/", "{}")).Obj["offers"]!.AsArray().Select(o => o!.AsObject()).ToList();

        Assert.Contains(offers, o => o["host_id"]!.GetValue<int>() == State.PrimaryUserId);
        Assert.Contains(offers, o => o["host_id"]!.GetValue<int>() == State.OtherUserId);
        var duplicates = offers.GroupBy(o => o["id"]!.GetValue<int>()).Where(g => g.Count() > 1).ToList();
        Assert.NotEmpty(duplicates);
        Assert.All(duplicates, g => Assert.NotEqual(g.First()["score"]!.GetValue<double>(), g.Last()["score"]!.GetValue<double>()));
        Assert.True(offers.Select(o => o["host_id"]!.GetValue<int>()).Distinct().Count() > 50);
        Assert.True(offers.Select(o => o["gpu_name"]!.GetValue<string>()).Distinct().Count() >= 8);
        Assert.Contains(offers, o => o["public_ipaddr"]!.GetValue<string>() != o["public_ipaddr"]!.GetValue<string>().Trim());
        Assert.Contains(offers, o => !o["rentable"]!.GetValue<bool>() && o["rented"]!.GetValue<bool>());
        Assert.Contains(offers, o => o["verification"]!.GetValue<string>() == "unverified");
        Assert.All(offers, o => Assert.False(o["external"]!.GetValue<bool>()));
    }

    [Fact]
    public async Task Gpu_metrics_are_computed_from_the_market()
    {
        var reply = await GetAsync("/api/v0/metrics/gpu/current/?verified=all&hosting_type=all&num_gpus=1");
        var verified = await GetAsync("/api/v0/metrics/gpu/current/?verified=yes&hosting_type=all&num_gpus=all");

        Assert.True(reply.Obj["success"]!.GetValue<bool>());
        var gpus = reply.Obj["gpus"]!.AsArray();
        var rtx4090 = gpus.Single(g => g!["gpu_name"]!.GetValue<string>() == "RTX 4090")!;
        foreach (var key in new[] { "total", "available", "rented_verified", "avail_verified", "rented_unverified", "avail_unverified", "usage", "usage_30d", "dlperf", "tflops", "price_p10", "price_p25", "price_median", "price_p75", "price_p90" })
        {
            Assert.True(rtx4090.AsObject().ContainsKey(key), key);
        }

        // num_gpus=1: one unit per 1-GPU offer (deduplicated by id); percentiles over the available ones' dph_base.
        var singles = (await PostAsync("/api/v0/bundles/", "{\"gpu_name\": {\"eq\": \"RTX 4090\"}, \"num_gpus\": {\"eq\": 1}}")).Obj["offers"]!.AsArray()
            .GroupBy(o => o!["id"]!.GetValue<int>()).Select(g => g.First()!).ToList();
        Assert.Equal(singles.Count, rtx4090["total"]!.GetValue<int>());
        Assert.Equal(singles.Count(o => o["rentable"]!.GetValue<bool>()), rtx4090["available"]!.GetValue<int>());
        var available = singles.Where(o => o["rentable"]!.GetValue<bool>()).Select(o => o["dph_base"]!.GetValue<double>()).Order().ToList();
        Assert.Equal(Math.Round(Median(available), 4, MidpointRounding.AwayFromZero), rtx4090["price_median"]!.GetValue<double>());
        Assert.True(rtx4090["price_p10"]!.GetValue<double>() <= rtx4090["price_p90"]!.GetValue<double>());
        Assert.All(verified.Obj["gpus"]!.AsArray(), g => Assert.Equal(0, g!["rented_unverified"]!.GetValue<int>() + g["avail_unverified"]!.GetValue<int>()));
    }

    private static double Median(List<double> sorted) =>
        sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;

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

/// <summary>Rate limits with the published thresholds on a frozen fake clock: nothing passes until the clock moves.</summary>
public sealed class EmulatorBehaviourRateLimitTests : EmulatorBehaviourTestBase
{
    protected override EmulatorOptions Options() => new()
    {
        TimeProvider = Time,
        RateLimitsEnabled = true,
        RateLimitScale = 1.0,
        OfferCount = 100,
    };

    [Fact]
    public async Task A_second_call_inside_the_threshold_is_429_in_both_documented_shapes_without_retry_after_or_effect()
    {
        var body = new JsonObject { ["client_id"] = "me", ["price"] = 0.21 };
        var ok = await PutAsync($"/api/v0/machines/{Rig}/minbid/", body);
        var replies = new List<Reply>();
        for (var i = 0; i < 4; i++)
        {
            replies.Add(await PutAsync($"/api/v0/machines/{Rig}/minbid/", new JsonObject { ["client_id"] = "me", ["price"] = 0.5 + i }));
        }

        Assert.Equal(HttpStatusCode.OK, ok.Status);
        Assert.All(replies, r => Assert.Equal(HttpStatusCode.TooManyRequests, r.Status));
        Assert.All(replies, r => Assert.False(r.HasRetryAfter));
        var text = replies.Where(r => r.Json is null).ToList();
        var json = replies.Where(r => r.Json is not null).ToList();
        Assert.Equal(2, text.Count);
        Assert.Equal(2, json.Count);
        Assert.All(text, r => Assert.Equal("API requests too frequent: endpoint threshold=1.5", r.Raw));
        Assert.All(text, r => Assert.StartsWith("text/plain", r.ContentType, StringComparison.Ordinal));
        Assert.All(json, r => Assert.Equal("{\"detail\":\"API requests too frequent endpoint threshold=1.5\"}", r.Raw));
        Assert.NotEqual(replies[0].Json is null, replies[1].Json is null);
        Assert.Equal(0.21, Machine(Rig)["min_bid_price"]!.GetValue<double>());
        Assert.All(State.Requests.Skip(1), r => Assert.True(r.RateLimited && !r.Applied));

        Time.Advance(TimeSpan.FromSeconds(1.5));
        Assert.Equal(HttpStatusCode.OK, (await PutAsync($"/api/v0/machines/{Rig}/minbid/", new JsonObject { ["client_id"] = "me", ["price"] = 0.22 })).Status);
        Assert.Equal(0.22, Machine(Rig)["min_bid_price"]!.GetValue<double>());
    }

    [Fact]
    public async Task Limits_are_per_endpoint_and_per_key_with_the_published_or_default_thresholds()
    {
        Assert.Equal(HttpStatusCode.OK, (await GetAsync("/api/v0/machines?owner=me")).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync("/api/v0/users/current")).Status);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync("/api/v0/machines?owner=me", key: State.OtherApiKey)).Status);
        var limited = await GetAsync("/api/v0/machines?owner=me");
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.Status);
        Assert.Contains("threshold=1.0", limited.Raw, StringComparison.Ordinal);

        Time.Advance(TimeSpan.FromSeconds(0.999));
        Assert.Equal(HttpStatusCode.TooManyRequests, (await GetAsync("/api/v0/machines?owner=me")).Status);
        Time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(HttpStatusCode.OK, (await GetAsync("/api/v0/machines?owner=me")).Status);

        Assert.Equal(8.0, State.ThresholdSeconds(Endpoints.Cleanup));
        Assert.Equal(3.0, State.ThresholdSeconds(Endpoints.GpuMetrics));
        Assert.Equal(2.8, State.ThresholdSeconds(Endpoints.CreateBids));
        Assert.Equal(1.0, State.ThresholdSeconds(Endpoints.CreateAsks));
    }

    [Fact]
    public async Task The_scale_multiplies_every_threshold_and_the_admin_api_can_switch_limits_off()
    {
        var scaled = await PostAsync("/_emulator/ratelimit", "{\"enabled\": true, \"scale\": 0.01}", key: null);
        await PutAsync($"/api/v0/machines/{Rig}/cleanup/", new JsonObject());
        var limited = await PutAsync($"/api/v0/machines/{Rig}/cleanup/", new JsonObject());
        Time.Advance(TimeSpan.FromMilliseconds(80));
        var passed = await PutAsync($"/api/v0/machines/{Rig}/cleanup/", new JsonObject());
        await PostAsync("/_emulator/ratelimit", "{\"enabled\": false}", key: null);
        var burst = new List<HttpStatusCode>();
        for (var i = 0; i < 5; i++)
        {
            burst.Add((await GetAsync("/api/v0/machines?owner=me")).Status);
        }

        Assert.Equal("{\"enabled\":true,\"scale\":0.01}", scaled.Raw);
        Assert.Equal(HttpStatusCode.TooManyRequests, limited.Status);
        Assert.Contains("threshold=0.08", limited.Raw, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, passed.Status);
        Assert.All(burst, s => Assert.Equal(HttpStatusCode.OK, s));
    }
}
