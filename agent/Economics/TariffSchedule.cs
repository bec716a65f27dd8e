using System.Globalization;

namespace VastHostAgent.Economics;

/// <summary>
/// An electricity tariff in dollars per kWh: a flat price, and time-of-use periods by local weekday and time of
/// day in one time zone. A period whose end is earlier than its start runs past midnight into the next day (it
/// belongs to the weekday it starts on). The first period that covers an instant sets its price; outside every
/// period the flat price applies. Pure.
/// </summary>
public sealed class TariffSchedule
{
    private static readonly DayOfWeek[] Week = [DayOfWeek.Monday, DayOfWeek.Tuesday, DayOfWeek.Wednesday, DayOfWeek.Thursday, DayOfWeek.Friday, DayOfWeek.Saturday, DayOfWeek.Sunday];
    private static readonly string[] DayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

    private readonly IReadOnlyList<Period> _periods;

    private TariffSchedule(TimeZoneInfo zone, double flat, IReadOnlyList<Period> periods)
    {
        Zone = zone;
        FlatDollarsPerKwh = flat;
        _periods = periods;
        PeakDollarsPerKwh = periods.Select(p => p.DollarsPerKwh).Append(flat).Max();
    }

    /// <summary>The zone of the schedule and of "today".</summary>
    public TimeZoneInfo Zone { get; }

    /// <summary>The price outside every period ($/kWh).</summary>
    public double FlatDollarsPerKwh { get; }

    /// <summary>The highest price any hour of the week can have ($/kWh).</summary>
    public double PeakDollarsPerKwh { get; }

    /// <summary>True when the price varies with the time (periods configured).</summary>
    public bool TimeOfUse => _periods.Count > 0;

    /// <summary>A flat tariff in UTC (tests and benchmarks).</summary>
    public static TariffSchedule Flat(double dollarsPerKwh) => new(TimeZoneInfo.Utc, dollarsPerKwh, []);

    /// <summary>The schedule of valid options (see <see cref="EconomicsOptionsValidator"/>).</summary>
    public static TariffSchedule From(EconomicsOptions o)
    {
        var zone = FindZone(o.TimeZone) ?? TimeZoneInfo.Utc;
        var periods = o.Schedule
            .Select(p => new Period(ParseDays(p.Days) ?? [], ParseTime(p.From) ?? TimeSpan.Zero, ParseTime(p.To) ?? TimeSpan.FromHours(24), p.PricePerKwh * o.DollarsPerUnit))
            .ToList();
        return new TariffSchedule(zone, o.PricePerKwh * o.DollarsPerUnit, periods);
    }

    /// <summary>The price at an instant ($/kWh).</summary>
    public double DollarsPerKwhAt(DateTimeOffset at)
    {
        if (_periods.Count == 0)
        {
            return FlatDollarsPerKwh;
        }

        var local = TimeZoneInfo.ConvertTime(at, Zone);
        var day = local.DayOfWeek;
        var previous = (DayOfWeek)(((int)day + 6) % 7);
        var time = local.TimeOfDay;
        foreach (var p in _periods)
        {
            var covers = p.From < p.To
                ? p.Days.Contains(day) && time >= p.From && time < p.To
                : (p.Days.Contains(day) && time >= p.From) || (p.Days.Contains(previous) && time < p.To);
            if (covers)
            {
                return p.DollarsPerKwh;
            }
        }

        return FlatDollarsPerKwh;
    }

    /// <summary>The mean price over the local day that contains <paramref name="at"/> (quarter-hour steps), for a day's projection.</summary>
    public double AverageDollarsPerKwhOnDayOf(DateTimeOffset at)
    {
        if (_periods.Count == 0)
        {
            return FlatDollarsPerKwh;
        }

        var start = StartOfLocalDay(at);
        const int steps = 96;
        var sum = 0.0;
        for (var i = 0; i < steps; i++)
        {
            sum += DollarsPerKwhAt(start.AddMinutes((i * 15) + 7.5));
        }

        return sum / steps;
    }

    /// <summary>The instant the local day containing <paramref name="at"/> began.</summary>
    public DateTimeOffset StartOfLocalDay(DateTimeOffset at)
    {
        var local = TimeZoneInfo.ConvertTime(at, Zone);
        var midnight = local.Date;
        var offset = Zone.IsInvalidTime(midnight) ? Zone.GetUtcOffset(midnight.AddHours(1)) : Zone.GetUtcOffset(midnight);
        return new DateTimeOffset(midnight, offset);
    }

    /// <summary>A time zone by IANA name; empty is the machine's local zone; null when unknown.</summary>
    public static TimeZoneInfo? FindZone(string? name)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            return TimeZoneInfo.Local;
        }

        return TimeZoneInfo.TryFindSystemTimeZoneById(name.Trim(), out var zone) ? zone : null;
    }

    /// <summary><c>mon-fri</c>, <c>sat,sun</c>, <c>fri-mon</c>, <c>daily</c>; null when it does not parse.</summary>
    public static HashSet<DayOfWeek>? ParseDays(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var days = new HashSet<DayOfWeek>();
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries))
        {
            var part = raw.ToLowerInvariant();
            if (part is "daily" or "all" or "*")
            {
                days.UnionWith(Week);
                continue;
            }

            var range = part.Split('-', StringSplitOptions.TrimEntries);
            if (range.Length is < 1 or > 2 || range.Any(r => Array.IndexOf(DayNames, r) < 0))
            {
                return null;
            }

            var first = Array.IndexOf(DayNames, range[0]);
            var last = Array.IndexOf(DayNames, range[^1]);
            for (var i = first; ; i = (i + 1) % 7)
            {
                days.Add(Week[i]);
                if (i == last)
                {
                    break;
                }
            }
        }

        return days;
    }

    /// <summary><c>HH:mm</c> (00:00 to 24:00); null when it does not parse.</summary>
    public static TimeSpan? ParseTime(string? text)
    {
        if (text is null || text.Length != 5 || text[2] != ':'
            || !int.TryParse(text.AsSpan(0, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var h)
            || !int.TryParse(text.AsSpan(3, 2), NumberStyles.None, CultureInfo.InvariantCulture, out var m)
            || m > 59 || h > 24 || (h == 24 && m != 0))
        {
            return null;
        }

        return new TimeSpan(h, m, 0);
    }

    private sealed record Period(HashSet<DayOfWeek> Days, TimeSpan From, TimeSpan To, double DollarsPerKwh);
}
