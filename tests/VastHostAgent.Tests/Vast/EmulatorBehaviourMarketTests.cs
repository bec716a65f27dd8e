using System.Net;
using System.Text.Json.Nodes;
using VastEmulator;

namespace VastHostAgent.Tests.Vast;

/// <summary>The emulator's offer search and GPU price metrics (vast-api.md §5).</summary>
public sealed class EmulatorBehaviourMarketTests : EmulatorBehaviourTestBase
{
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

    [Fact]
    public async Task Geolocation_searches_take_country_codes()
    {
        const string Any = "\"rentable\": {\"eq\": \"any\"}, \"rented\": {\"eq\": \"any\"}, \"verified\": {\"eq\": \"any\"}, \"limit\": 10000";
        static string Country(JsonNode? offer) => offer!["geolocation"]!.GetValue<string>().Split(',')[^1].Trim();
        var all = (await PostAsync("/api/v0/bundles/", "{" + Any + "}")).Obj["offers"]!.AsArray();
        var usDe = (await PostAsync("/api/v0/bundles/", "{\"geolocation\": {\"in\": [\"US\", \"de\"]}, " + Any + "}")).Obj["offers"]!.AsArray();
        var us = (await PostAsync("/api/v0/bundles/", "{\"geolocation\": {\"eq\": \"US\"}, " + Any + "}")).Obj["offers"]!.AsArray();
        var notUs = (await PostAsync("/api/v0/bundles/", "{\"geolocation\": {\"notin\": [\"US\"]}, " + Any + "}")).Obj["offers"]!.AsArray();

        Assert.Equal(all.Count(o => Country(o) is "US" or "DE"), usDe.Count);
        Assert.NotEmpty(usDe);
        Assert.All(usDe, o => Assert.Contains(Country(o), new[] { "US", "DE" }));
        Assert.Equal(all.Count(o => Country(o) == "US"), us.Count);
        Assert.NotEmpty(us);
        Assert.Equal(all.Count - us.Count, notUs.Count);
    }
}
