using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using VastHostAgent.Host;
using VastHostAgent.Kernel;
using VastHostAgent.Metrics;

namespace VastHostAgent.Tests.Hosting;

/// <summary>Sampler loops, collector health and /healthz semantics on a fake clock.</summary>
public sealed class SamplingServiceTests
{
    private sealed class ScriptedSource(string name, TimeSpan interval) : ISnapshotSource
    {
        public Func<SourceResult> Next { get; set; } = () => SourceResult.Success(s => s);

        public int Runs { get; private set; }

        public string Name => name;

        public bool Enabled => true;

        public TimeSpan Interval => interval;

        public ValueTask<SourceResult> CollectAsync(CancellationToken cancellationToken)
        {
            Runs++;
            return ValueTask.FromResult(Next());
        }

        public HostSnapshot Clear(HostSnapshot snapshot) => snapshot.WithDisk(null);
    }

    [Fact]
    public async Task A_source_that_throws_is_recorded_as_failing_its_data_removed_and_logged_once()
    {
        var time = new FakeTimeProvider();
        var store = new SnapshotStore();
        var source = new ScriptedSource("disk", TimeSpan.FromSeconds(5));
        var logger = new FakeLogger<SamplingService>();
        var sampling = new SamplingService([source], store, time, logger);

        source.Next = () => SourceResult.Success(s => s.WithDisk(new VastHostAgent.Host.DiskSpace("/d", "/d", 10, 5, 4)));
        Assert.True((await sampling.RunOnceAsync(source, default)).Ok);
        Assert.NotNull(store.Current.Disk);

        source.Next = () => throw new IOException("statvfs(/d) failed: Input/output error");
        time.Advance(TimeSpan.FromSeconds(5));
        var failed = await sampling.RunOnceAsync(source, default);
        time.Advance(TimeSpan.FromSeconds(5));
        await sampling.RunOnceAsync(source, default);

        Assert.False(failed.Ok);
        Assert.Equal("IOException: statvfs(/d) failed: Input/output error", failed.Problem);
        Assert.Null(store.Current.Disk);
        Assert.Equal(time.GetUtcNow() - TimeSpan.FromSeconds(10), store.Current.Collectors["disk"].LastSuccess);
        Assert.Single(logger.Collector.GetSnapshot(), r => r.Message.Contains("Collector disk failing", StringComparison.Ordinal));

        source.Next = () => SourceResult.Success(s => s);
        await sampling.RunOnceAsync(source, default);
        Assert.Contains(logger.Collector.GetSnapshot(), r => r.Message.Contains("Collector disk recovered", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Health_turns_unhealthy_when_a_collector_has_not_succeeded_for_three_intervals()
    {
        var time = new FakeTimeProvider();
        var store = new SnapshotStore();
        var source = new ScriptedSource("gpu", TimeSpan.FromSeconds(5));
        var sampling = new SamplingService([source], store, time, new FakeLogger<SamplingService>());

        Assert.False(Health.Evaluate(store.Current, ["gpu"], time.GetUtcNow()).Healthy); // no run yet
        await sampling.RunOnceAsync(source, default);
        Assert.True(Health.Evaluate(store.Current, ["gpu"], time.GetUtcNow()).Healthy);

        source.Next = () => SourceResult.Failure("NVML unavailable", s => s);
        time.Advance(TimeSpan.FromSeconds(5));
        await sampling.RunOnceAsync(source, default);
        // One failed run right after a success: the last success is still recent.
        Assert.True(Health.Evaluate(store.Current, ["gpu"], time.GetUtcNow()).Healthy);

        time.Advance(TimeSpan.FromSeconds(11));
        await sampling.RunOnceAsync(source, default);
        var health = Health.Evaluate(store.Current, ["gpu"], time.GetUtcNow());
        Assert.False(health.Healthy);
        Assert.Contains("gpu: failing (last success 16s ago): NVML unavailable", health.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Each_source_runs_on_its_own_interval_on_the_clock()
    {
        var time = new FakeTimeProvider();
        var store = new SnapshotStore();
        var fast = new ScriptedSource("gpu", TimeSpan.FromSeconds(5));
        var slow = new ScriptedSource("disk", TimeSpan.FromSeconds(30));
        using var sampling = new SamplingService([fast, slow], store, time, new FakeLogger<SamplingService>());
        using var cts = new CancellationTokenSource();

        await sampling.StartAsync(cts.Token);
        await Support.Poll.UntilAsync(() => fast.Runs == 1 && slow.Runs == 1, TimeSpan.FromSeconds(10), "first runs");
        for (var i = 0; i < 6; i++)
        {
            time.Advance(TimeSpan.FromSeconds(5));
            var expected = i + 2;
            await Support.Poll.UntilAsync(() => fast.Runs == expected, TimeSpan.FromSeconds(10), $"fast run {expected}");
        }

        await Support.Poll.UntilAsync(() => slow.Runs == 2, TimeSpan.FromSeconds(10), "slow second run");
        Assert.Equal(7, fast.Runs);
        await sampling.StopAsync(default);
    }

    [Fact]
    public void Stale_after_is_three_intervals_and_at_least_interval_plus_ten_seconds()
    {
        Assert.Equal(TimeSpan.FromSeconds(15), SamplingService.StaleAfter(TimeSpan.FromSeconds(5)));
        Assert.Equal(TimeSpan.FromSeconds(11), SamplingService.StaleAfter(TimeSpan.FromSeconds(1)));
        Assert.Equal(TimeSpan.FromMinutes(3), SamplingService.StaleAfter(TimeSpan.FromMinutes(1)));
    }
}
