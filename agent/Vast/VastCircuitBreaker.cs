using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace VastHostAgent.Vast;

/// <summary>
/// The Vast API circuit breaker. After <see cref="VastOptions.CircuitBreakerFailures"/> consecutive server or
/// transport failures (5xx, timeouts, connection errors: every attempt, on any endpoint, reads and changes
/// alike) it opens: for <see cref="VastOptions.CircuitBreakDuration"/> every call is rejected without being
/// sent. Then it is half-open: the next call goes out as the one probe (calls meanwhile are rejected); the
/// probe answering closes the circuit, the probe failing opens it for another break. Any other answer (2xx,
/// 4xx, 429: the service is up, a rate limit is not an outage) resets the count.
/// </summary>
/// <remarks>
/// Our own rather than Polly's: Polly v8 only offers a failure-ratio breaker over a sampling window, so a
/// single success in the window kept it closed through a long 500 storm, where <c>vast.circuitBreakerFailures</c>
/// promises consecutive failures. The state is a singleton: IHttpClientFactory recycles the handlers.
/// Time comes from the injected <see cref="TimeProvider"/> only.
/// </remarks>
internal sealed class VastCircuitBreaker(IOptions<VastOptions> options, TimeProvider time, VastClientMetrics metrics, ILogger<VastCircuitBreaker> logger)
{
    private readonly Lock _lock = new();
    private CircuitState _state = CircuitState.Closed;
    private int _failures;
    private long _openedAt;
    private bool _probing;

    /// <summary>Changes at every transition, so a call admitted before one does not count after it.</summary>
    private long _generation;

    private enum CircuitState
    {
        Closed = 0,
        Open = 1,
        HalfOpen = 2,
    }

    /// <summary>What one attempt says about the service.</summary>
    public enum Verdict
    {
        /// <summary>An answer below 500, including 4xx and 429: the service is up.</summary>
        Answered,

        /// <summary>A 5xx, a timeout or a connection error.</summary>
        Failed,

        /// <summary>Nothing learned (the caller cancelled, or another error before an answer): changes nothing.</summary>
        Inconclusive,
    }

    /// <summary>Admits a call, or throws <see cref="VastCircuitOpenException"/> when the circuit rejects it.</summary>
    public Ticket Enter()
    {
        lock (_lock)
        {
            switch (_state)
            {
                case CircuitState.Closed:
                    return new Ticket(_generation, Probe: false);
                case CircuitState.Open when time.GetElapsedTime(_openedAt) < options.Value.CircuitBreakDuration:
                    throw new VastCircuitOpenException();
                case CircuitState.Open:
                    Transition(CircuitState.HalfOpen);
                    _probing = true;
                    VastLog.CircuitHalfOpen(logger);
                    return new Ticket(_generation, Probe: true);
                case CircuitState.HalfOpen when !_probing:
                    _probing = true;   // the last probe learned nothing: this call is the probe
                    return new Ticket(_generation, Probe: true);
                default:
                    throw new VastCircuitOpenException();
            }
        }
    }

    /// <summary>Records the outcome of a call admitted by <see cref="Enter"/>; call exactly once per ticket.</summary>
    public void Exit(Ticket ticket, Verdict verdict)
    {
        lock (_lock)
        {
            if (ticket.Generation != _generation)
            {
                return; // admitted before the circuit last changed state: too late to count
            }

            if (ticket.Probe)
            {
                _probing = false;
                if (verdict == Verdict.Answered)
                {
                    Close();
                }
                else if (verdict == Verdict.Failed)
                {
                    Open();
                }

                return;
            }

            if (verdict == Verdict.Answered)
            {
                _failures = 0;
            }
            else if (verdict == Verdict.Failed && ++_failures >= options.Value.CircuitBreakerFailures)
            {
                Open();
            }
        }
    }

    /// <summary>What counts against the breaker: the service or the network failing, not 4xx answers or rate limits.</summary>
    public static bool IsFailure(Exception exception) => exception is HttpRequestException or TimeoutException;

    /// <inheritdoc cref="IsFailure(Exception)"/>
    public static bool IsFailure(HttpResponseMessage response) => (int)response.StatusCode >= 500;

    private void Open()
    {
        Transition(CircuitState.Open);
        _openedAt = time.GetTimestamp();
        VastLog.CircuitOpened(logger, options.Value.CircuitBreakDuration);
    }

    private void Close()
    {
        Transition(CircuitState.Closed);
        VastLog.CircuitClosed(logger);
    }

    private void Transition(CircuitState state)
    {
        _state = state;
        _failures = 0;
        _generation++;
        metrics.Circuit((int)state);
    }

    /// <summary>An admitted call: the state generation it was admitted in, and whether it is the half-open probe.</summary>
    internal readonly record struct Ticket(long Generation, bool Probe);
}

/// <summary>
/// The breaker in the Vast HTTP pipeline, below the retry (each attempt counts; a rejection is not retried)
/// and above spacing, auth and the per-attempt timeout (which turns a hung attempt into a TimeoutException).
/// </summary>
internal sealed class VastCircuitBreakerHandler(VastCircuitBreaker breaker) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var ticket = breaker.Enter();
        var verdict = VastCircuitBreaker.Verdict.Inconclusive;
        try
        {
            var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            verdict = VastCircuitBreaker.IsFailure(response) ? VastCircuitBreaker.Verdict.Failed : VastCircuitBreaker.Verdict.Answered;
            return response;
        }
        catch (Exception ex) when (VastCircuitBreaker.IsFailure(ex))
        {
            verdict = VastCircuitBreaker.Verdict.Failed;
            throw;
        }
        finally
        {
            breaker.Exit(ticket, verdict);
        }
    }
}

/// <summary>The circuit breaker rejected the call: it was not sent. <see cref="VastClient"/> maps it to <see cref="VastFailure.CircuitOpen"/>.</summary>
public sealed class VastCircuitOpenException() : Exception("the Vast API circuit breaker is open after repeated failures");
