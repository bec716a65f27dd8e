using System.Net;
using System.Text.Json;
using VastHostAgent.Vast;

namespace VastHostAgent.Tests.Vast;

/// <summary>
/// The Vast client over a scripted server and a fake clock: wire formats from the reference fixtures,
/// per-endpoint spacing, 429 back-off, read retries, no blind mutation retries, the circuit breaker, and
/// the API key never leaking.
/// </summary>
public sealed class VastClientTests
{
    private static Func<HttpRequestMessage, string, CancellationToken, Task<HttpResponseMessage>> Serve(Func<string, HttpResponseMessage?> route) =>
        (request, _, _) => Task.FromResult(route(request.Method + " " + request.RequestUri!.PathAndQuery) ?? new HttpResponseMessage(HttpStatusCode.NotFound));

    [Fact]
    public async Task Machines_from_the_reference_snapshot_parse_including_odd_types_and_unknown_fields()
    {
        await using var t = VastTestClient.Create();
        t.Server.Respond = Serve(r => r.StartsWith("GET /api/v0/machines/?owner=me", StringComparison.Ordinal) ? StubVastServer.Json(StubVastServer.Fixture("machines.json")) : null);

        var machines = await t.RunAsync(c => c.GetMachinesAsync(default));

        Assert.Equal(2, machines.Count);
        var m = machines[0];
        Assert.Equal(67890, m.EffectiveId);
        Assert.True(m.Online);
        Assert.True(m.Listed);
        Assert.Equal(0.43, m.ListedGpuCost);
        Assert.Equal(8, m.ListedMinGpuCount);
        Assert.Equal(1788375600.0, m.ClientEndDate);
        Assert.Equal(new Dictionary<string, int> { ["free"] = 6, ["on_demand"] = 2, ["interruptible"] = 0, ["reserved"] = 0 }, m.OccupancyCounts());
        var window = Assert.Single(m.MachineMaintenance!);
        Assert.Equal(1790000000.0 + (2.5 * 3600), window.EffectiveEnd);

        var odd = machines[1];
        Assert.Equal(67891, odd.EffectiveId);     // id as a string
        Assert.Equal(4, odd.NumGpus);             // 4.0
        Assert.Equal(1, odd.ListedMinGpuCount);   // "1"
        Assert.False(odd.Online);                 // timeout 312
        Assert.Null(odd.MachineMaintenance);      // "none"
        Assert.Equal(["--work", "hard"], odd.DefaultJobArgs());
        Assert.Equal(0.5, odd.Reliability2);
    }

    [Fact]
    public async Task One_machine_comes_as_a_bare_one_element_array()
    {
        await using var t = VastTestClient.Create();
        t.Server.Respond = Serve(r => r.StartsWith("GET /api/v0/machines/67890/?owner=me", StringComparison.Ordinal) ? StubVastServer.Json(StubVastServer.Fixture("machine.json")) : null);
        var m = await t.RunAsync(c => c.GetMachineAsync(67890, default));
        Assert.Equal("example-host", m.Hostname);
        Assert.Equal(["--threads", "8"], m.DefaultJobArgs());
    }

    [Fact]
    public async Task Maintenances_earnings_reports_metrics_and_offers_parse_from_the_reference_shapes()
    {
        await using var t = VastTestClient.Create();
        t.Server.Respond = Serve(r => r switch
        {
            _ when r.StartsWith("GET /api/v0/machines/maintenances/?owner=me&machine_ids=%5B67890%2C%2042%5D", StringComparison.Ordinal) => StubVastServer.Json(StubVastServer.Fixture("maintenances.json")),
            _ when r.StartsWith("GET /api/v0/users/me/machine-earnings/?owner=me&sday=20418&eday=20421&machid=null", StringComparison.Ordinal) => StubVastServer.Json(StubVastServer.Fixture("earnings.json")),
            _ when r.StartsWith("GET /api/v0/machines/67890/reports/", StringComparison.Ordinal) => StubVastServer.Json(StubVastServer.Fixture("reports.json")),
            _ when r.StartsWith("GET /api/v0/metrics/gpu/current/?verified=yes&hosting_type=all&num_gpus=8", StringComparison.Ordinal) => StubVastServer.Json(StubVastServer.Fixture("gpu-metrics.json")),
            _ when r.StartsWith("GET /api/v0/metrics/gpu/current/?verified=no", StringComparison.Ordinal) => StubVastServer.Json(StubVastServer.Fixture("gpu-metrics-no-machines.json")),
            _ when r.StartsWith("POST /api/v0/bundles/", StringComparison.Ordinal) => StubVastServer.Json(StubVastServer.Fixture("offers.json")),
            _ => null,
        });

        var windows = await t.RunAsync(c => c.GetMaintenancesAsync([67890, 42], default));
        Assert.Equal(2, windows.Count);
        Assert.Equal(1790100000.0 + 3600, windows[1].EffectiveEnd);
        Assert.Equal("swap riser", windows[1].MaintenanceReason);

        var earnings = await t.RunAsync(c => c.GetEarningsAsync(20418, 20421, null, default));
        Assert.Equal(512.34, earnings.Current!.Balance);
        Assert.Equal(3, earnings.PerDay!.Count);
        Assert.Equal(20420, earnings.PerDay[2].Day);   // 20420.0
        Assert.Equal(40.0, earnings.PerDay[2].Total);  // "39" + 1.0

        var reports = await t.RunAsync(c => c.GetReportsAsync(67890, default));
        Assert.Equal(1789000000.5, reports[0].CreatedAt);
        Assert.Equal(DateTimeOffset.Parse("2026-09-01T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeSeconds(), reports[1].CreatedAt);

        var metrics = await t.RunAsync(c => c.GetGpuMetricsAsync("yes", "all", "8", default));
        Assert.Equal(0.39, Assert.Single(metrics).PriceMedian);
        Assert.Empty(await t.RunAsync(c => c.GetGpuMetricsAsync("no", "all", "all", default)));

        var offers = await t.RunAsync(c => c.SearchOffersAsync(new OfferQuery().Where("gpu_name", "eq", "RTX 4090"), default));
        Assert.Equal(2, offers.Count);                                   // 9001 twice → once
        Assert.Equal(130.0, offers.Single(o => o.Id == 9001).Score);     // the higher score kept
        var strings = offers.Single(o => o.Id == 9002);
        Assert.Equal(78, strings.HostId);
        Assert.Equal(0.35, strings.DphBase);
        Assert.True(strings.Rentable);
        Assert.False(strings.Rented);
    }

    [Fact]
    public async Task Create_asks_always_sends_every_listing_field_and_a_numeric_min_chunk_and_the_key_only_in_the_header()
    {
        await using var t = VastTestClient.Create();
        t.Server.Respond = Serve(r => r.StartsWith("PUT /api/v0/machines/create_asks/", StringComparison.Ordinal) ? StubVastServer.Json("""{"success": true, "extended": 2}""") : null);

        var result = await t.RunAsync(c => c.ListMachineAsync(new CreateAsksRequest { Machine = 67890, PriceGpu = 0.45, EndDate = 1790000000 }, default));

        Assert.Equal(2, result.Extended);
        var request = Assert.Single(t.Server.Requests);
        using var body = JsonDocument.Parse(request.Body);
        var keys = body.RootElement.EnumerateObject().Select(p => p.Name).Order().ToList();
        Assert.Equal(["credit_discount_max", "duration", "end_date", "machine", "min_chunk", "price_disk", "price_gpu", "price_inetd", "price_inetu", "price_min_bid", "vol_price", "vol_size"], keys);
        Assert.Equal(1, body.RootElement.GetProperty("min_chunk").GetInt32());
        Assert.Equal(JsonValueKind.Null, body.RootElement.GetProperty("price_disk").ValueKind);
        Assert.Equal($"Bearer {VastTestClient.Key}", request.Authorization);
        Assert.DoesNotContain(VastTestClient.Key, request.PathAndQuery, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Write_endpoints_send_the_documented_bodies_and_read_their_answers()
    {
        await using var t = VastTestClient.Create();
        t.Server.Respond = Serve(r => r switch
        {
            _ when r.StartsWith("PUT /api/v0/machines/67890/minbid/", StringComparison.Ordinal) => StubVastServer.Json("""{"success": true, "you_sent": {"client_id": "me", "price": 0.3}}"""),
            _ when r.StartsWith("PUT /api/v0/machines/67890/dnotify/", StringComparison.Ordinal) => StubVastServer.Json("""{"success": true, "you_sent": "2 notifications sent"}"""),
            _ when r.StartsWith("PUT /api/v0/machines/67890/cancel_maint/", StringComparison.Ordinal) => StubVastServer.Json("""{"success": true, "ctime": 1790000000.1, "machine_id": 67890, "msg": "deleted 1 scheduled maintenance window(s) on machine 67890"}"""),
            _ when r.StartsWith("PUT /api/v0/machines/67890/cleanup/", StringComparison.Ordinal) => StubVastServer.Json("""{"success": true, "num_deleted": 5, "msg": "deleted 5 expired contracts on machine 67890"}"""),
            _ when r.StartsWith("PUT /api/v0/machines/create_bids/", StringComparison.Ordinal) => StubVastServer.Json("""{"success": true, "machine_id": 67890, "user_id": 4242, "you_sent": {}}"""),
            _ when r.StartsWith("DELETE /api/v0/machines/67890/defjob/", StringComparison.Ordinal) => StubVastServer.Json("""{"success": true, "machine_id": 67890, "user_id": 4242}"""),
            _ when r.StartsWith("DELETE /api/v0/machines/67890/asks/", StringComparison.Ordinal) => StubVastServer.Json("""{"success": true, "machine_id": 67890, "user_id": 4242}"""),
            _ when r.StartsWith("GET /api/v0/users/current/", StringComparison.Ordinal) => StubVastServer.Json("""{"id": 4242, "username": "demo-host", "balance": 12.5, "credit": 0, "api_key": "must-not-be-mapped"}"""),
            _ => null,
        });

        Assert.Equal(JsonValueKind.Object, (await t.RunAsync(c => c.SetMinBidAsync(67890, 0.3, default))).YouSent!.Value.ValueKind);
        var dnotify = await t.RunAsync(c => c.ScheduleMaintenanceAsync(67890, DateTimeOffset.FromUnixTimeSeconds(1790000000), TimeSpan.FromMinutes(90), "gpu", default));
        Assert.Equal("2 notifications sent", dnotify.YouSent!.Value.GetString());
        Assert.Contains("deleted 1 scheduled", (await t.RunAsync(c => c.CancelMaintenanceAsync(67890, default))).Msg, StringComparison.Ordinal);
        Assert.Equal(5, (await t.RunAsync(c => c.CleanupAsync(67890, default))).NumDeleted);
        await t.RunAsync(c => c.SetDefaultJobAsync(new CreateBidsRequest(67890, 0.12, null, null, "vastai/idle:latest", ["--threads", "8"]), default));
        await t.RunAsync(c => c.RemoveDefaultJobAsync(67890, default));
        await t.RunAsync(c => c.UnlistMachineAsync(67890, default));
        var user = await t.RunAsync(c => c.GetCurrentUserAsync(default));
        Assert.Equal(12.5, user.Balance);

        var bodies = t.Server.Requests.ToDictionary(r => r.PathAndQuery.Split('?')[0], r => r.Body);
        Assert.Equal("""{"client_id":"me","price":0.3}""", bodies["/api/v0/machines/67890/minbid/"]);
        Assert.Equal("""{"client_id":"me","sdate":1790000000,"duration":1.5,"maintenance_category":"gpu"}""", bodies["/api/v0/machines/67890/dnotify/"]);
        Assert.Equal("""{"client_id":"me","machine_id":67890}""", bodies["/api/v0/machines/67890/cancel_maint/"]);
        Assert.Equal("""{"machine":67890,"price_gpu":0.12,"price_inetu":null,"price_inetd":null,"image":"vastai/idle:latest","args":["--threads","8"]}""", bodies["/api/v0/machines/create_bids/"]);
        Assert.Equal("{}", bodies["/api/v0/machines/67890/defjob/"]);
        Assert.Equal("{}", bodies["/api/v0/machines/67890/asks/"]);
    }

    [Fact]
    public async Task A_success_false_answer_is_a_business_failure_with_the_APIs_message()
    {
        await using var t = VastTestClient.Create();
        t.Server.Respond = Serve(_ => StubVastServer.Json("""{"success": false, "msg": "Cannot unlist machine with active rentals"}"""));
        var ex = await Assert.ThrowsAsync<VastApiException>(() => t.RunAsync(c => c.UnlistMachineAsync(67890, default)));
        Assert.Equal(VastFailure.Business, ex.Failure);
        Assert.Contains("Cannot unlist machine with active rentals", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(401, """{"msg": "Invalid user key"}""", VastFailure.Authentication)]
    [InlineData(403, """{"success": false, "error": "auth_error", "msg": "This action requires login."}""", VastFailure.Authentication)]
    [InlineData(404, """{"success": false, "error": "auth_error", "msg": "Invalid user key"}""", VastFailure.Authentication)]
    [InlineData(400, """{"error": "invalid_args", "msg": "Invalid machine id or min_chunk"}""", VastFailure.Rejected)]
    [InlineData(500, "Internal Server Error", VastFailure.Server)]
    public async Task Error_shapes_map_to_failures_with_the_APIs_text(int status, string body, VastFailure expected)
    {
        await using var t = VastTestClient.Create(new() { ["vast:readRetries"] = "0" });
        t.Server.Respond = (_, _, _) => Task.FromResult(body.StartsWith('{') ? StubVastServer.Json(body, (HttpStatusCode)status) : StubVastServer.Text(body, (HttpStatusCode)status));
        var ex = await Assert.ThrowsAsync<VastApiException>(() => t.RunAsync(c => c.GetMachinesAsync(default)));
        Assert.Equal(expected, ex.Failure);
        Assert.Equal(status, ex.StatusCode);
    }

    [Fact]
    public async Task Garbage_bodies_are_a_malformed_failure_not_a_crash()
    {
        await using var t = VastTestClient.Create();
        t.Server.Respond = (_, _, _) => Task.FromResult(StubVastServer.Json("""{"machines": [ {"id": 1, "hostname": """));
        var ex = await Assert.ThrowsAsync<VastApiException>(() => t.RunAsync(c => c.GetMachinesAsync(default)));
        Assert.Equal(VastFailure.Malformed, ex.Failure);
    }

    [Fact]
    public async Task Calls_to_one_endpoint_are_spaced_by_its_published_threshold_and_other_endpoints_are_not_delayed()
    {
        await using var t = VastTestClient.Create();
        t.Server.Respond = Serve(r => r.Contains("/reports/", StringComparison.Ordinal) ? StubVastServer.Json("[]") : StubVastServer.Json("""{"id": 1}"""));
        var start = t.Time.GetUtcNow();

        await t.Client.GetReportsAsync(67890, default);
        var second = t.Client.GetReportsAsync(67890, default);
        await t.Client.GetCurrentUserAsync(default); // another endpoint goes out at once
        Assert.False(second.IsCompleted);
        t.Time.Advance(TimeSpan.FromMilliseconds(1190));
        await Task.WhenAny(second, Task.Delay(200));
        Assert.False(second.IsCompleted, "reports must wait its 1.2 s threshold");
        t.Time.Advance(TimeSpan.FromMilliseconds(11));
        await second;

        var times = t.Server.Requests.Where(r => r.PathAndQuery.Contains("/reports/", StringComparison.Ordinal)).Select(r => r.At - start).ToList();
        Assert.Equal([TimeSpan.Zero, TimeSpan.FromMilliseconds(1201)], times); // the threshold plus a 1 ms timer margin
        Assert.Equal(TimeSpan.Zero, t.Server.Requests.Single(r => r.PathAndQuery.Contains("/users/current/", StringComparison.Ordinal)).At - start);
    }

    [Fact]
    public async Task A_429_backs_the_endpoint_off_exponentially_from_its_threshold_with_jitter_and_a_cap_without_repeating_the_mutation()
    {
        await using var t = VastTestClient.Create();
        t.Server.Respond = (_, _, _) => Task.FromResult(StubVastServer.Text("API requests too frequent: endpoint threshold=1.5", HttpStatusCode.TooManyRequests));

        var backoffs = new List<TimeSpan>();
        for (var i = 0; i < 5; i++)
        {
            var ex = await Assert.ThrowsAsync<VastApiException>(() => t.RunAsync(c => c.SetMinBidAsync(67890, 0.3, default)));
            Assert.Equal(VastFailure.RateLimited, ex.Failure);
            backoffs.Add(ex.RetryAfter!.Value);
        }

        // minbid's threshold is 1.5 s: 1.5, 3, 6, then the 10 s cap of this test; each with up to 25 % jitter.
        Assert.InRange(backoffs[0].TotalSeconds, 1.5, 1.875);
        Assert.InRange(backoffs[1].TotalSeconds, 3.0, 3.75);
        Assert.InRange(backoffs[2].TotalSeconds, 6.0, 7.5);
        Assert.Equal(10.0, backoffs[3].TotalSeconds);
        Assert.Equal(10.0, backoffs[4].TotalSeconds);
        Assert.Equal(5, t.Server.Requests.Count); // one request per call: a 429'd change is not retried
        var gaps = t.Server.Requests.Zip(t.Server.Requests.Skip(1), (a, b) => b.At - a.At).ToList();
        for (var i = 0; i < gaps.Count; i++)
        {
            Assert.True(gaps[i] >= backoffs[i], $"call {i + 2} went out {gaps[i]} after a 429 that asked for {backoffs[i]}");
        }

        var metrics = await t.MetricsAsync();
        Assert.Contains("vasthost_vast_rate_limited_total{endpoint=\"minbid\"} 5", metrics, StringComparison.Ordinal);
        Assert.Contains("vasthost_vast_requests_total{endpoint=\"minbid\",status_class=\"4xx\"} 5", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reads_are_retried_after_503_and_429_but_a_failed_mutation_is_sent_once()
    {
        await using var t = VastTestClient.Create();
        var machineCalls = 0;
        t.Server.Respond = (request, _, _) => Task.FromResult(request.Method == HttpMethod.Get
            ? ++machineCalls switch
            {
                1 => StubVastServer.Text("upstream", HttpStatusCode.ServiceUnavailable),
                2 => StubVastServer.Json("""{"detail": "API requests too frequent endpoint threshold=2"}""", HttpStatusCode.TooManyRequests),
                _ => StubVastServer.Json(StubVastServer.Fixture("machine.json")),
            }
            : StubVastServer.Text("bad gateway", HttpStatusCode.BadGateway));

        var machine = await t.RunAsync(c => c.GetMachineAsync(67890, default));
        Assert.Equal(67890, machine.EffectiveId);
        Assert.Equal(3, machineCalls);

        var ex = await Assert.ThrowsAsync<VastApiException>(() => t.RunAsync(c => c.ListMachineAsync(new CreateAsksRequest { Machine = 67890 }, default)));
        Assert.Equal(VastFailure.Server, ex.Failure);
        Assert.Single(t.Server.Requests, r => r.Method == HttpMethod.Put);
    }

    [Fact]
    public async Task A_mutation_without_an_answer_is_outcome_unknown_and_is_not_repeated()
    {
        await using var t = VastTestClient.Create(new() { ["vast:requestTimeout"] = "00:00:05" });
        t.Server.Respond = async (_, _, ct) =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            return StubVastServer.Json("{}");
        };

        var ex = await Assert.ThrowsAsync<VastApiException>(() => t.RunAsync(c => c.ListMachineAsync(new CreateAsksRequest { Machine = 67890, PriceGpu = 0.5 }, default)));
        Assert.Equal(VastFailure.OutcomeUnknown, ex.Failure);
        Assert.Contains("may or may not have been applied", ex.Message, StringComparison.Ordinal);
        Assert.Single(t.Server.Requests);
        Assert.Contains("vasthost_vast_requests_total{endpoint=\"create_asks\",status_class=\"timeout\"} 1", await t.MetricsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_circuit_opens_after_repeated_failures_rejects_calls_unsent_and_closes_after_a_good_probe()
    {
        await using var t = VastTestClient.Create(new() { ["vast:circuitBreakerFailures"] = "3", ["vast:circuitBreakDuration"] = "00:01:00", ["vast:readRetries"] = "0" });
        var healthy = false;
        t.Server.Respond = (_, _, _) => Task.FromResult(healthy ? StubVastServer.Json("""{"machines": []}""") : StubVastServer.Text("oops", HttpStatusCode.InternalServerError));

        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(VastFailure.Server, (await Assert.ThrowsAsync<VastApiException>(() => t.RunAsync(c => c.GetMachinesAsync(default)))).Failure);
        }

        var rejected = await Assert.ThrowsAsync<VastApiException>(() => t.RunAsync(c => c.GetMachinesAsync(default)));
        Assert.Equal(VastFailure.CircuitOpen, rejected.Failure);
        Assert.Equal(3, t.Server.Requests.Count);
        Assert.Contains("vasthost_vast_circuit_state 1", await t.MetricsAsync(), StringComparison.Ordinal);

        healthy = true;
        t.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Empty(await t.RunAsync(c => c.GetMachinesAsync(default)));
        Assert.Contains("vasthost_vast_circuit_state 0", await t.MetricsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_API_key_appears_in_no_exception_log_line_or_metric_on_any_error_path()
    {
        var key = VastTestClient.Key;
        await using var t = VastTestClient.Create(new() { ["vast:requestTimeout"] = "00:00:02", ["vast:circuitBreakerFailures"] = "50" });
        var scripts = new Func<CancellationToken, Task<HttpResponseMessage>>[]
        {
            _ => Task.FromResult(StubVastServer.Json($$"""{"msg": "Invalid user key {{key}}"}""", HttpStatusCode.Unauthorized)),
            _ => Task.FromResult(StubVastServer.Text($"API requests too frequent for key {key}", HttpStatusCode.TooManyRequests)),
            _ => Task.FromResult(StubVastServer.Text($"<html>502 bad gateway {key}</html>", HttpStatusCode.BadGateway)),
            _ => Task.FromResult(StubVastServer.Json($$"""{"success": false, "msg": "nope {{key}}"}""")),
            _ => Task.FromResult(StubVastServer.Json($$"""{"machines": [{"hostname": "{{key}}" """)),
            _ => Task.FromResult(StubVastServer.Json($$"""{"error": "invalid_args", "msg": "{{key}}"}""", HttpStatusCode.BadRequest)),
            _ => throw new HttpRequestException($"connection reset {key}", null, HttpStatusCode.BadGateway),
            async ct => { await Task.Delay(Timeout.Infinite, ct); return StubVastServer.Json("{}"); },
        };

        var messages = new List<string>();
        foreach (var script in scripts)
        {
            t.Server.Respond = (_, _, ct) => script(ct);
            foreach (var call in new Func<IVastClient, Task<object>>[]
                     {
                         async c => await c.GetMachinesAsync(default),
                         async c => await c.ListMachineAsync(new CreateAsksRequest { Machine = 1 }, default),
                         async c => await c.SetMinBidAsync(1, 0.1, default),
                     })
            {
                try
                {
                    await t.RunAsync(call, TimeSpan.FromSeconds(1));
                }
                catch (Exception ex)
                {
                    messages.Add(ex.ToString());
                }
            }
        }

        Assert.True(messages.Count >= 20, $"only {messages.Count} failures");
        Assert.All(messages, m => Assert.DoesNotContain(key, m, StringComparison.Ordinal));
        var leaking = t.Logs.GetSnapshot().Where(r => (r.Message + r.Exception).Contains(key, StringComparison.Ordinal)).ToList();
        Assert.True(leaking.Count == 0, "log lines with the key: " + string.Join("\n", leaking.Select(r => $"{r.Category} {r.Level}: {r.Message} {r.Exception?.GetType().Name}")));
        Assert.DoesNotContain(key, await t.MetricsAsync(), StringComparison.Ordinal);
        Assert.Contains("[redacted]", string.Join('\n', messages), StringComparison.Ordinal);
    }

    [Fact]
    public void An_offer_query_writes_the_filter_language_with_order_type_and_limit()
    {
        var json = new OfferQuery { Type = "on-demand", Limit = 500 }
            .Where("gpu_name", "eq", "RTX 4090")
            .Where("num_gpus", "gte", 2).Where("num_gpus", "lte", 8)
            .Where("verified", "eq", true)
            .Where("host_id", "notin", new long[] { 77, 78 })
            .OrderBy("score", descending: true)
            .ToJson();
        Assert.Equal(
            """{"gpu_name":{"eq":"RTX 4090"},"num_gpus":{"gte":2,"lte":8},"verified":{"eq":true},"host_id":{"notin":[77,78]},"order":[["score","desc"]],"type":"on-demand","limit":500,"allocated_storage":5}""",
            json);
        Assert.Throws<ArgumentException>(() => new OfferQuery().Where("x", "nin", 1));
    }
}
