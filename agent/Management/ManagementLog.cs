using Microsoft.Extensions.Logging;

namespace VastHostAgent.Management;

/// <summary>Log messages of the management feature (event ids 5000-5099).</summary>
internal static partial class ManagementLog
{
    [LoggerMessage(5000, LogLevel.Warning, "DRY RUN: management decides and journals every change but makes none on Vast (management.dryRun=true). Review `vast-host-agent plan`, then set management.dryRun=false.")]
    public static partial void DryRunMode(ILogger logger);

    [LoggerMessage(5001, LogLevel.Information, "Management live: reconciling the listing every {Interval} (±{Jitter:P0}); journal {Journal}")]
    public static partial void Live(ILogger logger, TimeSpan interval, double jitter, string journal);

    [LoggerMessage(5002, LogLevel.Information, "DRY RUN: would call {Mutation}")]
    public static partial void DryRunWouldCall(ILogger logger, string mutation);

    [LoggerMessage(5003, LogLevel.Information, "Applied {Mutation}")]
    public static partial void Applied(ILogger logger, string mutation);

    [LoggerMessage(5004, LogLevel.Warning, "{Endpoint} failed: {Problem}; nothing is resent: the next reconcile re-reads the machine")]
    public static partial void MutationFailed(ILogger logger, string endpoint, string problem);

    [LoggerMessage(5005, LogLevel.Warning, "Cannot reconcile: {Problem}")]
    public static partial void CannotReconcile(ILogger logger, string problem);

    [LoggerMessage(5006, LogLevel.Warning, "A {Endpoint} ({Summary}) sent at {At} got no answer before the agent stopped; it is treated as an unknown outcome (no change until a later read shows what Vast did)")]
    public static partial void ResumingAfterInterruptedMutation(ILogger logger, string endpoint, string summary, DateTimeOffset at);

    [LoggerMessage(5008, LogLevel.Information, "Stopping: the reconcile in flight may finish for up to {Grace} (a change on Vast is not cut off mid-call)")]
    public static partial void StoppingDuringReconcile(ILogger logger, TimeSpan grace);

    [LoggerMessage(5009, LogLevel.Warning, "{Endpoint}: outcome unknown ({Problem}); no further change to the machine before a read at or after {Until} shows what Vast did")]
    public static partial void OutcomeUnknown(ILogger logger, string endpoint, string problem, DateTimeOffset until);

    [LoggerMessage(5010, LogLevel.Warning, "State recovered from Vast after an unusable state file: {What}; no change is made to the machine this cycle")]
    public static partial void StateRecovered(ILogger logger, string what);
}
