using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace VastHostAgent.Vast;

// Wire models of the Vast host API (vast-api.md §2, §4, §5). Every field is optional on input: unknown
// fields are ignored, missing ones stay null, numbers may arrive as strings or as floats where an
// integer is meant. Request bodies always carry every field the reference lists (nulls included).

/// <summary>A machine as GET /machines returns it (§4). Only the fields the agent uses are mapped.</summary>
public sealed record VastMachine
{
    public long? Id { get; init; }
    public long? MachineId { get; init; }
    public string? Hostname { get; init; }
    public string? Geolocation { get; init; }
    public double? Timeout { get; init; }
    public long? NumGpus { get; init; }
    public string? GpuName { get; init; }
    public double? GpuRam { get; init; }
    public bool? Listed { get; init; }
    public double? StartDate { get; init; }
    public double? EndDate { get; init; }
    public double? Duration { get; init; }
    public double? CreditDiscountMax { get; init; }
    public long? ListedMinGpuCount { get; init; }
    public double? ListedGpuCost { get; init; }
    public double? ListedStorageCost { get; init; }
    public double? ListedVolumeCost { get; init; }
    public double? VolumeTotalSize { get; init; }
    public double? ListedInetUpCost { get; init; }
    public double? ListedInetDownCost { get; init; }
    public double? MinBidPrice { get; init; }
    public string? GpuOccupancy { get; init; }
    public double? BidGpuCost { get; init; }
    public string? BidImage { get; init; }
    public JsonElement? BidImageArgs { get; init; }
    public string? BidImageArgsStr { get; init; }
    public double? DiskSpace { get; init; }
    public double? MaxDiskSpace { get; init; }
    public double? AllocDiskSpace { get; init; }
    public double? AvailDiskSpace { get; init; }
    public double? InetUp { get; init; }
    public double? InetDown { get; init; }
    public double? EarnHour { get; init; }
    public double? EarnDay { get; init; }
    public string? Verification { get; init; }
    public string? ErrorDescription { get; init; }
    public long? CurrentRentalsRunning { get; init; }
    public long? CurrentRentalsRunningOnDemand { get; init; }
    public long? CurrentRentalsResident { get; init; }
    public long? CurrentRentalsOnDemand { get; init; }
    public double? Reliability2 { get; init; }
    public string? PublicIpaddr { get; init; }
    public long? NumReports { get; init; }
    public double? NumRecentReports { get; init; }
    public double? ClientEndDate { get; init; }

    [JsonConverter(typeof(MaintenanceListConverter))]
    public IReadOnlyList<VastMaintenance>? MachineMaintenance { get; init; }

    public string? DriverVersion { get; init; }
    public double? CudaMaxGood { get; init; }

    /// <summary>The machine id (<c>id</c>, or <c>machine_id</c> when only that is present).</summary>
    [JsonIgnore]
    public long EffectiveId => Id ?? MachineId ?? 0;

    /// <summary>Online means the Vast daemon reported in: <c>timeout == 0</c>.</summary>
    [JsonIgnore]
    public bool Online => Timeout is 0;

    /// <summary>GPU counts by occupancy token: x free, D on-demand, I interruptible, R reserved (others counted as "other").</summary>
    public IReadOnlyDictionary<string, int> OccupancyCounts()
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal) { ["free"] = 0, ["on_demand"] = 0, ["interruptible"] = 0, ["reserved"] = 0 };
        foreach (var token in (GpuOccupancy ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var key = token switch
            {
                "x" => "free",
                "D" => "on_demand",
                "I" => "interruptible",
                "R" => "reserved",
                _ => "other",
            };
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }

        return counts;
    }

    /// <summary>Default-job arguments, whether the API sent an array or a string.</summary>
    public IReadOnlyList<string> DefaultJobArgs() => BidImageArgs is { ValueKind: JsonValueKind.Array } array
        ? [.. array.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString() ?? "" : e.ToString())]
        : string.IsNullOrWhiteSpace(BidImageArgsStr) ? [] : BidImageArgsStr.Split(' ', StringSplitOptions.RemoveEmptyEntries);
}

/// <summary>A scheduled maintenance window (§2.10; also embedded as <c>machine_maintenance</c>).</summary>
public sealed record VastMaintenance
{
    public long? Id { get; init; }
    public long? MachineId { get; init; }
    public double? StartTime { get; init; }
    public double? EndTime { get; init; }
    public double? DurationHours { get; init; }
    public string? MaintenanceCategory { get; init; }
    public string? MaintenanceReason { get; init; }

    /// <summary>End of the window: <c>end_time</c>, else start + duration.</summary>
    [JsonIgnore]
    public double? EffectiveEnd => EndTime ?? (StartTime is { } s && DurationHours is { } h ? s + (h * 3600) : null);
}

/// <summary>GET /machines → <c>{"machines": [...]}</c>.</summary>
public sealed record VastMachinesResponse
{
    public IReadOnlyList<VastMachine>? Machines { get; init; }
}

/// <summary>The common result of write endpoints: <c>{"success": …, "msg": …}</c> plus endpoint-specific fields.</summary>
public sealed record VastResult
{
    public bool? Success { get; init; }
    public string? Msg { get; init; }
    public string? Message { get; init; }
    public string? Error { get; init; }
    public string? Detail { get; init; }
    public long? Extended { get; init; }
    public long? NumDeleted { get; init; }
    public double? Ctime { get; init; }
    public long? MachineId { get; init; }
    public long? UserId { get; init; }

    /// <summary>An object (minbid, create_bids) or a string ("2 notifications sent" on dnotify).</summary>
    public JsonElement? YouSent { get; init; }

    [JsonIgnore]
    public string? Text => Msg ?? Message ?? Detail ?? Error;
}

/// <summary>PUT /machines/create_asks/ body (§2.3): every field is always sent; <c>min_chunk</c> is never null.</summary>
public sealed record CreateAsksRequest
{
    public required long Machine { get; init; }
    public double? PriceGpu { get; init; }
    public double? PriceDisk { get; init; }
    public double? PriceInetu { get; init; }
    public double? PriceInetd { get; init; }
    public double? PriceMinBid { get; init; }
    public int MinChunk { get; init; } = 1;
    public double? EndDate { get; init; }
    public double? CreditDiscountMax { get; init; }
    public string? Duration { get; init; }
    public long? VolSize { get; init; }
    public double? VolPrice { get; init; }
}

/// <summary>PUT /machines/{id}/minbid/ body.</summary>
public sealed record MinBidRequest(string ClientId, double Price);

/// <summary>PUT /machines/create_bids/ body (the default job).</summary>
public sealed record CreateBidsRequest(long Machine, double? PriceGpu, double? PriceInetu, double? PriceInetd, string? Image, IReadOnlyList<string>? Args);

/// <summary>PUT /machines/{id}/dnotify/ body: start as epoch seconds, duration in hours.</summary>
public sealed record ScheduleMaintenanceRequest(string ClientId, double Sdate, double Duration, string MaintenanceCategory);

/// <summary>PUT /machines/{id}/cancel_maint/ body.</summary>
public sealed record CancelMaintenanceRequest(string ClientId, long MachineId);

/// <summary>Empty JSON object body (<c>{}</c>) for DELETE and PUT calls without parameters.</summary>
public sealed record EmptyRequest;

/// <summary>A renter's report on a machine (§2.14).</summary>
public sealed record VastReport
{
    public string? Problem { get; init; }
    public string? Message { get; init; }

    [JsonConverter(typeof(FlexibleTimestampConverter))]
    public double? CreatedAt { get; init; }
}

/// <summary>GET /users/me/machine-earnings (§2.15).</summary>
public sealed record VastEarnings
{
    public VastEarningsSummary? Summary { get; init; }
    public VastBalance? Current { get; init; }
    public IReadOnlyList<VastEarningsRow>? PerMachine { get; init; }
    public IReadOnlyList<VastEarningsRow>? PerDay { get; init; }
}

public sealed record VastEarningsSummary
{
    public double? TotalGpu { get; init; }
    public double? TotalStor { get; init; }
    public double? TotalBwu { get; init; }
    public double? TotalBwd { get; init; }
}

public sealed record VastBalance
{
    public double? Balance { get; init; }
    public double? ServiceFee { get; init; }
    public double? Total { get; init; }
    public double? Credit { get; init; }
}

/// <summary>One row of per_day (<c>day</c> = days since the Unix epoch) or per_machine.</summary>
public sealed record VastEarningsRow
{
    public long? Day { get; init; }
    public long? MachineId { get; init; }
    public double? GpuEarn { get; init; }
    public double? StoEarn { get; init; }
    public double? BwuEarn { get; init; }
    public double? BwdEarn { get; init; }

    [JsonIgnore]
    public double Total => (GpuEarn ?? 0) + (StoEarn ?? 0) + (BwuEarn ?? 0) + (BwdEarn ?? 0);
}

/// <summary>GET /users/current (§2.17); the API key field is never mapped.</summary>
public sealed record VastUser
{
    public long? Id { get; init; }
    public string? Username { get; init; }
    public string? Email { get; init; }
    public double? Balance { get; init; }
    public double? Credit { get; init; }
}

/// <summary>A market offer (§5.2): the fields pricing needs.</summary>
public sealed record VastOffer
{
    public long? Id { get; init; }
    public long? MachineId { get; init; }
    public long? HostId { get; init; }
    public long? NumGpus { get; init; }
    public string? GpuName { get; init; }
    public double? GpuRam { get; init; }
    public double? DphBase { get; init; }
    public double? DphTotal { get; init; }
    public double? MinBid { get; init; }
    public string? Verification { get; init; }
    public bool? Verified { get; init; }
    public bool? Rentable { get; init; }
    public bool? Rented { get; init; }
    public double? Reliability { get; init; }
    public double? Reliability2 { get; init; }
    public double? Score { get; init; }
    public double? EndDate { get; init; }
    public double? StorageCost { get; init; }
    public double? InetUpCost { get; init; }
    public double? InetDownCost { get; init; }
    public string? PublicIpaddr { get; init; }
}

/// <summary>POST /bundles/ → <c>{"offers": [...]}</c>.</summary>
public sealed record VastOffersResponse
{
    public IReadOnlyList<VastOffer>? Offers { get; init; }
}

/// <summary>GET /metrics/gpu/current/ → per-model market figures (§2.18), prices per GPU-hour.</summary>
public sealed record VastGpuMetricsResponse
{
    public bool? Success { get; init; }
    public bool? NeedsMachine { get; init; }

    [JsonConverter(typeof(GpuMetricsListConverter))]
    public IReadOnlyList<VastGpuMetric>? Gpus { get; init; }
}

public sealed record VastGpuMetric
{
    public string? GpuName { get; init; }
    public double? Total { get; init; }
    public double? Available { get; init; }
    public double? PriceP10 { get; init; }
    public double? PriceP25 { get; init; }
    public double? PriceMedian { get; init; }
    public double? PriceP75 { get; init; }
    public double? PriceP90 { get; init; }
}

/// <summary>
/// A bundles query: filters <c>{"field": {"op": value}}</c> with ops eq neq gt gte lt lte in notin, plus
/// <c>order</c>, <c>type</c>, <c>limit</c>. Built as JSON directly (values keep their JSON types).
/// </summary>
public sealed class OfferQuery
{
    private static readonly HashSet<string> Operators = new(StringComparer.Ordinal) { "eq", "neq", "gt", "gte", "lt", "lte", "in", "notin" };
    private readonly Dictionary<string, Dictionary<string, object?>> _filters = new(StringComparer.Ordinal);
    private readonly List<(string Field, bool Descending)> _order = [];

    public string Type { get; set; } = "on-demand";
    public int? Limit { get; set; }
    public double AllocatedStorage { get; set; } = 5.0;

    public OfferQuery Where(string field, string op, object? value)
    {
        if (!Operators.Contains(op))
        {
            throw new ArgumentException($"unknown operator '{op}' (eq neq gt gte lt lte in notin)", nameof(op));
        }

        if (!_filters.TryGetValue(field, out var ops))
        {
            _filters[field] = ops = new Dictionary<string, object?>(StringComparer.Ordinal);
        }

        ops[op] = value;
        return this;
    }

    public OfferQuery OrderBy(string field, bool descending = false)
    {
        _order.Add((field, descending));
        return this;
    }

    /// <summary>The request body.</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var (field, ops) in _filters)
            {
                w.WriteStartObject(field);
                foreach (var (op, value) in ops)
                {
                    w.WritePropertyName(op);
                    WriteValue(w, value);
                }

                w.WriteEndObject();
            }

            if (_order.Count > 0)
            {
                w.WriteStartArray("order");
                foreach (var (field, descending) in _order)
                {
                    w.WriteStartArray();
                    w.WriteStringValue(field);
                    w.WriteStringValue(descending ? "desc" : "asc");
                    w.WriteEndArray();
                }

                w.WriteEndArray();
            }

            w.WriteString("type", Type);
            if (Limit is { } limit)
            {
                w.WriteNumber("limit", limit);
            }

            w.WriteNumber("allocated_storage", AllocatedStorage);
            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteValue(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null:
                w.WriteNullValue();
                break;
            case bool b:
                w.WriteBooleanValue(b);
                break;
            case string s:
                w.WriteStringValue(s);
                break;
            case int or long or short:
                w.WriteNumberValue(Convert.ToInt64(value, CultureInfo.InvariantCulture));
                break;
            case double or float or decimal:
                w.WriteNumberValue(Convert.ToDouble(value, CultureInfo.InvariantCulture));
                break;
            case System.Collections.IEnumerable list:
                w.WriteStartArray();
                foreach (var item in list)
                {
                    WriteValue(w, item);
                }

                w.WriteEndArray();
                break;
            default:
                w.WriteStringValue(Convert.ToString(value, CultureInfo.InvariantCulture));
                break;
        }
    }
}
