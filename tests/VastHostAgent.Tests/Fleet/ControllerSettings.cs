namespace VastHostAgent.Tests.Fleet;

/// <summary>The in-process controller the fleet tests start from: state and lock in one directory, telemetry off, management live.</summary>
internal static class ControllerSettings
{
    /// <summary>Every machine lists a 0.1 discount: <c>management.listing.discountMax</c> 0.2 makes one create_asks per machine to converge.</summary>
    public static Dictionary<string, string?> Create(string state) => new()
    {
        ["agent:role"] = "controller",
        ["agent:stateDirectory"] = state,
        ["vast:machineId"] = "0",
        ["gpu:enabled"] = "false",
        ["host:hwmon"] = "false",
        ["host:disk"] = "false",
        ["management:enabled"] = "true",
        ["management:dryRun"] = "false",
        ["management:listing:discountMax"] = "0.2",
        ["fleet:lockDirectory"] = state,
    };
}
