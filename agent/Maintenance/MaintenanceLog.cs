using Microsoft.Extensions.Logging;

namespace VastHostAgent.Maintenance;

/// <summary>Log messages of maintenance windows and the fault guard (event ids 6000-6099).</summary>
internal static partial class MaintenanceLog
{
    [LoggerMessage(6000, LogLevel.Information, "Maintenance window {Id}: {From} → {To}: {Why}")]
    public static partial void WindowTransitioned(ILogger logger, string id, string from, string to, string why);

    [LoggerMessage(6001, LogLevel.Warning, "Fault guard tripped ({Policy}): {Reason}")]
    public static partial void GuardTripped(ILogger logger, string reason, string policy);

    [LoggerMessage(6002, LogLevel.Information, "Fault guard cleared: restoring the listing")]
    public static partial void GuardCleared(ILogger logger);

    [LoggerMessage(6003, LogLevel.Information, "Asked Vast to delete expired storage contracts (Docker's disk is nearly full)")]
    public static partial void DiskCleanupRequested(ILogger logger);

    [LoggerMessage(6004, LogLevel.Information, "Maintenance {When} hook for {Id}: {Result}")]
    public static partial void HookRan(ILogger logger, string when, string id, string result);

    [LoggerMessage(6005, LogLevel.Warning, "Maintenance window {Id} deferred: {Why}")]
    public static partial void WindowDeferred(ILogger logger, string id, string why);

    [LoggerMessage(6006, LogLevel.Warning, "Fault guard holds machine {MachineId} (no trip, no clear): {Why}")]
    public static partial void GuardHolding(ILogger logger, long machineId, string why);

    [LoggerMessage(6007, LogLevel.Information, "Fault guard: machine {MachineId}'s rig health is known again")]
    public static partial void GuardHealthKnown(ILogger logger, long machineId);
}
