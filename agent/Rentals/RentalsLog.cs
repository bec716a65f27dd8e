using Microsoft.Extensions.Logging;

namespace VastHostAgent.Rentals;

/// <summary>Log messages of the rental ledger (event ids 3100-3149).</summary>
internal static partial class RentalsLog
{
    [LoggerMessage(3100, LogLevel.Information, "Rental ledger {Path}: {Runs} run(s), {Running} open; replaying Docker events since {Since}")]
    public static partial void Loaded(ILogger logger, string path, int runs, int running, string since);

    [LoggerMessage(3101, LogLevel.Warning, "Rental ledger: {Count} damaged line(s) skipped (first: {Problem})")]
    public static partial void Damaged(ILogger logger, int count, string problem);

    [LoggerMessage(3102, LogLevel.Warning, "Rental ledger: cannot append to {Path} ({Reason}); {Pending} record(s) kept to write again")]
    public static partial void WriteFailed(ILogger logger, string path, string reason, int pending);

    [LoggerMessage(3103, LogLevel.Information, "Rental {Run} (instance {Instance}) {What}")]
    public static partial void Run(ILogger logger, string run, long instance, string what);

    [LoggerMessage(3104, LogLevel.Warning, "Rental ledger: Docker's events since {Since} could not be read ({Reason}); runs that came and went while the agent was away are not recovered")]
    public static partial void ReplayFailed(ILogger logger, string since, string reason);

    [LoggerMessage(3106, LogLevel.Error, "Rental ledger {Path} cannot be read ({Reason}): starting from an empty ledger (runs it holds are not continued)")]
    public static partial void Unreadable(ILogger logger, string path, string reason);

    [LoggerMessage(3105, LogLevel.Information, "Rental ledger: appends work again ({Path})")]
    public static partial void WriteRecovered(ILogger logger, string path);
}
