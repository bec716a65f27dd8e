using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>An authenticated (or, for bundles, anonymous) API call that passed faults and rate limits.</summary>
internal sealed record ApiRequest(int? CallerId, int? MachineId, string? UserSegment, IReadOnlyDictionary<string, string> Query, JsonNode? Body)
{
    /// <summary>The key the caller authenticated with (the user object echoes it as <c>api_key</c>).</summary>
    public string? Key { get; init; }
}

/// <summary>Status and JSON body of an answer; Applied = the call changed state.</summary>
internal sealed record ApiResult(int Status, JsonNode? Body, bool Applied = false);

/// <summary>
/// The endpoint logic (vast-api.md §2), one method per endpoint, all under the state lock: the dispatch and the
/// request parsing here; the endpoints by group in EmulatorState.Api.Machines, .Maintenance, .Account and .Market.
/// </summary>
public sealed partial class EmulatorState
{
    private const string NoSuchMachine = "No such machine id";
    private const double Epsilon = 1e-12;

    private static readonly HashSet<string> MaintenanceCategories = new(StringComparer.Ordinal)
    {
        "power", "internet", "disk", "gpu", "software", "other", "not provided",
    };

    internal ApiResult Execute(string endpoint, ApiRequest request)
    {
        lock (_gate)
        {
            var now = Now;
            RefreshLocked(now);
            if (endpoint == Endpoints.GpuNames)
            {
                return new ApiResult(200, GpuNamesLocked()); // public: with or without a key
            }

            if (request.CallerId is not { } caller)
            {
                return endpoint == Endpoints.Bundles ? BundlesLocked(request, now) : new ApiResult(403, LoginRequired());
            }

            if (request.UserSegment is { } segment && !IsCaller(segment, caller))
            {
                return new ApiResult(403, Error("not_authorized", "You can only access your own account"));
            }

            var id = request.MachineId ?? 0;
            var body = request.Body as JsonObject ?? [];
            return endpoint switch
            {
                Endpoints.ShowMachines => ShowMachinesLocked(caller, now),
                Endpoints.ShowMachine => ShowMachineLocked(caller, id, now),
                Endpoints.CreateAsks => CreateAsksLocked(caller, body, now),
                Endpoints.Unlist => UnlistLocked(caller, id),
                Endpoints.MinBid => MinBidLocked(caller, id, body),
                Endpoints.CreateBids => CreateBidsLocked(caller, body),
                Endpoints.RemoveDefjob => RemoveDefjobLocked(caller, id),
                Endpoints.Dnotify => DnotifyLocked(caller, id, body, now),
                Endpoints.CancelMaint => CancelMaintLocked(caller, id, now),
                Endpoints.Maintenances => MaintenancesLocked(caller, request.Query),
                Endpoints.Reports => ReportsLocked(caller, id),
                Endpoints.Cleanup => CleanupLocked(caller, id, now),
                Endpoints.ForceDelete => ForceDeleteLocked(caller, id),
                Endpoints.Earnings => EarningsLocked(caller, request.Query, now),
                Endpoints.CurrentUser => new ApiResult(200, RenderUser(_accounts.First(a => a.UserId == caller), request.Key)),
                Endpoints.Bundles => BundlesLocked(request, now),
                Endpoints.GpuMetrics => GpuMetricsLocked(caller, request.Query, now),
                Endpoints.PendingPriceIncreases => PendingLocked(caller),
                Endpoints.Invoices => InvoicesLocked(caller, request.Query, now),
                _ => new ApiResult(404, Error("not_found", "Unknown endpoint")),
            };
        }
    }

    internal static JsonObject LoginRequired() => Error("auth_error", "This action requires login.");

    internal static JsonObject Error(string error, string msg) => new() { ["success"] = false, ["error"] = error, ["msg"] = msg };

    private static bool IsCaller(string segment, int caller) =>
        segment is "me" or "current" or "0" || segment == caller.ToString(CultureInfo.InvariantCulture);

    private static JsonObject NotFound(int id, int caller) => new()
    {
        ["success"] = false,
        ["error"] = "not_found",
        ["msg"] = NoSuchMachine,
        ["machine_id"] = id,
        ["user_id"] = caller,
    };

    private MachineRecord? OwnedLocked(int id, int caller) =>
        _machines.TryGetValue(id, out var m) && m.OwnerId == caller ? m : null;

    // ---------------------------------------------------------------- parsing helpers

    /// <summary>Absent or null → null (true); a number or numeric string → value (true); anything else → false.</summary>
    private static bool OptionalNumber(JsonObject body, string key, out double? value)
    {
        value = null;
        if (!body.TryGetPropertyValue(key, out var node) || node is null)
        {
            return true;
        }

        if (!Js.TryNumberOrString(node, out var number))
        {
            return false;
        }

        value = number;
        return true;
    }

    /// <summary>duration: "n days|weeks|months|years" or total seconds (number or string).</summary>
    private static bool OptionalDuration(JsonObject body, out double? seconds)
    {
        seconds = null;
        if (!body.TryGetPropertyValue("duration", out var node) || node is null)
        {
            return true;
        }

        if (Js.TryNumberOrString(node, out var total))
        {
            seconds = total;
            return true;
        }

        var parts = (Js.String(node) ?? "").Trim().ToLowerInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 2 || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var n))
        {
            return false;
        }

        double? unit = parts[1].TrimEnd('s') switch
        {
            "second" => 1,
            "minute" => 60,
            "hour" => 3600,
            "day" => 86400,
            "week" => 7 * 86400,
            "month" => 30 * 86400,
            "year" => 365 * 86400,
            _ => null,
        };
        if (unit is null)
        {
            return false;
        }

        seconds = n * unit.Value;
        return true;
    }

    private static bool TryEpoch(JsonNode? node, out double epoch)
    {
        if (Js.TryNumberOrString(node, out epoch))
        {
            return epoch > 0;
        }

        if (Js.String(node) is { } text
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var date))
        {
            epoch = date.ToUnixTimeMilliseconds() / 1000.0;
            return true;
        }

        return false;
    }

    private static bool TryIdList(string raw, out HashSet<int> ids)
    {
        ids = [];
        var node = Js.ParseQueryValue(raw);
        IEnumerable<JsonNode?> items = node switch
        {
            JsonArray array => array,
            JsonValue value when Js.TryInt(value, out _) => [value],
            _ => raw.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => (JsonNode?)JsonValue.Create(s)),
        };
        foreach (var item in items)
        {
            if (!Js.TryInt(item, out var id))
            {
                return false;
            }

            ids.Add(id);
        }

        return true;
    }

    private static bool QueryNumber(IReadOnlyDictionary<string, string> query, string key, out double? value)
    {
        value = null;
        if (!query.TryGetValue(key, out var raw) || raw.Length == 0)
        {
            return true;
        }

        var node = Js.ParseQueryValue(raw);
        if (Js.Kind(node) == JsonValueKind.Null)
        {
            return true;
        }

        if (!Js.TryNumberOrString(node, out var number))
        {
            return false;
        }

        value = number;
        return true;
    }
}
