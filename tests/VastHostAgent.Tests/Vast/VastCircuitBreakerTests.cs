using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using VastHostAgent.Metrics;
using VastHostAgent.Vast;

namespace VastHostAgent.Tests.Vast;

/// <summary>
/// The circuit breaker over the real Vast HTTP pipeline, a scripted server and a fake clock: it opens after
/// <c>vast.circuitBreakerFailures</c> consecutive server or transport failures (attempts, across endpoints,
/// reads and mutations alike), whatever succeeded before; other answers reset the count; an open circuit sends
/// nothing; after the break exactly one probe goes out and decides. Then the breaker alone, for what the
/// pipeline cannot stage: a probe that learns nothing, answers that arrive after a transition, parallel callers.
/// </summary>
public sealed class VastCircuitBreakerTests
{
    private static readonly Func<CancellationToken, Task<HttpResponseMessage>> Ok = _ => Task.FromResult(OkResponse());

    private static readonly Func<CancellationToken, Task<HttpResponseMessage>> ConnectionReset =
        _ => throw new HttpRequestException(HttpRequestError.ConnectionError, "connection reset");

    private static readonly Func<CancellationToken, Task<HttpResponseMessage>> NoAnswer = async ct =>
    {
        await Task.Delay(Timeout.Infinite, ct);
        return OkResponse();
    };

    /// <summary>A read, a mutation, another read, another mutation, … so the count is seen to span endpoints and kinds.</summary>
    private static readonly Func<IVastClient, Task>[] Calls =
    [
        c => c.GetMachinesAsync(default),
        c => c.SetMinBidAsync(67890, 0.3, default),
        c => c.GetReportsAsync(67890, default),
        c => c.UnlistMachineAsync(67890, default),
        c => c.GetCurrentUserAsync(default),
        c => c.ListMachineAsync(new CreateAsksRequest { Machine = 67890 }, default),
    ];

    /// <summary>A 200 that every call used here reads as success.</summary>
    private static HttpResponseMessage OkResponse() => StubVastServer.Json("""{"success": true, "machines": []}""");

    private static Func<CancellationToken, Task<HttpResponseMessage>> Status(HttpStatusCode status) =>
        _ => Task.FromResult(StubVastServer.Text("scripted", status));

    private static VastTestClient Create(int failures, int readRetries = 0, string requestTimeout = "00:00:30") => VastTestClient.Create(new()
    {
        ["vast:circuitBreakerFailures"] = failures.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["vast:circuitBreakDuration"] = "00:01:00",
        ["vast:readRetries"] = readRetries.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["vast:requestTimeout"] = requestTimeout,
    });

    /// <summary>Every request gets <paramref name="answer"/> until changed.</summary>
    private static void Answer(VastTestClient t, Func<CancellationToken, Task<HttpResponseMessage>> answer) =>
        t.Server.Respond = (_, _, ct) => answer(ct);

    /// <summary>Runs call <paramref name="i"/> of <see cref="Calls"/> (cycling) to completion: null on success, else the failure.</summary>
    private static async Task<VastFailure?> CallAsync(VastTestClient t, int i)
    {
        try
        {
            await t.RunAsync(async c =>
            {
                await Calls[i % Calls.Length](c);
                return 0;
            });
            return null;
        }
        catch (VastApiException ex)
        {
            return ex.Failure;
        }
    }

    /// <summary>Asserts that a call is rejected by the open circuit and that nothing reaches the server.</summary>
    private static async Task AssertRejectedUnsentAsync(VastTestClient t, int i)
    {
        var sent = t.Server.Requests.Count;
        Assert.Equal(VastFailure.CircuitOpen, await CallAsync(t, i));
        Assert.Equal(sent, t.Server.Requests.Count);
    }

    private static async Task<int> CircuitStateAsync(VastTestClient t)
    {
        var line = (await t.MetricsAsync()).Split('\n').Single(l => l.StartsWith("vasthost_vast_circuit_state ", StringComparison.Ordinal));
        return int.Parse(line["vasthost_vast_circuit_state ".Length..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static int Logged(VastTestClient t, int eventId) => t.Logs.GetSnapshot().Count(r => r.Id.Id == eventId);

    [Fact]
    public async Task After_a_success_the_configured_number_of_consecutive_server_and_transport_failures_opens_the_circuit()
    {
        await using var t = Create(failures: 5, requestTimeout: "00:00:02");
        var start = t.Time.GetUtcNow();
        Answer(t, Ok);
        Assert.Null(await CallAsync(t, 0));

        // Five failures of every kind the breaker counts, on five endpoints, reads and mutations.
        var failures = new (Func<CancellationToken, Task<HttpResponseMessage>> Answer, VastFailure Expected)[]
        {
            (Status(HttpStatusCode.InternalServerError), VastFailure.Server),
            (Status(HttpStatusCode.BadGateway), VastFailure.Server),
            (ConnectionReset, VastFailure.Unavailable),
            (Status(HttpStatusCode.ServiceUnavailable), VastFailure.Server),
            (NoAnswer, VastFailure.Unavailable),
        };
        for (var i = 0; i < failures.Length; i++)
        {
            Assert.Equal(0, await CircuitStateAsync(t));
            Answer(t, failures[i].Answer);
            Assert.Equal(failures[i].Expected, await CallAsync(t, i));
        }

        Assert.True(t.Time.GetUtcNow() - start < TimeSpan.FromMinutes(1), $"took {t.Time.GetUtcNow() - start}");
        Assert.Equal(6, t.Server.Requests.Count);
        Answer(t, Ok);
        await AssertRejectedUnsentAsync(t, 0);
        await AssertRejectedUnsentAsync(t, 1);
        Assert.Equal(1, await CircuitStateAsync(t));
        Assert.Equal(1, Logged(t, 4001));
    }

    [Fact]
    public async Task A_success_resets_the_count_so_only_an_unbroken_run_of_failures_opens_the_circuit()
    {
        await using var t = Create(failures: 5);
        Answer(t, Ok);
        Assert.Null(await CallAsync(t, 0));

        Answer(t, Status(HttpStatusCode.InternalServerError));
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(VastFailure.Server, await CallAsync(t, i));
        }

        Answer(t, Ok);
        Assert.Null(await CallAsync(t, 4));

        Answer(t, Status(HttpStatusCode.InternalServerError));
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(VastFailure.Server, await CallAsync(t, i));
        }

        // 8 of the last 9 failed, but only 4 in a row: still closed, so this call is sent (and is the 5th in a row).
        Assert.Equal(0, await CircuitStateAsync(t));
        Assert.Equal(VastFailure.Server, await CallAsync(t, 5));
        Assert.Equal(11, t.Server.Requests.Count);
        await AssertRejectedUnsentAsync(t, 0);
        Assert.Equal(1, await CircuitStateAsync(t));
    }

    [Theory]
    [InlineData(HttpStatusCode.TooManyRequests, VastFailure.RateLimited)]
    [InlineData(HttpStatusCode.BadRequest, VastFailure.Rejected)]
    [InlineData(HttpStatusCode.NotFound, VastFailure.Rejected)]
    [InlineData(HttpStatusCode.Unauthorized, VastFailure.Authentication)]
    public async Task Rate_limits_and_other_4xx_answers_neither_count_nor_open_the_circuit_and_they_reset_the_count(HttpStatusCode status, VastFailure expected)
    {
        await using var t = Create(failures: 3);
        Answer(t, Ok);
        Assert.Null(await CallAsync(t, 0));

        Answer(t, Status(HttpStatusCode.InternalServerError));
        Assert.Equal(VastFailure.Server, await CallAsync(t, 1));
        Assert.Equal(VastFailure.Server, await CallAsync(t, 2));
        Answer(t, Status(status));
        Assert.Equal(expected, await CallAsync(t, 3));
        Answer(t, Status(HttpStatusCode.InternalServerError));
        Assert.Equal(VastFailure.Server, await CallAsync(t, 4));
        Assert.Equal(VastFailure.Server, await CallAsync(t, 5));

        // A long run of these answers, each sent: they are not the service failing.
        Answer(t, Status(status));
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(expected, await CallAsync(t, i));
        }

        Assert.Equal(14, t.Server.Requests.Count);
        Assert.Equal(0, await CircuitStateAsync(t));
        Assert.Equal(0, Logged(t, 4001));

        // The breaker still works: three failures in a row open it.
        Answer(t, Status(HttpStatusCode.InternalServerError));
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(VastFailure.Server, await CallAsync(t, i));
        }

        await AssertRejectedUnsentAsync(t, 3);
    }

    [Fact]
    public async Task After_the_break_exactly_one_probe_is_sent_a_failed_probe_reopens_and_a_good_probe_closes()
    {
        await using var t = Create(failures: 3);
        Answer(t, Ok);
        Assert.Null(await CallAsync(t, 0));
        Answer(t, Status(HttpStatusCode.InternalServerError));
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(VastFailure.Server, await CallAsync(t, i));
        }

        await AssertRejectedUnsentAsync(t, 0);
        var openedAt = t.Time.GetUtcNow();
        t.Time.Advance(TimeSpan.FromSeconds(59));
        await AssertRejectedUnsentAsync(t, 1);   // still within the break
        Assert.Equal(1, await CircuitStateAsync(t));
        t.Time.SetUtcNow(openedAt + TimeSpan.FromMinutes(1));

        // The probe: held at the server while other calls arrive.
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource<HttpStatusCode>(TaskCreationOptions.RunContinuationsAsynchronously);
        Answer(t, async _ =>
        {
            arrived.TrySetResult();
            return StubVastServer.Text("probe", await release.Task);
        });
        var sent = t.Server.Requests.Count;
        var probe = t.Client.GetMachinesAsync(default);
        await arrived.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(2, await CircuitStateAsync(t));
        Assert.Equal(1, Logged(t, 4008));
        await AssertRejectedUnsentAsync(t, 1);   // concurrent calls are rejected while the probe is out
        await AssertRejectedUnsentAsync(t, 4);
        Assert.Equal(sent + 1, t.Server.Requests.Count);

        // A failed probe opens the circuit for another break.
        release.SetResult(HttpStatusCode.InternalServerError);
        Assert.Equal(VastFailure.Server, (await Assert.ThrowsAsync<VastApiException>(() => probe)).Failure);
        Assert.Equal(1, await CircuitStateAsync(t));
        Assert.Equal(2, Logged(t, 4001));
        Answer(t, Ok);
        await AssertRejectedUnsentAsync(t, 2);
        t.Time.Advance(TimeSpan.FromSeconds(59));
        await AssertRejectedUnsentAsync(t, 3);
        t.Time.Advance(TimeSpan.FromSeconds(1));

        // A good probe closes it: calls flow, and the count starts again from zero.
        Assert.Null(await CallAsync(t, 4));
        Assert.Equal(0, await CircuitStateAsync(t));
        Assert.Equal(1, Logged(t, 4002));
        Assert.Null(await CallAsync(t, 5));
        Answer(t, Status(HttpStatusCode.InternalServerError));
        Assert.Equal(VastFailure.Server, await CallAsync(t, 0));
        Assert.Equal(VastFailure.Server, await CallAsync(t, 1));
        Assert.Equal(VastFailure.Server, await CallAsync(t, 2));   // sent: two failures since the probe
        Assert.Equal(sent + 6, t.Server.Requests.Count);
        await AssertRejectedUnsentAsync(t, 3);
    }

    [Fact]
    public async Task Each_retry_attempt_of_a_read_counts_and_once_the_circuit_opens_no_retry_is_sent()
    {
        await using var t = Create(failures: 3, readRetries: 3);
        Answer(t, Ok);
        Assert.Null(await CallAsync(t, 0));

        // One read: attempts 1-3 fail (503 is retried) and open the circuit; attempt 4 is rejected, unsent.
        Answer(t, Status(HttpStatusCode.ServiceUnavailable));
        Assert.Equal(VastFailure.CircuitOpen, await CallAsync(t, 0));
        Assert.Equal(4, t.Server.Requests.Count);
        Assert.Equal(1, await CircuitStateAsync(t));

        await AssertRejectedUnsentAsync(t, 2);   // a read: rejected at once, not retried
        await AssertRejectedUnsentAsync(t, 1);   // a mutation
    }

    [Fact]
    public async Task A_read_that_succeeds_on_a_retry_resets_the_count()
    {
        await using var t = Create(failures: 3, readRetries: 3);
        Answer(t, Ok);
        Assert.Null(await CallAsync(t, 0));

        // 503, 503, 200 on one read; then two failed mutations: 2 + 2 would open a breaker that only counts.
        var attempts = 0;
        Answer(t, _ => Task.FromResult(++attempts < 3 ? StubVastServer.Text("busy", HttpStatusCode.ServiceUnavailable) : OkResponse()));
        Assert.Null(await CallAsync(t, 0));
        Answer(t, Status(HttpStatusCode.InternalServerError));
        Assert.Equal(VastFailure.Server, await CallAsync(t, 1));
        Assert.Equal(VastFailure.Server, await CallAsync(t, 3));
        Assert.Equal(VastFailure.Server, await CallAsync(t, 5));   // sent: the third in a row
        Assert.Equal(7, t.Server.Requests.Count);
        await AssertRejectedUnsentAsync(t, 1);
    }

    private static VastCircuitBreaker Breaker(FakeTimeProvider time, int failures) => new(
        Options.Create(new VastOptions { CircuitBreakerFailures = failures, CircuitBreakDuration = TimeSpan.FromMinutes(1) }),
        time, new VastClientMetrics(new MetricsRegistry()), NullLogger<VastCircuitBreaker>.Instance);

    private static void Fail(VastCircuitBreaker breaker) => breaker.Exit(breaker.Enter(), VastCircuitBreaker.Verdict.Failed);

    [Fact]
    public void A_probe_that_learns_nothing_frees_the_slot_and_the_next_call_is_the_probe()
    {
        var time = new FakeTimeProvider();
        var breaker = Breaker(time, failures: 3);
        Fail(breaker);
        Fail(breaker);
        Fail(breaker);
        Assert.Throws<VastCircuitOpenException>(() => breaker.Enter());
        time.Advance(TimeSpan.FromMinutes(1));

        var probe = breaker.Enter();
        Assert.True(probe.Probe);
        Assert.Throws<VastCircuitOpenException>(() => breaker.Enter());
        breaker.Exit(probe, VastCircuitBreaker.Verdict.Inconclusive);   // e.g. the caller cancelled

        var second = breaker.Enter();
        Assert.True(second.Probe);
        Assert.Throws<VastCircuitOpenException>(() => breaker.Enter());
        breaker.Exit(second, VastCircuitBreaker.Verdict.Failed);       // one failed probe reopens at once
        Assert.Throws<VastCircuitOpenException>(() => breaker.Enter());
        time.Advance(TimeSpan.FromSeconds(59));
        Assert.Throws<VastCircuitOpenException>(() => breaker.Enter());
        time.Advance(TimeSpan.FromSeconds(1));
        var third = breaker.Enter();
        breaker.Exit(third, VastCircuitBreaker.Verdict.Answered);
        Assert.False(breaker.Enter().Probe);
    }

    [Fact]
    public void Calls_admitted_before_a_transition_do_not_count_after_it()
    {
        var time = new FakeTimeProvider();
        var breaker = Breaker(time, failures: 2);
        var slowGood = breaker.Enter();
        var slowBad = breaker.Enter();
        Fail(breaker);
        Fail(breaker);

        breaker.Exit(slowGood, VastCircuitBreaker.Verdict.Answered);    // an answer from before the break does not close it
        Assert.Throws<VastCircuitOpenException>(() => breaker.Enter());

        time.Advance(TimeSpan.FromMinutes(1));
        breaker.Exit(breaker.Enter(), VastCircuitBreaker.Verdict.Answered);
        breaker.Exit(slowBad, VastCircuitBreaker.Verdict.Failed);       // a failure from before the break does not count
        Fail(breaker);
        Assert.False(breaker.Enter().Probe);                            // one failure since closing: still closed
        Fail(breaker);
        Assert.Throws<VastCircuitOpenException>(() => breaker.Enter());
    }

    [Fact]
    public async Task Of_many_parallel_callers_after_the_break_exactly_one_is_the_probe()
    {
        var time = new FakeTimeProvider();
        var breaker = Breaker(time, failures: 2);
        Fail(breaker);
        Fail(breaker);
        time.Advance(TimeSpan.FromMinutes(1));

        // One thread per caller (not pool threads: 16 of them blocked on the barrier would starve the pool for seconds).
        using var start = new Barrier(16);
        var admitted = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Factory.StartNew(() =>
        {
            start.SignalAndWait();
            try
            {
                return breaker.Enter().Probe;
            }
            catch (VastCircuitOpenException)
            {
                return false;
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)));
        Assert.Single(admitted, a => a);
    }
}
