using System.Globalization;
using VastEmulator;
using VastHostAgent.Tests.Support;
using VastHostAgent.Vast;

namespace VastHostAgent.Tests.Vast;

/// <summary>The agent's client against the emulator (over HTTP, real clock, thresholds scaled down).</summary>
public sealed class VastAgainstEmulatorTests : IAsyncLifetime
{
    private const double Scale = 0.02;
    private RunningEmulator _emulator = null!;

    private int MachineId => _emulator.State.OwnMachineIds[0];

    public async Task InitializeAsync() =>
        _emulator = await EmulatorApp.StartAsync(new EmulatorOptions { RateLimitScale = Scale, OfferCount = 400 });

    public async Task DisposeAsync() => await _emulator.DisposeAsync();

    private VastTestClient Client(Dictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["vast:machineId"] = MachineId.ToString(CultureInfo.InvariantCulture),
            ["vast:spacingScale"] = Scale.ToString(CultureInfo.InvariantCulture),
            ["vast:defaultSpacingSeconds"] = "1.0",
        };
        foreach (var (k, v) in extra ?? [])
        {
            settings[k] = v;
        }

        return VastTestClient.Create(settings, _emulator.BaseUrl, _emulator.ApiKey);
    }

    private IReadOnlyList<RequestLogEntry> Log(string endpoint) => [.. _emulator.State.Requests.Where(r => r.Endpoint == endpoint)];

    [Fact]
    public async Task Every_call_works_against_the_emulator_and_its_effect_shows_in_the_machine()
    {
        await using var t = Client();
        var c = t.Client;
        var id = MachineId;

        var machines = await c.GetMachinesAsync(default);
        var own = Assert.Single(machines);
        Assert.Equal(id, own.EffectiveId);
        Assert.Equal("rig-01", own.Hostname);

        await c.ListMachineAsync(new CreateAsksRequest
        {
            Machine = id,
            PriceGpu = 0.41,
            PriceDisk = 0.2,
            PriceInetu = 0.004,
            PriceInetd = 0.003,
            PriceMinBid = 0.25,
            MinChunk = 2,
            EndDate = _emulator.State.Now + (30 * 86400),
            CreditDiscountMax = 0.2,
            VolSize = 100,
            VolPrice = 0.12,
        }, default);
        var listed = await c.GetMachineAsync(id, default);
        Assert.True(listed.Listed);
        Assert.Equal(0.41, listed.ListedGpuCost);
        Assert.Equal(0.2, listed.ListedStorageCost);
        Assert.Equal(0.004, listed.ListedInetUpCost);
        Assert.Equal(0.003, listed.ListedInetDownCost);
        Assert.Equal(0.25, listed.MinBidPrice);
        Assert.Equal(2, listed.ListedMinGpuCount);
        Assert.Equal(0.2, listed.CreditDiscountMax);
        Assert.Equal(100, listed.VolumeTotalSize);
        Assert.Equal(0.12, listed.ListedVolumeCost);

        await c.SetMinBidAsync(id, 0.22, default);
        Assert.Equal(0.22, (await c.GetMachineAsync(id, default)).MinBidPrice);

        await c.SetDefaultJobAsync(new CreateBidsRequest(id, 0.1, null, null, "vastai/idle:latest", ["--x", "1"]), default);
        var withJob = await c.GetMachineAsync(id, default);
        Assert.Equal("vastai/idle:latest", withJob.BidImage);
        Assert.Equal(["--x", "1"], withJob.DefaultJobArgs());
        await c.RemoveDefaultJobAsync(id, default);
        Assert.Null((await c.GetMachineAsync(id, default)).BidImage);

        var start = DateTimeOffset.UtcNow.AddDays(3);
        var scheduled = await c.ScheduleMaintenanceAsync(id, start, TimeSpan.FromMinutes(90), "gpu", default);
        Assert.Matches(@"^\d+ notifications sent$", scheduled.YouSent!.Value.GetString());
        var windows = await c.GetMaintenancesAsync([id], default);
        var window = Assert.Single(windows);
        Assert.Equal(1.5, window.DurationHours);
        Assert.Equal("gpu", window.MaintenanceCategory);
        Assert.Single((await c.GetMachineAsync(id, default)).MachineMaintenance!);
        Assert.Contains("deleted 1 scheduled maintenance window(s)", (await c.CancelMaintenanceAsync(id, default)).Msg, StringComparison.Ordinal);
        Assert.Empty(await c.GetMaintenancesAsync([id], default));

        _emulator.State.AddReport(id, "ssh", "cannot connect");
        var report = Assert.Single(await c.GetReportsAsync(id, default));
        Assert.Equal("ssh", report.Problem);
        Assert.NotNull(report.CreatedAt);

        Assert.NotNull((await c.CleanupAsync(id, default)).NumDeleted);
        var today = _emulator.State.Today;
        var earnings = await c.GetEarningsAsync(today - 6, today + 1, id, default);
        Assert.NotNull(earnings.Current?.Balance);
        Assert.All(earnings.PerDay!, d => Assert.InRange(d.Day!.Value, today - 6, today + 1));
        Assert.Equal(4242, (await c.GetCurrentUserAsync(default)).Id);

        var offers = await c.SearchOffersAsync(new OfferQuery { Limit = 1000 }
            .Where("gpu_name", "eq", "RTX 4090").Where("num_gpus", "eq", "2").Where("verified", "eq", true).Where("rentable", "eq", true), default);
        Assert.NotEmpty(offers);
        Assert.All(offers, o => Assert.Equal(("RTX 4090", 2L, true, true), (o.GpuName, o.NumGpus!.Value, o.Verified!.Value, o.Rentable!.Value)));
        Assert.Equal(offers.Count, offers.Select(o => o.Id).Distinct().Count());
        var others = await c.SearchOffersAsync(new OfferQuery { Limit = 5000 }.Where("host_id", "notin", new[] { 4242 }), default);
        Assert.DoesNotContain(others, o => o.HostId == 4242);

        var metrics = await c.GetGpuMetricsAsync("yes", "all", "all", default);
        var rtx = metrics.Single(g => g.GpuName == "RTX 4090");
        Assert.True(rtx.PriceP10 <= rtx.PriceMedian && rtx.PriceMedian <= rtx.PriceP90);

        await c.UnlistMachineAsync(id, default);
        Assert.False((await c.GetMachineAsync(id, default)).Listed);
        Assert.DoesNotContain(_emulator.State.Requests, r => r.RateLimited); // the client kept every threshold
    }

    [Fact]
    public async Task The_emulators_machine_maps_onto_every_field_the_agent_uses()
    {
        _emulator.State.StartRental(MachineId, new RentalRequest("on-demand", 2, 0.4));
        _emulator.State.StartRental(MachineId, new RentalRequest("interruptible", 1));
        await using var t = Client();
        var m = await t.Client.GetMachineAsync(MachineId, default);
        Assert.All(new object?[]
        {
            m.Hostname, m.NumGpus, m.GpuName, m.Listed, m.EndDate, m.ListedGpuCost, m.ListedStorageCost, m.ListedInetUpCost,
            m.ListedInetDownCost, m.MinBidPrice, m.ListedMinGpuCount, m.CreditDiscountMax, m.GpuOccupancy, m.Timeout, m.Verification,
            m.Reliability2, m.CurrentRentalsRunning, m.CurrentRentalsRunningOnDemand, m.CurrentRentalsResident, m.CurrentRentalsOnDemand,
            m.ClientEndDate, m.EarnDay, m.DriverVersion,
        }, Assert.NotNull);
        Assert.Equal(2, m.OccupancyCounts()["on_demand"]);
        Assert.Equal(1, m.OccupancyCounts()["interruptible"]);
        Assert.Equal(2, m.CurrentRentalsRunning);          // contracts, not GPUs
        Assert.Equal(1, m.CurrentRentalsRunningOnDemand);
    }

    [Fact]
    public async Task A_429_from_the_API_backs_the_endpoint_off_and_the_read_still_succeeds()
    {
        // The client spaces calls a tenth as far apart as the API demands (0.12 s against the published 1.2 s), so
        // the second call meets a 429 unless the first took over a second. After a 429 the client backs the
        // endpoint off (at least its own spacing) and the retry (three at most, Polly's jittered 1 s, 2 s, ...)
        // gets through once the API's window has passed.
        _emulator.State.SetRateLimits(true, 1.0);
        const double clientScale = 0.1;
        await using var t = Client(new() { ["vast:spacingScale"] = clientScale.ToString(CultureInfo.InvariantCulture) });
        await t.Client.GetReportsAsync(MachineId, default);
        await t.Client.GetReportsAsync(MachineId, default);

        var log = Log(Endpoints.Reports);
        Assert.Contains(log, r => r.Status == 429);
        Assert.Equal(200, log[^1].Status);
        Assert.Equal(2, log.Count(r => r.Status == 200));
        var clientSpacing = _emulator.State.ThresholdSeconds(Endpoints.Reports) * clientScale;
        for (var i = 1; i < log.Count; i++)
        {
            if (log[i - 1].Status == 429)
            {
                Assert.True(log[i].Time - log[i - 1].Time >= clientSpacing, $"a retry after a 429 came {log[i].Time - log[i - 1].Time:0.000} s later, sooner than the back-off");
            }
        }

        Assert.Contains("vasthost_vast_rate_limited_total{endpoint=\"reports\"}", await t.MetricsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_5xx_burst_is_retried_for_reads_and_a_failed_mutation_is_sent_once_and_changes_nothing()
    {
        await using var t = Client();
        _emulator.State.AddFault(new FaultSpec(Endpoints.ShowMachine, 503, Count: 2));
        Assert.Equal(MachineId, (await t.Client.GetMachineAsync(MachineId, default)).EffectiveId);
        Assert.Equal([503, 503, 200], Log(Endpoints.ShowMachine).Select(r => r.Status));

        var before = (await t.Client.GetMachineAsync(MachineId, default)).ListedGpuCost;
        _emulator.State.AddFault(new FaultSpec(Endpoints.CreateAsks, 502, Count: 5));
        var ex = await Assert.ThrowsAsync<VastApiException>(() => t.Client.ListMachineAsync(new CreateAsksRequest { Machine = MachineId, PriceGpu = 9.99 }, default));
        Assert.Equal(VastFailure.Server, ex.Failure);
        Assert.Single(Log(Endpoints.CreateAsks));
        Assert.Equal(before, (await t.Client.GetMachineAsync(MachineId, default)).ListedGpuCost);
    }

    [Fact]
    public async Task A_lost_answer_after_an_applied_mutation_is_outcome_unknown_sent_once_and_a_re_read_shows_the_change()
    {
        await using var t = Client(new() { ["vast:requestTimeout"] = "00:00:01" });
        _emulator.State.AddFault(new FaultSpec(Endpoints.CreateAsks, DelayMs: 2500, PassThrough: true));

        var ex = await Assert.ThrowsAsync<VastApiException>(() => t.Client.ListMachineAsync(new CreateAsksRequest { Machine = MachineId, PriceGpu = 0.777 }, default));

        Assert.Equal(VastFailure.OutcomeUnknown, ex.Failure);
        await Poll.UntilAsync(() => Log(Endpoints.CreateAsks).Any(r => r.Applied), TimeSpan.FromSeconds(10), "the delayed create_asks to land");
        Assert.Single(Log(Endpoints.CreateAsks));
        Assert.Equal(0.777, (await t.Client.GetMachineAsync(MachineId, default)).ListedGpuCost);
    }

    [Fact]
    public async Task Garbage_and_timeouts_from_the_API_are_failures_the_client_reports_not_crashes()
    {
        await using var t = Client(new() { ["vast:requestTimeout"] = "00:00:01", ["vast:readRetries"] = "1" });
        _emulator.State.AddFault(new FaultSpec(Endpoints.ShowMachines, Malformed: true, Count: 2));
        Assert.Equal(VastFailure.Malformed, (await Assert.ThrowsAsync<VastApiException>(() => t.Client.GetMachinesAsync(default))).Failure);

        _emulator.State.AddFault(new FaultSpec(Endpoints.CurrentUser, Timeout: true, Count: 2));
        var timeout = await Assert.ThrowsAsync<VastApiException>(() => t.Client.GetCurrentUserAsync(default));
        Assert.Equal(VastFailure.Unavailable, timeout.Failure);
        // The emulator logs a request it never answered once the client hangs up: poll for both attempts.
        await Poll.UntilAsync(() => Log(Endpoints.CurrentUser).Count == 2, TimeSpan.FromSeconds(10), "both attempts in the emulator log");
        Assert.Contains("vasthost_vast_requests_total{endpoint=\"current_user\",status_class=\"timeout\"} 2", await t.MetricsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_429_storm_ends_in_a_rate_limited_failure_after_bounded_retries_spaced_by_the_back_off()
    {
        await using var t = Client(new() { ["vast:readRetries"] = "3" });
        _emulator.State.AddFault(new FaultSpec(Endpoints.Earnings, 429, Count: 50));
        var ex = await Assert.ThrowsAsync<VastApiException>(() => t.Client.GetEarningsAsync(1, 2, null, default));
        Assert.Equal(VastFailure.RateLimited, ex.Failure);
        var log = Log(Endpoints.Earnings);
        Assert.Equal(4, log.Count); // the first try and three retries, then the caller decides
        var gaps = log.Zip(log.Skip(1), (a, b) => b.Time - a.Time).ToList();
        Assert.All(gaps, g => Assert.True(g >= 2.0 * Scale));
        // (The exact exponential growth of the per-endpoint back-off is asserted on a fake clock in VastClientTests.)
        Assert.True(ex.RetryAfter >= TimeSpan.FromSeconds(2.0 * Scale * 4), $"after four 429s the endpoint backs off at least 8 thresholds, not {ex.RetryAfter}");
    }
}
