using System.Text.Json;
using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>
/// A parsed bundles query (vast-api.md §5.1): field filters with eq/neq/gt/gte/lt/lte/in/notin, order, limit,
/// type and allocated_storage. Numeric columns compare numerically even when the value is a string.
/// </summary>
internal sealed class OfferQuery
{
    /// <summary>Server-side default when allocated_storage is absent (the docs say 8 GiB; the CLI always sends 5).</summary>
    public const double DefaultAllocatedStorage = 8.0;

    private static readonly HashSet<string> ControlKeys = new(StringComparer.Ordinal)
    {
        "order", "type", "limit", "allocated_storage", "disable_bundling", "select_cols", "extra_ids", "show_incompatible",
    };

    private static readonly HashSet<string> Operators = new(StringComparer.Ordinal)
    {
        "eq", "neq", "gt", "gte", "lt", "lte", "in", "notin",
    };

    private readonly List<(string Field, string Op, JsonNode? Value)> _filters = [];
    private readonly List<(string Field, bool Descending)> _order = [];

    public SearchType Type { get; private set; } = SearchType.OnDemand;

    public int? Limit { get; private set; }

    public double AllocatedStorage { get; private set; } = DefaultAllocatedStorage;

    public static OfferQuery? Parse(JsonObject q, out string? error)
    {
        error = null;
        var query = new OfferQuery();
        foreach (var (key, value) in q)
        {
            switch (key)
            {
                case "type":
                    var type = Js.String(value)?.Trim().ToLowerInvariant();
                    switch (type)
                    {
                        case "on-demand" or "ondemand" or "on_demand":
                            query.Type = SearchType.OnDemand;
                            break;
                        case "bid" or "interruptible":
                            query.Type = SearchType.Bid;
                            break;
                        case "reserved":
                            query.Type = SearchType.Reserved;
                            break;
                        case null when value is null:
                            break;
                        default:
                            error = $"Invalid search type '{Js.ScalarText(value)}'";
                            return null;
                    }

                    break;
                case "limit":
                    if (value is null)
                    {
                        break;
                    }

                    if (!Js.TryInt(value, out var limit))
                    {
                        error = "Invalid limit";
                        return null;
                    }

                    query.Limit = Math.Max(0, limit);
                    break;
                case "allocated_storage":
                    if (value is null)
                    {
                        break;
                    }

                    if (!Js.TryNumberOrString(value, out var storage) || storage < 0)
                    {
                        error = "Invalid allocated_storage";
                        return null;
                    }

                    query.AllocatedStorage = storage;
                    break;
                case "order":
                    if (!query.ParseOrder(value, out error))
                    {
                        return null;
                    }

                    break;
                default:
                    if (ControlKeys.Contains(key))
                    {
                        break;
                    }

                    if (value is JsonObject ops)
                    {
                        foreach (var (op, operand) in ops)
                        {
                            if (!Operators.Contains(op))
                            {
                                error = $"Invalid operator '{op}' for field '{key}'";
                                return null;
                            }

                            query._filters.Add((key, op, operand));
                        }
                    }
                    else
                    {
                        // A bare value is an equality test.
                        query._filters.Add((key, "eq", value));
                    }

                    break;
            }
        }

        return query;
    }

    /// <summary>Filters, orders (stable) and limits the rows.</summary>
    public List<JsonObject> Apply(IEnumerable<JsonObject> offers)
    {
        var rows = offers.Where(Matches).ToList();
        if (_order.Count > 0)
        {
            rows = [.. rows.Select((row, index) => (Row: row, Index: index)).Order(Comparer<(JsonObject Row, int Index)>.Create(CompareRows)).Select(t => t.Row)];
        }

        if (Limit is { } limit && rows.Count > limit)
        {
            rows.RemoveRange(limit, rows.Count - limit);
        }

        return rows;
    }

    private bool ParseOrder(JsonNode? value, out string? error)
    {
        error = null;
        if (value is null)
        {
            return true;
        }

        if (value is not JsonArray items)
        {
            error = "Invalid order";
            return false;
        }

        foreach (var item in items)
        {
            switch (item)
            {
                case JsonArray pair when pair.Count >= 1 && Js.String(pair[0]) is { } field:
                    var direction = pair.Count > 1 ? Js.String(pair[1])?.ToLowerInvariant() : "asc";
                    if (direction is not ("asc" or "desc"))
                    {
                        error = $"Invalid order direction for '{field}'";
                        return false;
                    }

                    _order.Add((field, direction == "desc"));
                    break;
                case JsonValue single when Js.String(single) is { } name:
                    _order.Add((name, false));
                    break;
                default:
                    error = "Invalid order";
                    return false;
            }
        }

        return true;
    }

    private int CompareRows((JsonObject Row, int Index) a, (JsonObject Row, int Index) b)
    {
        foreach (var (field, descending) in _order)
        {
            var x = a.Row[field];
            var y = b.Row[field];
            // Nulls (and missing columns) sort last in either direction.
            var xNull = Js.Kind(x) == JsonValueKind.Null;
            var yNull = Js.Kind(y) == JsonValueKind.Null;
            if (xNull || yNull)
            {
                if (xNull != yNull)
                {
                    return xNull ? 1 : -1;
                }

                continue;
            }

            var c = CompareValues(x!, y!);
            if (c != 0)
            {
                return descending ? -c : c;
            }
        }

        return a.Index.CompareTo(b.Index);
    }

    private static int CompareValues(JsonNode x, JsonNode y)
    {
        if (Js.TryNumber(x, out var dx) && Js.TryNumber(y, out var dy))
        {
            return dx.CompareTo(dy);
        }

        if (Js.TryBool(x, out var bx) && Js.TryBool(y, out var by) && Js.Kind(x) != JsonValueKind.String)
        {
            return bx.CompareTo(by);
        }

        return string.CompareOrdinal(Js.ScalarText(x), Js.ScalarText(y));
    }

    private bool Matches(JsonObject offer)
    {
        foreach (var (field, op, operand) in _filters)
        {
            if (!offer.TryGetPropertyValue(field, out var column))
            {
                // Unknown columns do not filter (documented in README.md).
                continue;
            }

            if (!Test(field, column, op, operand))
            {
                return false;
            }
        }

        return true;
    }

    private static bool Test(string field, JsonNode? column, string op, JsonNode? operand)
    {
        if (op == "eq" && Js.String(operand) == "any")
        {
            return true;
        }

        switch (op)
        {
            case "in":
            case "notin":
                var set = operand is JsonArray array ? array.ToList() : [operand];
                var found = set.Any(v => AreEqual(field, column, v));
                return op == "in" ? found : !found;
            case "eq":
                return AreEqual(field, column, operand);
            case "neq":
                return !AreEqual(field, column, operand);
            default:
                var c = Compare(field, column, operand);
                return c is { } cmp && op switch
                {
                    "gt" => cmp > 0,
                    "gte" => cmp >= 0,
                    "lt" => cmp < 0,
                    _ => cmp <= 0,
                };
        }
    }

    private static bool AreEqual(string field, JsonNode? column, JsonNode? operand)
    {
        // Offers carry "City, CC" or "Country, CC" (or just "CC"); a search names the country code.
        if (field == "geolocation" && Js.String(column) is { } place && Js.String(operand) is { Length: > 0 } code && !code.Contains(',', StringComparison.Ordinal))
        {
            var comma = place.LastIndexOf(',');
            var country = (comma < 0 ? place : place[(comma + 1)..]).Trim();
            return string.Equals(country, code.Trim(), StringComparison.OrdinalIgnoreCase);
        }

        var columnKind = Js.Kind(column);
        var operandKind = Js.Kind(operand);
        if (columnKind == JsonValueKind.Null || operandKind == JsonValueKind.Null
            || (operandKind == JsonValueKind.String && Js.String(operand) is "null" or "None"))
        {
            return columnKind == JsonValueKind.Null && (operandKind == JsonValueKind.Null || Js.String(operand) is "null" or "None");
        }

        return Compare(field, column, operand) == 0;
    }

    /// <summary>Compares a column value with an operand by the column's type; null when they cannot be compared.</summary>
    private static int? Compare(string field, JsonNode? column, JsonNode? operand)
    {
        switch (Js.Kind(column))
        {
            case JsonValueKind.Number:
                Js.TryNumber(column, out var number);
                if (Js.TryNumberOrString(operand, out var value))
                {
                    return number.CompareTo(value);
                }

                return Js.TryBool(operand, out var asBool) ? number.CompareTo(asBool ? 1.0 : 0.0) : null;
            case JsonValueKind.True:
            case JsonValueKind.False:
                var columnBool = Js.Kind(column) == JsonValueKind.True;
                return Js.TryBool(operand, out var b) ? columnBool.CompareTo(b) : null;
            case JsonValueKind.String:
                var text = column!.GetValue<string>();
                if (field == "driver_version" && Js.TryNumberOrString(operand, out var driver)
                    && !(Js.String(operand) ?? "").Contains('.', StringComparison.Ordinal))
                {
                    // The CLI sends driver_version as a zero-padded integer (535.86.05 → 535086005).
                    return Hardware.DriverVersionNumber(text).CompareTo((long)driver);
                }

                if (Js.Kind(operand) is JsonValueKind.Null or JsonValueKind.Object or JsonValueKind.Array)
                {
                    return null;
                }

                return string.CompareOrdinal(text, Js.ScalarText(operand));
            default:
                return null;
        }
    }
}
