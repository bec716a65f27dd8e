using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using VastEmulator;

namespace VastHostAgent.Tests.Vast;

/// <summary>
/// Starts one emulator per test (IAsyncLifetime) on a fake clock and talks to it with raw HttpClient requests,
/// the way the agent's client will. Each checklist item of vast-api.md §6 has a test in one of the
/// EmulatorBehaviour*Tests classes (one per area, so they run in parallel).
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
