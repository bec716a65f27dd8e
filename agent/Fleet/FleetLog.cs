using Microsoft.Extensions.Logging;

namespace VastHostAgent.Fleet;

/// <summary>Log messages of the fleet controller (event ids 8000-8099; the Prometheus reader has 8100-8149).</summary>
internal static partial class FleetLog
{
    [LoggerMessage(8000, LogLevel.Warning, "Cannot read the account's machines: {Problem}")]
    public static partial void CannotReadMachines(ILogger logger, string problem);

    [LoggerMessage(8001, LogLevel.Warning, "Fleet selection: {Problem}")]
    public static partial void SelectionProblem(ILogger logger, string problem);

    [LoggerMessage(8002, LogLevel.Warning, "Vast asked the controller to slow down at machine {MachineId}: the rest of this cycle waits {BackOff}")]
    public static partial void CycleCutShort(ILogger logger, long machineId, TimeSpan backOff);

    [LoggerMessage(8003, LogLevel.Information, "Controller for {Managed} managed machine(s) of {Total} (the rest read-only); state under {Directory}")]
    public static partial void Started(ILogger logger, int managed, int total, string directory);
}
