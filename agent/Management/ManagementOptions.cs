using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;

namespace VastHostAgent.Management;

/// <summary>
/// Configuration section <c>management</c>: the listing the host wants on Vast, and how the agent keeps it
/// so. A setting left null is not managed: the agent keeps whatever the machine has (so it never fights a
/// change the host made in the web console that the configuration does not ask about).
/// </summary>
public sealed class ManagementOptions
{
    public const string SectionName = "management";

    /// <summary>Run the reconcile loop (needs vast.enabled).</summary>
    public bool Enabled { get; set; }

    /// <summary>Decide and journal, never change anything on Vast. New installs start in dry-run.</summary>
    public bool DryRun { get; set; } = true;

    /// <summary>How often the listing is reconciled (a random ±jitter is added to spread a fleet's calls). Below a minute only for tests: every reconcile reads the machine.</summary>
    [DurationRange("00:00:01", "1.00:00:00")]
    public TimeSpan ReconcileInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Fraction of the interval used as random jitter (0 to 0.5).</summary>
    [Range(0.0, 0.5, ErrorMessage = "must be between 0 and 0.5")]
    public double Jitter { get; set; } = 0.2;

    /// <summary>Most changes (API mutations) per rolling hour; more are skipped and journaled.</summary>
    [Range(1, 1000, ErrorMessage = "must be between 1 and 1000")]
    public int MutationBudgetPerHour { get; set; } = 12;

    /// <summary>
    /// After a mutation whose outcome is unknown (no answer in time, the connection dropped, or the agent stopped
    /// while it was in flight), no further change is made to the machine until a machine read taken this long after
    /// it shows what Vast did: a slow server may still apply the first call. At least 3 × vast.requestTimeout is
    /// always used. Below a minute only for tests.
    /// </summary>
    [DurationRange("00:00:01", "1.00:00:00")]
    public TimeSpan UnknownOutcomeQuarantine { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The journal file's size cap before it rotates (bytes); three rotated files are kept.</summary>
    [Range(16 * 1024, 1024L * 1024 * 1024, ErrorMessage = "must be between 16384 and 1073741824 bytes")]
    public long JournalMaxBytes { get; set; } = 5 * 1024 * 1024;

    public ListingOptions Listing { get; set; } = new();

    public PricingOptions Pricing { get; set; } = new();

    public MinBidOptions MinBid { get; set; } = new();

    public DefaultJobOptions DefaultJob { get; set; } = new();
}

/// <summary><c>management.listing</c>: the listing fields other than the GPU price.</summary>
public sealed class ListingOptions
{
    /// <summary>List the machine when it is not listed (otherwise an unlisted machine is left alone unless the agent unlisted it).</summary>
    public bool ListWhenUnlisted { get; set; }

    /// <summary>Storage price, $/GB-month; null = keep the machine's.</summary>
    [Range(0.0, 10.0, ErrorMessage = "must be between 0 and 10 $/GB-month")]
    public double? StoragePrice { get; set; }

    /// <summary>Upload bandwidth price, $/GB; null = keep.</summary>
    [Range(0.0, 1.0, ErrorMessage = "must be between 0 and 1 $/GB")]
    public double? UploadPrice { get; set; }

    /// <summary>Download bandwidth price, $/GB; null = keep.</summary>
    [Range(0.0, 1.0, ErrorMessage = "must be between 0 and 1 $/GB")]
    public double? DownloadPrice { get; set; }

    /// <summary>Smallest rentable GPU group (1 or a power of two); null = keep.</summary>
    [Range(1, 64, ErrorMessage = "must be between 1 and 64")]
    public int? MinChunk { get; set; }

    /// <summary>Maximum reserved (prepay) discount, 0 to 0.9; null = keep.</summary>
    [Range(0.0, 0.9, ErrorMessage = "must be between 0 and 0.9")]
    public double? DiscountMax { get; set; }

    /// <summary>
    /// Rolling offer end date (d.hh:mm:ss), kept by Vast's own create_asks <c>duration</c> (the server moves the end
    /// date to now + this daily); a fixed end date only while a maintenance window clamps the offer. Null = keep
    /// the machine's end date (or a duration set in the Vast console).
    /// </summary>
    [DurationRange("1.00:00:00", "365.00:00:00")]
    public TimeSpan? OfferDuration { get; set; } = TimeSpan.FromDays(30);

    /// <summary>A fixed end date (set before the rolling duration, or after a window) is switched to the duration when less than this remains, if no listing change did it earlier.</summary>
    [DurationRange("01:00:00", "180.00:00:00")]
    public TimeSpan RefreshWhenLessThan { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Volume offer size in GB (0 = none); null = keep.</summary>
    [Range(0L, 1_000_000L, ErrorMessage = "must be between 0 and 1000000 GB")]
    public long? VolumeSizeGb { get; set; }

    /// <summary>Volume offer price, $/GB-month; null = keep.</summary>
    [Range(0.0, 10.0, ErrorMessage = "must be between 0 and 10 $/GB-month")]
    public double? VolumePrice { get; set; }
}

/// <summary><c>management.pricing</c>: the on-demand GPU price.</summary>
public sealed class PricingOptions
{
    /// <summary><c>fixed</c>, <c>market</c>, or <c>off</c> (keep the machine's price).</summary>
    public PricingStrategy Strategy { get; set; } = PricingStrategy.Off;

    /// <summary>Price per GPU-hour for <c>fixed</c> ($).</summary>
    [Range(0.0, 100.0, ErrorMessage = "must be between 0 and 100 $/GPU-hour")]
    public double? FixedPrice { get; set; }

    /// <summary>No price is ever set below this ($/GPU-hour).</summary>
    [Range(0.001, 100.0, ErrorMessage = "must be between 0.001 and 100 $/GPU-hour")]
    public double Floor { get; set; } = 0.05;

    /// <summary>No price is ever set above this ($/GPU-hour).</summary>
    [Range(0.001, 100.0, ErrorMessage = "must be between 0.001 and 100 $/GPU-hour")]
    public double Ceiling { get; set; } = 10.0;

    /// <summary>Largest change in one step, as a fraction of the current price.</summary>
    [Range(0.001, 1.0, ErrorMessage = "must be between 0.001 and 1")]
    public double MaxChangePerStep { get; set; } = 0.10;

    /// <summary>Smallest change worth making, as a fraction of the current price (hysteresis).</summary>
    [Range(0.0, 0.5, ErrorMessage = "must be between 0 and 0.5")]
    public double MinChange { get; set; } = 0.02;

    /// <summary>Least time between two price changes.</summary>
    [DurationRange("00:00:00", "7.00:00:00")]
    public TimeSpan Cooldown { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Never raise the price while any GPU is rented (a raise creates pending price increases for renters).</summary>
    public bool NoRaiseWhileRented { get; set; } = true;

    /// <summary>
    /// Allow an on-demand price below the break-even under load (one GPU-hour's electricity, from <c>economics</c>).
    /// Off: the agent never sets a price below it.
    /// </summary>
    public bool AllowBelowBreakEven { get; set; }

    public MarketPricingOptions Market { get; set; } = new();

    public OccupancyPricingOptions Occupancy { get; set; } = new();
}

/// <summary><c>management.pricing.market</c>.</summary>
public sealed class MarketPricingOptions
{
    /// <summary>Percentile of comparable offers' per-GPU prices (50 = median).</summary>
    [Range(1.0, 99.0, ErrorMessage = "must be between 1 and 99")]
    public double Percentile { get; set; } = 50;

    /// <summary>Multiplies the percentile (e.g. 0.97 to undercut by 3 %).</summary>
    [Range(0.1, 10.0, ErrorMessage = "must be between 0.1 and 10")]
    public double Multiplier { get; set; } = 1.0;

    /// <summary>Added after the multiplier ($/GPU-hour, may be negative).</summary>
    [Range(-10.0, 10.0, ErrorMessage = "must be between -10 and 10")]
    public double Offset { get; set; }

    /// <summary>Fewest comparable offers to price from; fewer → the market metrics, else hold.</summary>
    [Range(1, 10000, ErrorMessage = "must be between 1 and 10000")]
    public int MinPeers { get; set; } = 5;

    /// <summary>Only verified offers count as peers.</summary>
    public bool VerifiedOnly { get; set; } = true;

    /// <summary>How often the market is searched (one bundles query plus the metrics).</summary>
    [DurationRange("00:05:00", "1.00:00:00")]
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Market data older than this is stale: the price is held.</summary>
    [DurationRange("00:10:00", "2.00:00:00")]
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromHours(3);

    /// <summary>Fall back to the host market metrics (/metrics/gpu/current) when too few peers are found.</summary>
    public bool UseMetricsFallback { get; set; } = true;

    /// <summary>
    /// Host's share of the renter price when it cannot be learned from this machine's own offers
    /// (peers' prices are renter prices: <c>dph_base / num_gpus</c>; the listed price is the host's).
    /// </summary>
    [Range(0.3, 1.0, ErrorMessage = "must be between 0.3 and 1")]
    public double HostShare { get; set; } = 0.75;
}

/// <summary><c>management.pricing.occupancy</c>: idle decay and busy steps, on top of fixed or market.</summary>
public sealed class OccupancyPricingOptions
{
    public bool Enabled { get; set; }

    /// <summary>Start stepping down once no GPU has been rented for this long.</summary>
    [DurationRange("00:30:00", "30.00:00:00")]
    public TimeSpan IdleAfter { get; set; } = TimeSpan.FromHours(12);

    /// <summary>One step per this much further idle time.</summary>
    [DurationRange("00:30:00", "30.00:00:00")]
    public TimeSpan StepInterval { get; set; } = TimeSpan.FromHours(6);

    /// <summary>Each idle step lowers the price by this fraction.</summary>
    [Range(0.0, 0.5, ErrorMessage = "must be between 0 and 0.5")]
    public double StepDown { get; set; } = 0.05;

    /// <summary>While at least this fraction of GPUs is rented...</summary>
    [Range(0.0, 1.0, ErrorMessage = "must be between 0 and 1")]
    public double BusyTarget { get; set; } = 0.9;

    /// <summary>...each further step interval raises the price by this fraction (0 = never).</summary>
    [Range(0.0, 0.5, ErrorMessage = "must be between 0 and 0.5")]
    public double StepUp { get; set; } = 0.03;
}

/// <summary><c>management.minBid</c>: the interruptible floor.</summary>
public sealed class MinBidOptions
{
    /// <summary><c>off</c> (keep), <c>fixed</c>, <c>ratio</c> of the on-demand price, or <c>powerCost</c> (a GPU-hour's electricity under load × <see cref="PowerCostFactor"/>).</summary>
    public MinBidMode Mode { get; set; } = MinBidMode.Off;

    /// <summary>powerCost mode: the min bid is one GPU-hour's electricity under load × this (Vast's advice: at least the power cost).</summary>
    [Range(1.0, 20.0, ErrorMessage = "must be between 1 and 20")]
    public double PowerCostFactor { get; set; } = 1.2;

    [Range(0.0, 100.0, ErrorMessage = "must be between 0 and 100 $/GPU-hour")]
    public double? Fixed { get; set; }

    [Range(0.01, 1.0, ErrorMessage = "must be between 0.01 and 1")]
    public double Ratio { get; set; } = 0.7;

    /// <summary>The min bid never goes below this ($/GPU-hour).</summary>
    [Range(0.0, 100.0, ErrorMessage = "must be between 0 and 100 $/GPU-hour")]
    public double Floor { get; set; } = 0.02;
}

/// <summary><c>management.defaultJob</c>: the host's own background job on idle GPUs.</summary>
public sealed class DefaultJobOptions
{
    /// <summary><c>unmanaged</c> (leave as is), <c>present</c> (keep this job set), <c>absent</c> (keep none).</summary>
    public DefaultJobMode Mode { get; set; } = DefaultJobMode.Unmanaged;

    public string Image { get; set; } = "";

    public List<string> Args { get; set; } = [];

    /// <summary>Bid per GPU-hour ($).</summary>
    [Range(0.0, 100.0, ErrorMessage = "must be between 0 and 100 $/GPU-hour")]
    public double Price { get; set; } = 0.05;
}

/// <summary>The rules across fields (each field's own range is checked from its attributes).</summary>
internal sealed class ManagementOptionsValidator : IValidateOptions<ManagementOptions>
{
    public ValidateOptionsResult Validate(string? name, ManagementOptions o)
    {
        var failures = new List<string>();
        var p = o.Pricing;
        if (p.Floor > p.Ceiling)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture, $"management.pricing.floor: must not exceed pricing.ceiling ({p.Ceiling})"));
        }

        if (p.MaxChangePerStep < p.MinChange)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture, $"management.pricing.maxChangePerStep: must be at least pricing.minChange ({p.MinChange}), or no step could ever be made"));
        }

        if (p.Strategy == PricingStrategy.Fixed && p.FixedPrice is null)
        {
            failures.Add("management.pricing.fixedPrice: required when pricing.strategy is fixed");
        }

        if (o.MinBid.Mode == MinBidMode.Fixed && o.MinBid.Fixed is null)
        {
            failures.Add("management.minBid.fixed: required when minBid.mode is fixed");
        }

        if (o.DefaultJob.Mode == DefaultJobMode.Present && string.IsNullOrWhiteSpace(o.DefaultJob.Image))
        {
            failures.Add("management.defaultJob.image: required when defaultJob.mode is present");
        }

        if (o.Listing.MinChunk is { } chunk && (chunk & (chunk - 1)) != 0)
        {
            failures.Add("management.listing.minChunk: must be 1 or a power of two");
        }

        if (o.Listing.OfferDuration is { } duration && duration <= o.Listing.RefreshWhenLessThan)
        {
            failures.Add("management.listing.refreshWhenLessThan: must be shorter than listing.offerDuration");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>How the on-demand GPU price is set.</summary>
public enum PricingStrategy
{
    /// <summary>Keep the machine's price.</summary>
    Off,

    /// <summary><c>pricing.fixedPrice</c>.</summary>
    Fixed,

    /// <summary>A percentile of comparable offers.</summary>
    Market,
}

/// <summary>How the minimum bid (interruptible price) is set.</summary>
public enum MinBidMode
{
    Off,
    Fixed,
    Ratio,

    /// <summary>The electricity of one GPU-hour under load (economics) × <c>minBid.powerCostFactor</c>.</summary>
    PowerCost,
}

/// <summary>What the agent does about the default job.</summary>
public enum DefaultJobMode
{
    /// <summary>Leave it as it is.</summary>
    Unmanaged,

    /// <summary>Keep the configured one on the machine.</summary>
    Present,

    /// <summary>Keep none.</summary>
    Absent,
}

/// <summary>Source-generated metadata of the section: keys, types and validation attributes for the start-up check.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ManagementOptions))]
internal sealed partial class ManagementOptionsJson : JsonSerializerContext;
