using Microsoft.Extensions.Logging;

namespace VastHostAgent.Containers;

/// <summary>Log messages of the containers feature (event ids 3000-3099).</summary>
internal static partial class ContainersLog
{
    [LoggerMessage(3000, LogLevel.Information, "Docker connected at {Endpoint}: engine {Version}, {Count} container(s)")]
    public static partial void Connected(ILogger logger, string endpoint, string version, int count);

    [LoggerMessage(3001, LogLevel.Warning, "Docker unavailable at {Endpoint}: {Reason}; container metrics are off (vasthost_docker_up 0), retrying in {RetryIn}")]
    public static partial void Unavailable(ILogger logger, string endpoint, string reason, TimeSpan retryIn);

    [LoggerMessage(3002, LogLevel.Warning, "Docker event stream ended ({Reason}); reconnecting")]
    public static partial void StreamEnded(ILogger logger, string reason);

    [LoggerMessage(3003, LogLevel.Warning, "Container {Name}: GPU assignment {Tokens} matches no GPU NVML reports (MIG devices and unknown forms are reported, not guessed)")]
    public static partial void UnresolvedGpus(ILogger logger, string name, string tokens);

    [LoggerMessage(3004, LogLevel.Information, "Container {Name} ({Instance}) {Action}")]
    public static partial void ContainerEvent(ILogger logger, string name, string instance, string action);
}
