namespace VastHostAgent.Vast;

/// <summary>How a Vast API call failed.</summary>
public enum VastFailure
{
    /// <summary>401/403/404 auth shapes: the key is wrong, deleted, or lacks a permission.</summary>
    Authentication,

    /// <summary>429: too many calls; nothing was done.</summary>
    RateLimited,

    /// <summary>5xx from the service (or a gateway in front of it).</summary>
    Server,

    /// <summary>Another 4xx: the request was refused (invalid arguments, not the owner, not found).</summary>
    Rejected,

    /// <summary>200 with <c>success: false</c>: a business rule refused it.</summary>
    Business,

    /// <summary>The body could not be read as the documented JSON.</summary>
    Malformed,

    /// <summary>No answer in time, or the connection failed before a request was sent.</summary>
    Unavailable,

    /// <summary>The circuit breaker is open after repeated failures: the call was not attempted.</summary>
    CircuitOpen,

    /// <summary>
    /// A mutation was sent but no answer came back (timeout, connection dropped): it may or may not have
    /// been applied. Never retried: the caller re-reads the machine and reconciles.
    /// </summary>
    OutcomeUnknown,
}

/// <summary>
/// A failed Vast API call. The message names the endpoint, status and the API's own message — never the
/// API key (response text is scrubbed of it).
/// </summary>
public sealed class VastApiException(VastEndpoint endpoint, VastFailure failure, int? statusCode, string message, TimeSpan? retryAfter = null)
    : Exception(message)
{
    public VastEndpoint Endpoint { get; } = endpoint;

    public VastFailure Failure { get; } = failure;

    public int? StatusCode { get; } = statusCode;

    /// <summary>For <see cref="VastFailure.RateLimited"/>: how long the endpoint is now backed off.</summary>
    public TimeSpan? RetryAfter { get; } = retryAfter;
}
