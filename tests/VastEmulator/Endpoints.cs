namespace VastEmulator;

/// <summary>Endpoint names (request log, faults, rate limits), whether they mutate, and the published thresholds (vast-api.md §1.6).</summary>
public static class Endpoints
{
    public const string ShowMachines = "show_machines";
    public const string ShowMachine = "show_machine";
    public const string CreateAsks = "create_asks";
    public const string Unlist = "unlist";
    public const string MinBid = "minbid";
    public const string CreateBids = "create_bids";
    public const string RemoveDefjob = "remove_defjob";
    public const string Dnotify = "dnotify";
    public const string CancelMaint = "cancel_maint";
    public const string Maintenances = "maintenances";
    public const string Reports = "reports";
    public const string Cleanup = "cleanup";
    public const string ForceDelete = "force_delete";
    public const string Earnings = "earnings";
    public const string CurrentUser = "current_user";
    public const string Bundles = "bundles";
    public const string GpuMetrics = "gpu_metrics";
    public const string PendingPriceIncreases = "pending_price_increases";
    public const string Invoices = "invoices";
    public const string GpuNames = "gpu_names";

    /// <summary>Published x-rate-limit thresholds; endpoints absent here use <see cref="EmulatorOptions.DefaultThresholdSeconds"/>.</summary>
    public static readonly IReadOnlyDictionary<string, double> PublishedThresholds = new Dictionary<string, double>(StringComparer.Ordinal)
    {
        [Unlist] = 1.8,
        [MinBid] = 1.5,
        [CreateBids] = 2.8,
        [RemoveDefjob] = 1.2,
        [Dnotify] = 2.5,
        [Cleanup] = 8.0,
        [Reports] = 1.2,
        [Earnings] = 2.0,
        [GpuMetrics] = 3.0,
        [Invoices] = 3.0,
    };

    private static readonly HashSet<string> MutationNames = new(StringComparer.Ordinal)
    {
        CreateAsks, Unlist, MinBid, CreateBids, RemoveDefjob, Dnotify, CancelMaint, Cleanup, ForceDelete,
    };

    public static IReadOnlyList<string> Names { get; } =
    [
        ShowMachines, ShowMachine, CreateAsks, Unlist, MinBid, CreateBids, RemoveDefjob, Dnotify, CancelMaint,
        Maintenances, Reports, Cleanup, ForceDelete, Earnings, CurrentUser, Bundles, GpuMetrics, PendingPriceIncreases, Invoices, GpuNames,
    ];

    public static bool IsMutation(string? endpoint) => endpoint is not null && MutationNames.Contains(endpoint);
}
