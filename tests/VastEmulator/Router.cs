using System.Globalization;

namespace VastEmulator;

/// <summary>A recognised API route: endpoint name, allowed methods, and the path parameters.</summary>
internal sealed record RouteMatch(string Endpoint, IReadOnlyList<string> Methods, int? MachineId = null, string? UserSegment = null)
{
    /// <summary>Offer search works without a key (a bad key is still refused).</summary>
    public bool AllowsAnonymous => Endpoint is Endpoints.Bundles or Endpoints.GpuNames;

    /// <summary>Documented 404 {"success":false,"error":"auth_error","msg":"Invalid user key"} instead of 401 (vast-api.md §1.2).</summary>
    public bool BadKeyIsNotFound => Endpoint is Endpoints.Bundles or Endpoints.Invoices;
}

/// <summary>Path → endpoint, with and without trailing slash (vast-api.md §1.1).</summary>
internal static class Router
{
    private static readonly string[] Get = ["GET"];
    private static readonly string[] Put = ["PUT"];
    private static readonly string[] Post = ["POST"];
    private static readonly string[] Delete = ["DELETE"];

    public static RouteMatch? Match(string path)
    {
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length < 3 || segments[0] != "api")
        {
            return null;
        }

        if (segments[1] == "v1")
        {
            return segments is [_, _, "invoices"] ? new RouteMatch(Endpoints.Invoices, Get) : null;
        }

        if (segments[1] != "v0")
        {
            return null;
        }

        return segments[2..] switch
        {
            ["machines"] => new RouteMatch(Endpoints.ShowMachines, Get),
            ["machines", "create_asks"] => new RouteMatch(Endpoints.CreateAsks, Put),
            ["machines", "create_bids"] => new RouteMatch(Endpoints.CreateBids, Put),
            ["machines", "maintenances"] => new RouteMatch(Endpoints.Maintenances, Get),
            ["machines", var id] when TryId(id, out var machine) => new RouteMatch(Endpoints.ShowMachine, Get, machine),
            ["machines", var id, var action] when TryId(id, out var machine) => action switch
            {
                "asks" => new RouteMatch(Endpoints.Unlist, Delete, machine),
                "minbid" => new RouteMatch(Endpoints.MinBid, Put, machine),
                "defjob" => new RouteMatch(Endpoints.RemoveDefjob, Delete, machine),
                "dnotify" => new RouteMatch(Endpoints.Dnotify, Put, machine),
                "cancel_maint" => new RouteMatch(Endpoints.CancelMaint, Put, machine),
                "reports" => new RouteMatch(Endpoints.Reports, Get, machine),
                "cleanup" => new RouteMatch(Endpoints.Cleanup, Put, machine),
                "force_delete" => new RouteMatch(Endpoints.ForceDelete, Post, machine),
                _ => null,
            },
            ["users", var user] => new RouteMatch(Endpoints.CurrentUser, Get, UserSegment: user),
            ["users", var user, "machine-earnings"] => new RouteMatch(Endpoints.Earnings, Get, UserSegment: user),
            ["bundles"] => new RouteMatch(Endpoints.Bundles, ["GET", "POST"]),
            ["search", "asks"] => new RouteMatch(Endpoints.Bundles, ["GET", "PUT"]),
            ["metrics", "gpu", "current"] => new RouteMatch(Endpoints.GpuMetrics, Get),
            ["gpu_names", "unique"] => new RouteMatch(Endpoints.GpuNames, Get),
            ["instances", "pending-price-increases"] => new RouteMatch(Endpoints.PendingPriceIncreases, Get),
            _ => null,
        };
    }

    private static bool TryId(string segment, out int id) =>
        int.TryParse(segment, NumberStyles.None, CultureInfo.InvariantCulture, out id) && id > 0;
}
