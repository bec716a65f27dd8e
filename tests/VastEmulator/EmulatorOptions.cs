namespace VastEmulator;

/// <summary>Configuration of one emulator instance. Every default is documented in README.md.</summary>
public sealed class EmulatorOptions
{
    /// <summary>The demo account's API key (user 4242, "demo-host").</summary>
    public const string DefaultApiKey = "vastemu-demo-key-0123456789abcdef0123456789abcdef";

    /// <summary>The second host account's API key (user 4343, "other-host"): owns one machine, used to test not_authorized.</summary>
    public const string DefaultOtherApiKey = "vastemu-other-key-0123456789abcdef0123456789abcdef";

    /// <summary>TCP port on 127.0.0.1; 0 picks any free port.</summary>
    public int Port { get; set; }

    /// <summary>Seed of every random choice (market, hardware, earnings history, 429 body alternation).</summary>
    public int Seed { get; set; } = 42;

    /// <summary>Keys of the primary account; each key is a separate rate-limit identity.</summary>
    public IReadOnlyList<string> ApiKeys { get; set; } = [DefaultApiKey];

    public int UserId { get; set; } = 4242;

    public string Username { get; set; } = "demo-host";

    public string Email { get; set; } = "demo-host@example.com";

    public string OtherApiKey { get; set; } = DefaultOtherApiKey;

    public int OtherUserId { get; set; } = 4343;

    public string OtherUsername { get; set; } = "other-host";

    /// <summary>One own machine per hostname (ids 48211, 48212, ...).</summary>
    public IReadOnlyList<string> MachineHostnames { get; set; } = ["rig-01"];

    /// <summary>GPU model of the own machines; one of <see cref="GpuCatalog.Names"/>.</summary>
    public string GpuModel { get; set; } = "RTX 4090";

    public int NumGpus { get; set; } = 8;

    /// <summary>GPU models of the own machines, taken in turn (machine i gets entry i mod count); empty = <see cref="GpuModel"/> for all.</summary>
    public IReadOnlyList<string> MachineGpuModels { get; set; } = [];

    /// <summary>GPU counts of the own machines, taken in turn; empty = <see cref="NumGpus"/> for all.</summary>
    public IReadOnlyList<int> MachineGpuCounts { get; set; } = [];

    /// <summary>A fleet of <paramref name="count"/> own machines named <c>rig-0001</c>… (host names only).</summary>
    public static IReadOnlyList<string> FleetHostnames(int count) =>
        [.. Enumerable.Range(1, count).Select(i => "rig-" + i.ToString("0000", System.Globalization.CultureInfo.InvariantCulture))];

    /// <summary>Own machines start listed (create_asks already done), so their offers are part of the market.</summary>
    public bool InitiallyListed { get; set; } = true;

    /// <summary>Starts a 2-GPU on-demand and a 1-GPU interruptible contract on the first machine (demo realism).</summary>
    public bool SeedRentals { get; set; }

    /// <summary>Number of offers of other hosts in the market (own offers come on top).</summary>
    public int OfferCount { get; set; } = 2000;

    /// <summary>Fraction of market offers that appear twice in searches, with a different score (vast-api.md §5.1).</summary>
    public double DuplicateOfferFraction { get; set; }

    /// <summary>Probability that a bundles search answers 502/503 (vast-api.md §1.6 community note); 0 = never.</summary>
    public double BundlesFailureRate { get; set; }

    public bool RateLimitsEnabled { get; set; } = true;

    /// <summary>Multiplier on every threshold (tests use small values such as 0.01).</summary>
    public double RateLimitScale { get; set; } = 1.0;

    /// <summary>Threshold (seconds) of the endpoints without a published value, before scaling.</summary>
    public double DefaultThresholdSeconds { get; set; } = 1.0;

    /// <summary>Clock of end dates, contracts, earnings, rate limits and the request log (not of HTTP-level fault delays).</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Receives one line per API request (method, path without query, endpoint, status, user id); never a key.</summary>
    public Action<string>? Log { get; set; }
}
