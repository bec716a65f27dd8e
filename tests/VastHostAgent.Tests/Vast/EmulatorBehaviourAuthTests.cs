using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;

namespace VastHostAgent.Tests.Vast;

/// <summary>The emulator as vast-api.md §1 describes it: authentication, paths and user segments.</summary>
public sealed class EmulatorBehaviourAuthTests : EmulatorBehaviourTestBase
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
    public async Task The_api_key_is_echoed_only_as_the_user_objects_api_key_and_never_in_the_request_log()
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

        // The real API returns the caller's key in the user object (the CLI pops it before printing, and fails
        // without it); no other answer carries it.
        Assert.Equal(Key, replies[0].Obj["api_key"]!.GetValue<string>());
        Assert.All(replies.Skip(1), r => Assert.DoesNotContain(Key, r.Raw, StringComparison.Ordinal));
        Assert.DoesNotContain(Key, log.Raw, StringComparison.Ordinal);
        Assert.DoesNotContain("api_key", log.Raw, StringComparison.Ordinal);
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

    [Fact]
    public async Task An_empty_bearer_header_answers_like_no_key()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(Emulator.BaseUrl, "/api/v0/machines?owner=me"));
        request.Headers.TryAddWithoutValidation("Authorization", "Bearer ");
        using var response = await Http.SendAsync(request);
        var none = await GetAsync("/api/v0/machines?owner=me", key: null);

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal(none.Raw, await response.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Forbidden, none.Status);
    }

    [Fact]
    public async Task The_public_gpu_names_list_needs_no_key_and_names_every_model_in_the_market()
    {
        var anonymous = await GetAsync("/api/v0/gpu_names/unique/", key: null);
        var withKey = await GetAsync("/api/v0/gpu_names/unique");
        var offers = (await PostAsync("/api/v0/bundles/", "{\"limit\": 10000, \"rentable\": {\"eq\": \"any\"}, \"rented\": {\"eq\": \"any\"}, \"verified\": {\"eq\": \"any\"}}")).Obj["offers"]!.AsArray();

        Assert.Equal(HttpStatusCode.OK, anonymous.Status);
        Assert.Equal(anonymous.Raw, withKey.Raw);
        var names = anonymous.Obj["gpu_names"]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.Equal(names.Order(StringComparer.Ordinal), names);
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.Subset(names.ToHashSet(), offers.Select(o => o!["gpu_name"]!.GetValue<string>()).ToHashSet());
        Assert.Contains("RTX 4090", names);
    }
}
