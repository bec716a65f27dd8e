using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Time.Testing;

namespace VastHostAgent.Tests.Support;

/// <summary>The test clock pump: simulated hours in a moment, every timer on time, real work given real time.</summary>
public sealed class FakeClockTests
{
    private static FakeTimeProvider NewClock() => new(DateTimeOffset.Parse("2026-11-30T08:00:00Z", CultureInfo.InvariantCulture));

    [Fact]
    public async Task Hours_of_delays_pass_in_a_moment_and_every_timer_fires_exactly_when_due()
    {
        var clock = NewClock();
        var start = clock.GetUtcNow();
        async Task<List<TimeSpan>> WorkAsync()
        {
            var woke = new List<TimeSpan>();
            for (var i = 0; i < 100; i++)
            {
                await Task.Delay(TimeSpan.FromMinutes(7), clock);
                woke.Add(clock.GetUtcNow() - start);
            }

            return woke;
        }

        var real = Stopwatch.StartNew();
        var woke = await FakeClock.PumpAsync(WorkAsync(), clock, TimeSpan.FromMilliseconds(100), TimeSpan.FromDays(1));
        Assert.Equal(Enumerable.Range(1, 100).Select(i => TimeSpan.FromMinutes(7 * i)), woke);
        Assert.True(real.Elapsed < TimeSpan.FromSeconds(10), $"11 h 40 min of delays took {real.Elapsed} of real time");
    }

    [Fact]
    public async Task Work_in_flight_gets_real_time_in_proportion_to_the_simulated_time_that_passes()
    {
        // At 100 ms per real millisecond a 60 s timeout leaves real work 600 ms: 20 ms of it answers in time.
        var clock = NewClock();
        var inFlight = false;
        async Task<string> CallAsync(TimeSpan realWork, TimeSpan timeout)
        {
            // Enters through the clock's gate before arming its timeout, as the Vast test client's calls do.
            lock (FakeClock.Gate(clock))
            {
                inFlight = true;
            }

            using var cts = new CancellationTokenSource(timeout, clock);
            try
            {
                await Task.Delay(realWork, cts.Token);
                return "answered";
            }
            catch (OperationCanceledException)
            {
                return "timed out";
            }
            finally
            {
                inFlight = false;
            }
        }

        var pace = TimeSpan.FromMilliseconds(100);
        Assert.Equal("answered", await FakeClock.PumpAsync(CallAsync(TimeSpan.FromMilliseconds(20), TimeSpan.FromSeconds(60)), clock, pace, TimeSpan.FromHours(1), () => inFlight));

        // Work that never answers times out after the timeout's share of real time (10 s / 100 = 100 ms), not at once.
        var real = Stopwatch.StartNew();
        var from = clock.GetUtcNow();
        Assert.Equal("timed out", await FakeClock.PumpAsync(CallAsync(TimeSpan.FromMinutes(10), TimeSpan.FromSeconds(10)), clock, pace, TimeSpan.FromHours(1), () => inFlight));
        Assert.True(real.Elapsed >= TimeSpan.FromMilliseconds(90), $"timed out after {real.Elapsed} of real time");
        // At the timeout, not before it; the pump's last step may overshoot by what one real wait took times the
        // pace (a busy machine stalls a wait for hundreds of milliseconds: tens of simulated seconds), but the clock
        // does not run on to the pump's limit.
        Assert.InRange(clock.GetUtcNow() - from, TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(5));
    }
}
