using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;

namespace VastHostAgent.Economics;

/// <summary>
/// Configuration section <c>economics</c>: what electricity costs this rig, so the agent can say what it earns
/// after power (cost, revenue, margin, break-even) and management can set the <c>powerCost</c> min bid.
/// Tariffs are in the host's <see cref="Currency"/>; every money series is in dollars (Vast's currency),
/// converted with <see cref="DollarsPerUnit"/>.
/// </summary>
public sealed class EconomicsOptions
{
    public const string SectionName = "economics";

    /// <summary>Work out power cost, revenue and margin (off: no economics series, no powerCost min bid).</summary>
    public bool Enabled { get; set; }

    /// <summary>Electricity price per kWh in <see cref="Currency"/>: the flat price, and the price outside every schedule period.</summary>
    public double PricePerKwh { get; set; }

    /// <summary>Time-of-use periods (local time of <see cref="TimeZone"/>); the first that covers an instant sets its price.</summary>
    public List<TariffPeriodOptions> Schedule { get; set; } = [];

    /// <summary>IANA time zone of the schedule and of "today" (empty: the machine's local zone).</summary>
    public string TimeZone { get; set; } = "";

    /// <summary>The tariff's currency, a label only (USD, EUR, ...).</summary>
    [Required(AllowEmptyStrings = false)]
    [RegularExpression("^[A-Za-z]{3}$", ErrorMessage = "must be a three-letter currency code such as USD or EUR")]
    public string Currency { get; set; } = "USD";

    /// <summary>Dollars per unit of <see cref="Currency"/> (1 for USD), to compare power cost with Vast's earnings.</summary>
    [Range(0.00001, 100000.0, ErrorMessage = "must be between 0.00001 and 100000")]
    public double DollarsPerUnit { get; set; } = 1.0;

    /// <summary>Power NVML cannot see (CPUs, fans, drives, PSU losses), in watts for the whole rig.</summary>
    [Range(0.0, 20000.0, ErrorMessage = "must be between 0 and 20000 W")]
    public double OverheadWatts { get; set; }

    /// <summary>A PUE-style multiplier on the GPUs' power (1.0: none), for cooling or PSU losses in proportion to the load.</summary>
    [Range(1.0, 3.0, ErrorMessage = "must be between 1 and 3")]
    public double PowerUsageEffectiveness { get; set; } = 1.0;

    /// <summary>The tariff schedule these options describe (parsed once; valid after validation).</summary>
    internal TariffSchedule Tariff() => TariffSchedule.From(this);
}

/// <summary>One time-of-use period of <c>economics.schedule</c>.</summary>
public sealed class TariffPeriodOptions
{
    /// <summary>Weekdays: <c>mon-fri</c>, <c>sat,sun</c>, <c>daily</c>.</summary>
    public string Days { get; set; } = "daily";

    /// <summary>Local start, <c>HH:mm</c>.</summary>
    public string From { get; set; } = "00:00";

    /// <summary>Local end, <c>HH:mm</c> (<c>24:00</c> for midnight; earlier than <see cref="From"/> runs past midnight).</summary>
    public string To { get; set; } = "24:00";

    public double PricePerKwh { get; set; }
}

/// <summary>The rules across fields: the time zone exists, periods parse, no tariff is absurd in dollars.</summary>
internal sealed class EconomicsOptionsValidator(IOptions<Management.ManagementOptions> management, IOptions<Kernel.AgentOptions> agent) : IValidateOptions<EconomicsOptions>
{
    /// <summary>No real retail tariff comes near this; a larger one is a typo (a price per MWh, or cents).</summary>
    public const double MaxDollarsPerKwh = 5.0;

    public ValidateOptionsResult Validate(string? name, EconomicsOptions o)
    {
        var failures = new List<string>();
        if (!o.Enabled)
        {
            // A standalone agent's powerCost min bid needs its own electricity price (a controller reads the rigs').
            if (PowerCostMinBid() && agent.Value.Role != Kernel.AgentRole.Controller)
            {
                failures.Add("economics.enabled: must be true when management.minBid.mode is powerCost (the min bid follows the electricity price)");
            }

            return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
        }

        if (TariffSchedule.FindZone(o.TimeZone) is null)
        {
            failures.Add($"economics.timeZone: unknown time zone '{o.TimeZone}' (an IANA name such as Europe/Berlin, or empty for the machine's own)");
        }

        CheckPrice("economics.pricePerKwh", o.PricePerKwh, o, failures);
        for (var i = 0; i < o.Schedule.Count; i++)
        {
            var p = o.Schedule[i];
            var key = string.Create(CultureInfo.InvariantCulture, $"economics.schedule[{i}]");
            if (TariffSchedule.ParseDays(p.Days) is null)
            {
                failures.Add($"{key}.days: '{p.Days}' is not a weekday list (mon-fri, sat,sun, daily)");
            }

            if (TariffSchedule.ParseTime(p.From) is not { } from || from == TimeSpan.FromHours(24))
            {
                failures.Add($"{key}.from: '{p.From}' is not a time of day (HH:mm)");
            }
            else if (TariffSchedule.ParseTime(p.To) is not { } to)
            {
                failures.Add($"{key}.to: '{p.To}' is not a time of day (HH:mm, 24:00 for midnight)");
            }
            else if (to == from)
            {
                failures.Add($"{key}.to: must differ from from ({p.From}); an all-day price is economics.pricePerKwh or 00:00-24:00");
            }

            CheckPrice($"{key}.pricePerKwh", p.PricePerKwh, o, failures);
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private bool PowerCostMinBid()
    {
        try
        {
            return management.Value.MinBid.Mode == Management.MinBidMode.PowerCost;
        }
        catch (OptionsValidationException)
        {
            return false; // the management section reports its own problems
        }
    }

    private static void CheckPrice(string key, double price, EconomicsOptions o, List<string> failures)
    {
        if (!double.IsFinite(price) || price < 0)
        {
            failures.Add($"{key}: must not be negative");
        }
        else if (price * o.DollarsPerUnit > MaxDollarsPerKwh)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture,
                $"{key}: {price} {o.Currency}/kWh is {price * o.DollarsPerUnit:0.##} $/kWh, above the {MaxDollarsPerKwh} $/kWh no tariff reaches (a price per MWh, or in cents?)"));
        }
    }
}

/// <summary>Source-generated metadata of the section: keys, types and validation attributes for the start-up check.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(EconomicsOptions))]
internal sealed partial class EconomicsOptionsJson : JsonSerializerContext;
