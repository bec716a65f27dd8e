using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using VastHostAgent.Host;
using VastHostAgent.Kernel;
using VastHostAgent.Management;
using VastHostAgent.Metrics;
using VastHostAgent.Tests.Support;
using VastHostAgent.Tests.Vast;

namespace VastHostAgent.Tests.Hosting;

/// <summary>
/// Defects 12.7 and 12.8: no exception can end a loop or the daemon; a loop that keeps failing is reported; a
/// sampler stuck in a call is marked down with its readings stale.
/// </summary>
public sealed class LoopSupervisionTests
{
    private sealed class Source(string name, TimeSpan interval) : ISnapshotSource
    {
        public Func<CancellationToken, ValueTask<SourceResult>> Next { get; set; } =
            _ => ValueTask.FromResult(SourceResult.Success(s => s.WithDisk(new VastHostAgent.Host.DiskSpace("/d", "/d", 10, 5, 4))));

        public int Runs;

        public string Name => name;

        public bool Enabled => true;

        public TimeSpan Interval => interval;

        public ValueTask<SourceResult> CollectAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Runs);
            return Next(cancellationToken);
        }

        public HostSnapshot Clear(HostSnapshot snapshot) => snapshot.WithDisk(null);
    }

    [Fact]
    public void A_loop_failure_is_counted_logged_once_per_cause_backed_off_and_reported_until_it_recovers()
    {
        var time = new FakeTimeProvider();
        var store = new SnapshotStore();
        var logger = new FakeLogger<LoopHealth>();
        var loops = new LoopHealth(store, time, logger);

        Assert.Equal(TimeSpan.FromSeconds(1), loops.Failed("management", new IOException("No space left on device")));
        Assert.Equal(TimeSpan.FromSeconds(2), loops.Failed("management", new IOException("No space left on device")));
        Assert.Empty(LoopHealth.Describe(store.Current));                              // two in a row: not yet failing
        Assert.Equal(TimeSpan.FromSeconds(4), loops.Failed("management", new IOException("No space left on device")));
        var failing = Assert.Single(LoopHealth.Describe(store.Current));
        Assert.StartsWith("loop management: failing (3 in a row since", failing, StringComparison.Ordinal);
        Assert.EndsWith("IOException: No space left on device", failing, StringComparison.Ordinal);
        Assert.False(Health.Evaluate(store.Current, [], time.GetUtcNow()).Healthy);
        var backoffs = Enumerable.Range(0, 7).Select(_ => loops.Failed("management", new InvalidCastException("surprise"))).ToList();
        Assert.Equal([8, 16, 32, 64, 128, 256, 300], backoffs.Select(b => (int)b.TotalSeconds));   // capped at 5 min

        // One line per distinct cause, with the exception (its stack trace) for a bug report.
        var errors = logger.Collector.GetSnapshot().Where(r => r.Id.Id == 140).ToList();
        Assert.Equal(2, errors.Count);
        Assert.IsType<IOException>(errors[0].Exception);
        Assert.IsType<InvalidCastException>(errors[1].Exception);

        loops.Succeeded("management");
        Assert.Empty(LoopHealth.Describe(store.Current));
        Assert.True(Health.Evaluate(store.Current, [], time.GetUtcNow()).Healthy);
        Assert.Single(logger.Collector.GetSnapshot(), r => r.Id.Id == 141);
        Assert.Equal(10, store.Current.Loops["management"].Failures);
    }

    [Fact]
    public async Task A_sampler_whose_publish_throws_keeps_running_and_the_other_samplers_are_untouched()
    {
        var time = new FakeTimeProvider();
        var store = new SnapshotStore();
        var loops = new LoopHealth(store, time, new FakeLogger<LoopHealth>());
        var broken = new Source("hwmon", TimeSpan.FromSeconds(5))
        {
            Next = _ => ValueTask.FromResult(SourceResult.Success(_ => throw new InvalidCastException("a bug in the apply"))),
        };
        var good = new Source("disk", TimeSpan.FromSeconds(5));
        using var sampling = new SamplingService([broken, good], [], store, time, new FakeLogger<SamplingService>(), loops);
        await sampling.StartAsync(default);
        for (var i = 0; i < 10; i++)
        {
            var runs = good.Runs;
            time.Advance(TimeSpan.FromSeconds(5));
            await Poll.UntilAsync(() => good.Runs > runs, TimeSpan.FromSeconds(10), "the good sampler to run");
        }

        // The broken loop backs off on the same clock: keep time moving (a second per probe) until its failures are reported,
        // however its runs interleaved with the advances above.
        await Poll.UntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(1));
            return store.Current.Loops.GetValueOrDefault("hwmon") is { Failing: true };
        }, TimeSpan.FromSeconds(10), "the broken loop reported");
        Assert.False(sampling.ExecuteTask!.IsCompleted);      // the service (and the daemon) keeps running
        Assert.True(broken.Runs >= 3);
        Assert.True(store.Current.Collectors["disk"].Ok);
        await sampling.StopAsync(default);
    }

    [Fact]
    public async Task A_sampler_stuck_in_a_call_is_marked_down_and_stale_once_and_recovers_when_the_call_returns()
    {
        var time = new FakeTimeProvider();
        var store = new SnapshotStore();
        var logger = new FakeLogger<SamplingService>();
        var source = new Source("disk", TimeSpan.FromSeconds(1));
        var sampling = new SamplingService([source], [], store, time, logger);
        await sampling.RunOnceAsync(source, default);
        Assert.NotNull(store.Current.Disk);

        var release = new TaskCompletionSource<SourceResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        source.Next = _ => new ValueTask<SourceResult>(release.Task);
        var stuck = Task.Run(() => sampling.RunOnceAsync(source, default));
        await Poll.UntilAsync(() => source.Runs == 2, TimeSpan.FromSeconds(10), "the second run to start");

        time.Advance(TimeSpan.FromSeconds(10));
        Assert.Empty(sampling.MarkStalled());                       // within the stale time (11 s for 1 s)
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(["disk"], sampling.MarkStalled());
        Assert.Empty(sampling.MarkStalled());                       // once
        var status = store.Current.Collectors["disk"];
        Assert.True(status.Stale);
        Assert.False(status.Ok);
        Assert.Contains("stalled: a run started 12 s ago has not finished", status.Problem, StringComparison.Ordinal);
        Assert.Null(store.Current.Disk);                             // frozen readings are not served as current
        Assert.False(Health.Evaluate(store.Current, ["disk"], time.GetUtcNow()).Healthy);
        Assert.Single(logger.Collector.GetSnapshot(), r => r.Id.Id == 102);

        using var exporter = new SnapshotExporter(Microsoft.Extensions.Options.Options.Create(new MetricsOptions()), time);
        exporter.Apply(store.Current);
        var metrics = Exposition.Parse(System.Text.Encoding.UTF8.GetString((await exporter.RenderAsync(default)).Span));
        Assert.Equal(0, metrics.Value("vasthost_collector_up", ("collector", "disk")));
        Assert.Equal(1, metrics.Value("vasthost_collector_stale", ("collector", "disk")));

        release.SetResult(SourceResult.Success(s => s.WithDisk(new VastHostAgent.Host.DiskSpace("/d", "/d", 10, 5, 4))));
        await stuck;
        Assert.False(store.Current.Collectors["disk"].Stale);
        Assert.True(store.Current.Collectors["disk"].Ok);
        Assert.Contains(logger.Collector.GetSnapshot(), r => r.Message.Contains("Collector disk recovered", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unexpected_exception_in_the_reconcile_never_stops_the_management_loop_and_health_reports_it()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T08:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        await using var host = VastTestClient.Create(new()
        {
            ["agent:stateDirectory"] = TestEnvironment.NewTempDirectory("loops"),
            ["management:enabled"] = "true",
            ["management:reconcileInterval"] = "00:01:00",
            ["management:jitter"] = "0",
            ["vast:readRetries"] = "0",
        }, clock: time);
        var broken = true;
        host.Server.Respond = (_, _, _) => broken
            ? throw new NotSupportedException("an answer nobody expected")
            : Task.FromResult(new HttpResponseMessage(HttpStatusCode.ServiceUnavailable));

        var service = host.Services.GetRequiredService<ManagementService>();
        await service.StartAsync(default);
        var loops = host.Services.GetRequiredService<LoopHealth>();
        var store = host.Services.GetRequiredService<SnapshotStore>();
        await FakeClock.PumpUntilAsync(() => store.Current.Loops.GetValueOrDefault(ManagementService.LoopName) is { Failing: true },
            time, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(100), "the loop to report failing", () => host.InFlight);
        Assert.True(store.Current.Loops[ManagementService.LoopName].Failing, "the loop never reported failing");
        Assert.False(service.ExecuteTask!.IsCompleted, $"the management loop ended: {service.ExecuteTask.Exception}");
        var health = Health.Evaluate(store.Current, [], time.GetUtcNow());
        Assert.False(health.Healthy);
        Assert.Contains("loop management: failing", health.Text, StringComparison.Ordinal);
        Assert.Contains("NotSupportedException: an answer nobody expected", health.Text, StringComparison.Ordinal);
        var metrics = Exposition.Parse(await host.MetricsAsync());
        Assert.True(metrics.Value("vasthost_loop_failures_total", ("loop", "management")) >= 3);
        Assert.Equal(1, metrics.Value("vasthost_loop_failing", ("loop", "management")));
        Assert.Single(host.Logs.GetSnapshot(), r => r.Id.Id == 140);

        // The API answers again (with 503s: an expected failure, reported by the reconcile itself): the loop is healthy.
        broken = false;
        await FakeClock.PumpUntilAsync(() => !store.Current.Loops[ManagementService.LoopName].Failing,
            time, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(100), "the loop to be healthy again", () => host.InFlight);

        Assert.False(store.Current.Loops[ManagementService.LoopName].Failing);
        _ = loops;
        await service.StopAsync(default);
    }
}
