namespace VastHostAgent.Vast;

/// <summary>The host API endpoints the agent calls.</summary>
public enum VastEndpoint
{
    ShowMachines,
    ShowMachine,
    CreateAsks,
    Unlist,
    MinBid,
    CreateBids,
    RemoveDefaultJob,
    ScheduleMaintenance,
    CancelMaintenance,
    Maintenances,
    Reports,
    Cleanup,
    Earnings,
    CurrentUser,
    Bundles,
    GpuMetrics,
}

/// <summary>Name (metric label), whether it changes state, and the published minimum spacing (vast-api.md §1.6).</summary>
public sealed record VastEndpointInfo(VastEndpoint Endpoint, string Name, bool Mutation, double? PublishedThresholdSeconds)
{
    private static readonly Dictionary<VastEndpoint, VastEndpointInfo> All = new()
    {
        [VastEndpoint.ShowMachines] = new(VastEndpoint.ShowMachines, "show_machines", false, null),
        [VastEndpoint.ShowMachine] = new(VastEndpoint.ShowMachine, "show_machine", false, null),
        [VastEndpoint.CreateAsks] = new(VastEndpoint.CreateAsks, "create_asks", true, null),
        [VastEndpoint.Unlist] = new(VastEndpoint.Unlist, "unlist", true, 1.8),
        [VastEndpoint.MinBid] = new(VastEndpoint.MinBid, "minbid", true, 1.5),
        [VastEndpoint.CreateBids] = new(VastEndpoint.CreateBids, "create_bids", true, 2.8),
        [VastEndpoint.RemoveDefaultJob] = new(VastEndpoint.RemoveDefaultJob, "remove_defjob", true, 1.2),
        [VastEndpoint.ScheduleMaintenance] = new(VastEndpoint.ScheduleMaintenance, "dnotify", true, 2.5),
        [VastEndpoint.CancelMaintenance] = new(VastEndpoint.CancelMaintenance, "cancel_maint", true, null),
        [VastEndpoint.Maintenances] = new(VastEndpoint.Maintenances, "maintenances", false, null),
        [VastEndpoint.Reports] = new(VastEndpoint.Reports, "reports", false, 1.2),
        [VastEndpoint.Cleanup] = new(VastEndpoint.Cleanup, "cleanup", true, 8.0),
        [VastEndpoint.Earnings] = new(VastEndpoint.Earnings, "earnings", false, 2.0),
        [VastEndpoint.CurrentUser] = new(VastEndpoint.CurrentUser, "current_user", false, null),
        // POST, but a search: safe to retry.
        [VastEndpoint.Bundles] = new(VastEndpoint.Bundles, "bundles", false, null),
        [VastEndpoint.GpuMetrics] = new(VastEndpoint.GpuMetrics, "gpu_metrics", false, 3.0),
    };

    public static VastEndpointInfo Of(VastEndpoint endpoint) => All[endpoint];

    public static IEnumerable<VastEndpointInfo> Catalogue => All.Values;

    /// <summary>Minimum spacing between calls: the published threshold, else the configured default, times the scale.</summary>
    public TimeSpan Spacing(VastOptions options) =>
        TimeSpan.FromSeconds((PublishedThresholdSeconds ?? options.DefaultSpacingSeconds) * options.SpacingScale);
}
