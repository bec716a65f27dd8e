using VastHostAgent.Economics;

namespace VastHostAgent.Tests.Economics;

/// <summary>Time-of-use tariffs: the price a host would read off their electricity bill at each local hour.</summary>
public sealed class TariffScheduleTests
{
    private static TariffSchedule Schedule(string zone, double flat, params TariffPeriodOptions[] periods) =>
        TariffSchedule.From(new EconomicsOptions { Enabled = true, TimeZone = zone, PricePerKwh = flat, Schedule = [.. periods] });

    private static DateTimeOffset Utc(string text) => DateTimeOffset.Parse(text, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void A_weekday_peak_applies_in_local_time_and_the_flat_price_elsewhere()
    {
        // Berlin is UTC+1 in winter: 07:00-22:00 local is 06:00-21:00 UTC.
        var t = Schedule("Europe/Berlin", 0.20, new TariffPeriodOptions { Days = "mon-fri", From = "07:00", To = "22:00", PricePerKwh = 0.35 });
        Assert.Equal(0.35, t.DollarsPerKwhAt(Utc("2026-12-01T06:00:00Z"))); // Tuesday 07:00 local
        Assert.Equal(0.20, t.DollarsPerKwhAt(Utc("2026-12-01T05:59:00Z"))); // 06:59 local
        Assert.Equal(0.20, t.DollarsPerKwhAt(Utc("2026-12-01T21:00:00Z"))); // 22:00 local: the end is exclusive
        Assert.Equal(0.20, t.DollarsPerKwhAt(Utc("2026-12-05T12:00:00Z"))); // Saturday
        Assert.Equal(0.35, t.PeakDollarsPerKwh);
        Assert.True(t.TimeOfUse);
    }

    [Fact]
    public void A_night_period_runs_past_midnight_and_belongs_to_the_day_it_starts()
    {
        var t = Schedule("UTC", 0.30, new TariffPeriodOptions { Days = "fri", From = "22:00", To = "06:00", PricePerKwh = 0.10 });
        Assert.Equal(0.10, t.DollarsPerKwhAt(Utc("2026-12-04T23:00:00Z"))); // Friday night
        Assert.Equal(0.10, t.DollarsPerKwhAt(Utc("2026-12-05T05:00:00Z"))); // Saturday morning, still Friday's period
        Assert.Equal(0.30, t.DollarsPerKwhAt(Utc("2026-12-05T23:00:00Z"))); // Saturday night: not listed
        Assert.Equal(0.30, t.DollarsPerKwhAt(Utc("2026-12-04T05:00:00Z"))); // Friday morning belongs to Thursday
    }

    [Fact]
    public void The_day_average_weighs_each_period_by_its_hours_and_the_day_starts_at_local_midnight()
    {
        var t = Schedule("America/New_York", 0.10, new TariffPeriodOptions { Days = "daily", From = "12:00", To = "18:00", PricePerKwh = 0.50 });
        var at = Utc("2026-12-01T20:00:00Z");
        Assert.Equal(0.10 + (0.40 * 6 / 24), t.AverageDollarsPerKwhOnDayOf(at), 6);
        Assert.Equal(Utc("2026-12-01T05:00:00Z"), t.StartOfLocalDay(at)); // EST midnight
    }

    [Fact]
    public void The_currency_converts_to_dollars()
    {
        var t = TariffSchedule.From(new EconomicsOptions { Enabled = true, TimeZone = "UTC", PricePerKwh = 0.30, DollarsPerUnit = 1.10 });
        Assert.Equal(0.33, t.DollarsPerKwhAt(Utc("2026-12-01T00:00:00Z")), 9);
    }

    [Theory]
    [InlineData("mon-fri", 5)]
    [InlineData("sat,sun", 2)]
    [InlineData("fri-mon", 4)]
    [InlineData("daily", 7)]
    [InlineData("Mon, Wed", 2)]
    public void Weekday_lists_parse(string text, int days) => Assert.Equal(days, TariffSchedule.ParseDays(text)!.Count);

    [Theory]
    [InlineData("weekdays")]
    [InlineData("mon-")]
    [InlineData("")]
    public void Garbage_weekdays_do_not_parse(string text) => Assert.Null(TariffSchedule.ParseDays(text));

    [Theory]
    [InlineData("7:00")]
    [InlineData("24:30")]
    [InlineData("12:60")]
    [InlineData("noon")]
    public void Garbage_times_do_not_parse(string text) => Assert.Null(TariffSchedule.ParseTime(text));
}
