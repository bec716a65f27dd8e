using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;

namespace VastHostAgent.Vast;

/// <summary>Configuration section <c>vast</c>: the Vast host API.</summary>
public sealed class VastOptions
{
    public const string SectionName = "vast";

    /// <summary>Talk to the Vast API (needs an API key). Off: the agent only exports local telemetry.</summary>
    public bool Enabled { get; set; }

    /// <summary>Base URL of the API.</summary>
    [Required(AllowEmptyStrings = false)]
    [RegularExpression(@"^https?://[^\s/]+(:\d+)?/?$", ErrorMessage = "must be an http(s) URL without a path, e.g. https://console.vast.ai")]
    public string BaseUrl { get; set; } = "https://console.vast.ai";

    /// <summary>
    /// A file holding the API key, readable by the agent only (mode 0600 or 0400). Used when the systemd
    /// credential <see cref="ApiKeyCredential"/> is absent. Empty: fall back to the VAST_API_KEY variable.
    /// </summary>
    public string ApiKeyFile { get; set; } = "";

    /// <summary>Name of the systemd credential (LoadCredential=) holding the key, read from $CREDENTIALS_DIRECTORY.</summary>
    [Required(AllowEmptyStrings = false)]
    [RegularExpression(@"^[A-Za-z0-9_.-]+$", ErrorMessage = "must be a credential name (letters, digits, '_', '.', '-')")]
    public string ApiKeyCredential { get; set; } = "vast-api-key";

    /// <summary>This machine's Vast id. 0: find it by matching this host's name in GET /machines.</summary>
    [Range(0, long.MaxValue, ErrorMessage = "must be 0 (find by host name) or the machine id")]
    public long MachineId { get; set; }

    /// <summary>Host name to match in GET /machines when <see cref="MachineId"/> is 0; empty = this machine's host name.</summary>
    public string Hostname { get; set; } = "";

    /// <summary>How often the machine record is read (listing, occupancy, rentals).</summary>
    [DurationRange("00:00:10", "01:00:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often earnings, reports and the account are read.</summary>
    [DurationRange("00:05:00", "1.00:00:00")]
    public TimeSpan AccountPollInterval { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>Minimum spacing between calls to an endpoint without a published threshold (seconds).</summary>
    [Range(0.1, 60.0, ErrorMessage = "must be between 0.1 and 60 seconds")]
    public double DefaultSpacingSeconds { get; set; } = 2.0;

    /// <summary>Multiplies every per-endpoint spacing (the published thresholds). Keep 1; tests use smaller values.</summary>
    [Range(0.001, 10.0, ErrorMessage = "must be between 0.001 and 10")]
    public double SpacingScale { get; set; } = 1.0;

    /// <summary>Longest back-off after repeated 429s on one endpoint.</summary>
    [DurationRange("00:00:01", "01:00:00")]
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Timeout of one HTTP attempt.</summary>
    [DurationRange("00:00:01", "00:05:00")]
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Retries of a read after 429, 502/503/504 or a timeout. Mutations are never retried.</summary>
    [Range(0, 10, ErrorMessage = "must be between 0 and 10")]
    public int ReadRetries { get; set; } = 3;

    /// <summary>
    /// Consecutive failures (5xx, timeouts, connection errors; every attempt, on any endpoint, reads and changes
    /// alike) that open the circuit breaker. Any other answer (2xx, 4xx, 429) resets the count.
    /// </summary>
    [Range(2, 100, ErrorMessage = "must be between 2 and 100")]
    public int CircuitBreakerFailures { get; set; } = 5;

    /// <summary>
    /// How long the open circuit rejects every call without sending it. Then one probe call goes out: its
    /// answer closes the circuit, its failure opens it for another break.
    /// </summary>
    [DurationRange("00:00:01", "01:00:00")]
    public TimeSpan CircuitBreakDuration { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>When enabled, an API key must be available from a safe place.</summary>
internal sealed class VastOptionsValidator(VastApiKeyProvider keys) : IValidateOptions<VastOptions>
{
    public ValidateOptionsResult Validate(string? name, VastOptions options) =>
        options.Enabled && keys.Check(options) is { } problem
            ? ValidateOptionsResult.Fail(problem.StartsWith("vast.", StringComparison.Ordinal) ? problem : "vast: " + problem)
            : ValidateOptionsResult.Success;
}

/// <summary>Source-generated metadata of the section: keys, types and validation attributes for the start-up check.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(VastOptions))]
internal sealed partial class VastOptionsJson : JsonSerializerContext;
