using System.Collections;
using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Time.Testing;

namespace VastHostAgent.Tests.Support;

/// <summary>
/// Drives a <see cref="FakeTimeProvider"/> for work that waits on it: hours of the agent's time in as little
/// real time as the work allows, and never a fixed real sleep as synchronisation.
/// <para>
/// While nothing is in flight (<c>inFlight</c> false) the clock jumps straight to the next timer due, so a
/// timer never fires late and empty hours cost nothing; after a one-shot timer fires (a delay, a timeout) the
/// pump waits until the work it woke has moved on (a new timer, a call in flight, or the awaited task done)
/// before the next jump. While <c>inFlight</c> holds — real work the clock may time out: an HTTP call on a
/// real socket, a child process — the pump waits on the task in short waits and the clock runs at
/// <c>pace</c> per real millisecond, so that work gets real time in proportion to the simulated time that
/// passes: a timeout of T fires after T / pace real milliseconds (as for a slow server or a hung process).
/// </para>
/// </summary>
public static class FakeClock
{
    /// <summary>Real time the pump gives up after, whatever the simulated limit: a hung test fails instead of hanging.</summary>
    private static readonly TimeSpan RealTimeLimit = TimeSpan.FromMinutes(2);

    /// <summary>How long the pump waits, at most, for woken work to show that it has moved on.</summary>
    private static readonly TimeSpan SettleLimit = TimeSpan.FromMilliseconds(200);

    // The timers armed on a FakeTimeProvider are not public: read them (FakeTimeProvider.Waiters, each with a
    // WakeupTime in ticks and a Period, 0 for a one-shot timer). A new version that changes them fails here, loudly.
    private static readonly FieldInfo WaitersField = typeof(FakeTimeProvider).GetField("Waiters", BindingFlags.Instance | BindingFlags.NonPublic)
        ?? throw new InvalidOperationException("FakeTimeProvider has no 'Waiters' field: FakeClock needs updating for this version of Microsoft.Extensions.TimeProvider.Testing");

    private static readonly Type WaiterType = WaitersField.FieldType.GetGenericArguments().Single();

    private static readonly PropertyInfo WakeupTime = WaiterType.GetProperty("WakeupTime") is { PropertyType: var t } p && t == typeof(long)
        ? p
        : throw new InvalidOperationException("FakeTimeProvider's timers have no WakeupTime in ticks: FakeClock needs updating");

    private static readonly PropertyInfo Period = WaiterType.GetProperty("Period") is { PropertyType: var t } p && t == typeof(long)
        ? p
        : throw new InvalidOperationException("FakeTimeProvider's timers have no Period in ticks: FakeClock needs updating");

    private static readonly ConditionalWeakTable<FakeTimeProvider, object> Gates = [];

    /// <summary>
    /// What real work in flight enters through (a lock on the clock): the pump checks "nothing in flight" and jumps
    /// to the next timer under it, so a call that starts meanwhile cannot have its timeout jumped to.
    /// </summary>
    public static object Gate(FakeTimeProvider clock) => Gates.GetValue(clock, _ => new object());

    /// <summary>Runs the clock until <paramref name="task"/> completes and returns its result.</summary>
    /// <param name="task">The work, started on <paramref name="clock"/>.</param>
    /// <param name="clock">The clock the work waits on.</param>
    /// <param name="pace">How fast the clock runs while <paramref name="inFlight"/> holds: simulated time per real millisecond.</param>
    /// <param name="limit">The most simulated time the task may take (a <see cref="TimeoutException"/> past it).</param>
    /// <param name="inFlight">Whether real work the clock may time out is in flight now (none when null).</param>
    public static async Task<T> PumpAsync<T>(Task<T> task, FakeTimeProvider clock, TimeSpan pace, TimeSpan limit, Func<bool>? inFlight = null)
    {
        await PumpAsync((Task)task, clock, pace, limit, inFlight);
        return await task;
    }

    /// <inheritdoc cref="PumpAsync{T}(Task{T}, FakeTimeProvider, TimeSpan, TimeSpan, Func{bool}?)"/>
    public static async Task PumpAsync(Task task, FakeTimeProvider clock, TimeSpan pace, TimeSpan limit, Func<bool>? inFlight = null)
    {
        var end = clock.GetUtcNow() + limit;
        await RunAsync(clock, pace, end, inFlight, () => task.IsCompleted, task);
        if (!task.IsCompleted)
        {
            throw new TimeoutException($"the work did not finish within {limit} of simulated time (now {clock.GetUtcNow():O})");
        }

        await task;
    }

    /// <summary>Runs the clock until <paramref name="condition"/> holds (background loops), within <paramref name="limit"/> of simulated time.</summary>
    public static async Task PumpUntilAsync(Func<bool> condition, FakeTimeProvider clock, TimeSpan pace, TimeSpan limit, string what, Func<bool>? inFlight = null)
    {
        var end = clock.GetUtcNow() + limit;
        await RunAsync(clock, pace, end, inFlight, condition, null);
        if (!condition())
        {
            throw new TimeoutException($"Timed out after {limit} of simulated time waiting for {what} (now {clock.GetUtcNow():O})");
        }
    }

    /// <summary>Runs the clock for <paramref name="span"/> of simulated time (background loops in steady state).</summary>
    public static Task RunForAsync(FakeTimeProvider clock, TimeSpan span, TimeSpan pace, Func<bool>? inFlight = null) =>
        RunAsync(clock, pace, clock.GetUtcNow() + span, inFlight, () => false, null);

    private static async Task RunAsync(FakeTimeProvider clock, TimeSpan pace, DateTimeOffset end, Func<bool>? inFlight, Func<bool> done, Task? task)
    {
        if (pace <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(pace), pace, "the pace must be positive");
        }

        var real = Stopwatch.StartNew();
        var idle = Stopwatch.StartNew();
        while (!done() && clock.GetUtcNow() < end)
        {
            if (real.Elapsed > RealTimeLimit)
            {
                throw new TimeoutException($"the simulated clock did not reach {end:O} within {RealTimeLimit.TotalMinutes:0} minutes of real time (now {clock.GetUtcNow():O})");
            }

            if (inFlight?.Invoke() == true)
            {
                // Real work the clock may time out: real time for it, while simulated time passes at `pace` per
                // real millisecond (so a timeout fires after a real time in proportion, however busy the machine is).
                var waitedFrom = real.Elapsed;
                await WaitAsync(task);
                if (!done())
                {
                    Advance(clock, Min(pace * (real.Elapsed - waitedFrom).TotalMilliseconds, end - clock.GetUtcNow()));
                }

                idle.Restart();
                continue;
            }

            var before = Waiters(clock);
            if (before.Next is not { } next)
            {
                // Nothing armed on the clock: the work is running, or waits on something else. Let it; if nothing
                // gets armed for a while, move the clock on by one pace (it wakes nobody).
                await WaitAsync(task);
                if (idle.Elapsed >= SettleLimit && !done())
                {
                    Advance(clock, Min(pace, end - clock.GetUtcNow()));
                    idle.Restart();
                }

                continue;
            }

            lock (Gate(clock))
            {
                // Real work may have started since the check above, arming its timeout: never jump to it. Work that
                // starts from here on waits for this jump (it enters through the same gate), so its timers count
                // from the new time.
                if (inFlight?.Invoke() == true)
                {
                    continue;
                }

                Advance(clock, (next < end.UtcTicks ? new DateTimeOffset(next, TimeSpan.Zero) : end) - clock.GetUtcNow());
            }

            var after = Waiters(clock);
            if (before.OneShot.IsSubsetOf(after.OneShot))
            {
                // No delay or timeout fired (periodic timers at most: their loops wait for the next tick themselves).
                await Task.Yield();
                idle.Restart();
                continue;
            }

            // A delay or a timeout fired: before the next timer fires, let the work it woke move on to its next wait
            // (a new timer or a call in flight) or finish.
            var settle = Stopwatch.StartNew();
            while (!done() && inFlight?.Invoke() != true && Waiters(clock).OneShot.IsSubsetOf(before.OneShot) && settle.Elapsed < SettleLimit)
            {
                await WaitAsync(task);
            }

            idle.Restart();
        }
    }

    private static void Advance(FakeTimeProvider clock, TimeSpan by)
    {
        if (by > TimeSpan.Zero)
        {
            clock.Advance(by);
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>A short real wait that ends early when the awaited task completes.</summary>
    private static Task WaitAsync(Task? task) => task is null ? Task.Delay(1) : Task.WhenAny(task, Task.Delay(1));

    /// <summary>The timers armed on the clock: the next due time, and the one-shot ones by identity.</summary>
    private static Armed Waiters(FakeTimeProvider clock)
    {
        var waiters = (IEnumerable)WaitersField.GetValue(clock)!;
        long? next = null;
        var oneShot = new HashSet<object>(ReferenceEqualityComparer.Instance);
        lock (waiters)
        {
            foreach (var waiter in waiters)
            {
                var wakeup = (long)WakeupTime.GetValue(waiter)!;
                next = next is { } n && n <= wakeup ? n : wakeup;
                if ((long)Period.GetValue(waiter)! == 0)
                {
                    oneShot.Add(waiter);
                }
            }
        }

        return new Armed(next, oneShot);
    }

    private sealed record Armed(long? Next, HashSet<object> OneShot);
}
