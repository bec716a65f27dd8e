using System.Net;
using System.Text.Json.Nodes;
using VastEmulator;

namespace VastHostAgent.Tests.Vast;

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
