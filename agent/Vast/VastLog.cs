using Microsoft.Extensions.Logging;

namespace VastHostAgent.Vast;

/// <summary>Log messages of the Vast API feature (event ids 4000-4099). None of them can carry the API key.</summary>
internal static partial class VastLog
{
    [LoggerMessage(4000, LogLevel.Warning, "Vast API {Endpoint}: 429 too many requests; backing off this endpoint for {Backoff}")]
    public static partial void RateLimited(ILogger logger, string endpoint, TimeSpan backoff);

    [LoggerMessage(4001, LogLevel.Warning, "Vast API circuit breaker opened after repeated failures; calls pause for {Duration}")]
    public static partial void CircuitOpened(ILogger logger, TimeSpan duration);

    [LoggerMessage(4002, LogLevel.Information, "Vast API circuit breaker closed: calls resume")]
    public static partial void CircuitClosed(ILogger logger);

    [LoggerMessage(4003, LogLevel.Information, "Vast machine {MachineId} ({Hostname}) identified {How}")]
    public static partial void MachineIdentified(ILogger logger, long machineId, string hostname, string how);

    [LoggerMessage(4004, LogLevel.Error, "Vast machine not identified: {Problem}. No listing change will be made until this is fixed.")]
    public static partial void MachineNotIdentified(ILogger logger, string problem);

    [LoggerMessage(4005, LogLevel.Warning, "Vast API poll failed: {Problem}")]
    public static partial void PollFailed(ILogger logger, string problem);

    [LoggerMessage(4006, LogLevel.Information, "Vast API poll recovered")]
    public static partial void PollRecovered(ILogger logger);

    [LoggerMessage(4007, LogLevel.Debug, "Vast API {Endpoint} retry {Attempt} after {Outcome}")]
    public static partial void Retrying(ILogger logger, string endpoint, int attempt, string outcome);

    [LoggerMessage(4008, LogLevel.Information, "Vast API circuit breaker half-open: one probe call goes out; other calls stay paused until it answers")]
    public static partial void CircuitHalfOpen(ILogger logger);
}
