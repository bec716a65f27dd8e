using Microsoft.Extensions.Logging;

namespace VastHostAgent.Economics;

/// <summary>Log messages of the economics feature (event ids 8300-8399).</summary>
internal static partial class EconomicsLog
{
    [LoggerMessage(8300, LogLevel.Information, "Economics on: electricity {Price} {Currency}/kWh now ({Dollars} $/kWh, peak {Peak} $/kWh{Schedule}), zone {Zone}, overhead {Overhead} W, PUE {Pue}")]
    public static partial void Started(ILogger logger, double price, string currency, double dollars, double peak, string schedule, string zone, double overhead, double pue);

    [LoggerMessage(8301, LogLevel.Warning, "Economics: no GPU power reading yet (NVML down or not sampled): power cost, margin and break-even are absent until there is one")]
    public static partial void NoPower(ILogger logger);
}
