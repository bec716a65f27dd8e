using Microsoft.Extensions.Logging;

namespace VastHostAgent.Fleet;

/// <summary>Log messages of the controller's rig health reads from Prometheus (event ids 8100-8149). Each is a change of state, logged once.</summary>
internal static partial class PrometheusLog
{
    [LoggerMessage(8100, LogLevel.Warning, "Rig health from Prometheus unavailable (the fault guard holds): {Problem}")]
    public static partial void Unavailable(ILogger logger, string problem);

    [LoggerMessage(8101, LogLevel.Information, "Rig health from Prometheus at {Url} available again ({Rigs} rigs)")]
    public static partial void Available(ILogger logger, string url, int rigs);

    [LoggerMessage(8102, LogLevel.Warning, "Rig data in Prometheus is stale for {Rigs} (the fault guard holds for them): {Problem}")]
    public static partial void Stale(ILogger logger, string rigs, string problem);

    [LoggerMessage(8103, LogLevel.Information, "Rig data in Prometheus is fresh again for {Rigs}")]
    public static partial void Fresh(ILogger logger, string rigs);
}
