namespace VastEmulator;

/// <summary>One API request as the emulator saw it. Never holds an API key (the query is stored without <c>api_key</c>).</summary>
/// <param name="Time">Unix seconds from the emulator's TimeProvider.</param>
/// <param name="Method">HTTP method.</param>
/// <param name="Path">Request path, as sent.</param>
/// <param name="Query">Decoded query string without api_key.</param>
/// <param name="Endpoint">One of <see cref="Endpoints.Names"/>, or null for an unknown route.</param>
/// <param name="Status">HTTP status answered (499: the client gave up first).</param>
/// <param name="Identity">User id of the key used, or null (no or unknown key).</param>
/// <param name="Mutation">The endpoint changes state (whatever the outcome).</param>
/// <param name="Applied">The request reached the endpoint logic and changed state.</param>
/// <param name="RateLimited">Answered 429 by the rate limiter.</param>
/// <param name="Faulted">Answered by an injected fault.</param>
public sealed record RequestLogEntry(
    double Time,
    string Method,
    string Path,
    string Query,
    string? Endpoint,
    int Status,
    int? Identity,
    bool Mutation,
    bool Applied,
    bool RateLimited,
    bool Faulted);

/// <summary>
/// An injected failure: the next <paramref name="Count"/> requests to <paramref name="Endpoint"/> (or "*") fail.
/// A faulted request never reaches the endpoint logic, except with <paramref name="PassThrough"/>.
/// </summary>
/// <param name="Endpoint">Endpoint name (see <see cref="Endpoints.Names"/>) or "*".</param>
/// <param name="Status">HTTP status; default 503, or 200 when <paramref name="Malformed"/>. 429 answers like the rate limiter.</param>
/// <param name="Count">How many matching requests fail.</param>
/// <param name="DelayMs">Real-time delay before answering.</param>
/// <param name="Malformed">Answer a truncated JSON body.</param>
/// <param name="Timeout">Never answer (until the client gives up, the emulator stops, or 5 minutes pass: then 504).</param>
/// <param name="PassThrough">Only delay: after <paramref name="DelayMs"/> the request is handled normally (effect applied), even if the client has hung up meanwhile.</param>
public sealed record FaultSpec(
    string Endpoint = "*",
    int? Status = null,
    int Count = 1,
    int DelayMs = 0,
    bool Malformed = false,
    bool Timeout = false,
    bool PassThrough = false);

/// <summary>A client contract started through the admin API.</summary>
/// <param name="Type">"on-demand", "interruptible" (alias "bid") or "reserved".</param>
/// <param name="Gpus">GPUs the contract holds.</param>
/// <param name="Price">Contract price per GPU-hour (host side, $); defaults to the machine's listed price (min bid for interruptible).</param>
/// <param name="EndDate">Contract end (unix seconds); defaults to the listing end date, else now + 7 days.</param>
/// <param name="StartDate">Contract start (unix seconds, may be in the past so earnings accrue); defaults to now.</param>
/// <param name="Running">False creates a stopped (resident, not running) contract that holds no GPU.</param>
public sealed record RentalRequest(
    string Type = "on-demand",
    int Gpus = 1,
    double? Price = null,
    double? EndDate = null,
    double? StartDate = null,
    bool Running = true);

/// <summary>Thrown by admin operations on bad input; the admin API turns it into a 4xx.</summary>
public sealed class EmulatorException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

internal enum RentalType
{
    OnDemand,
    Interruptible,
    Reserved,
}

internal sealed class Account
{
    public required int UserId { get; init; }

    public required string Username { get; init; }

    public required string Email { get; init; }

    public required string Fullname { get; init; }

    public required int KeyId { get; init; }

    public double Balance { get; set; }

    public double Credit { get; set; }
}

/// <summary>Hardware of a machine (own or market).</summary>
internal sealed record Hardware
{
    public required GpuSpec Gpu { get; init; }

    public required int NumGpus { get; init; }

    public required int GpuLanes { get; init; }

    public required double DlperfFactor { get; init; }

    public required string CpuName { get; init; }

    public required int CpuCores { get; init; }

    public required double CpuGhz { get; init; }

    public required int CpuRamMb { get; init; }

    public required string MoboName { get; init; }

    public required string DiskName { get; init; }

    public required double DiskBw { get; init; }

    public required int MaxDiskSpace { get; init; }

    public required double InetUp { get; init; }

    public required double InetDown { get; init; }

    public required string DriverVersion { get; init; }

    public required double CudaMaxGood { get; init; }

    public required string UbuntuVersion { get; init; }

    public required int DirectPortCount { get; init; }

    public required string PublicIp { get; init; }

    public required string Geolocation { get; init; }

    public required long Geolocode { get; init; }

    public required int HostingType { get; init; }

    public required bool StaticIp { get; init; }

    public required bool VmsEnabled { get; init; }

    public string CpuArch => "amd64";

    public double TotalFlops => Math.Round(Gpu.TflopsPerGpu * NumGpus, 2);

    public double DlperfPerGpu => Math.Round(Gpu.DlperfPerGpu * DlperfFactor, 3);

    /// <summary>Driver version as the zero-padded integer the CLI sends in filters (535.86.05 → 535086005).</summary>
    public long DriverVers => DriverVersionNumber(DriverVersion);

    public static long DriverVersionNumber(string version)
    {
        long result = 0;
        foreach (var part in version.Trim().Split('.'))
        {
            result = result * 1000 + (long.TryParse(part, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : 0);
        }

        return result;
    }
}

internal readonly record struct Segment(double From, double? To);

internal sealed class Rental
{
    public required int Id { get; init; }

    public required int MachineId { get; init; }

    public required RentalType Type { get; init; }

    public required int Gpus { get; init; }

    public List<int> GpuIndexes { get; } = [];

    public required double Price { get; set; }

    public required double DiskPrice { get; set; }

    public required double InetUpPrice { get; set; }

    public required double InetDownPrice { get; set; }

    public required double StartDate { get; init; }

    public required double EndDate { get; set; }

    public double? EndedAt { get; set; }

    public List<Segment> RunningSegments { get; } = [];

    /// <summary>Stopped because an on-demand contract took its GPUs; resumes when enough GPUs are free again.</summary>
    public bool Preempted { get; set; }

    public bool Active => EndedAt is null;

    public bool Running => Active && RunningSegments.Count > 0 && RunningSegments[^1].To is null;

    public bool IsOnDemandLike => Type is RentalType.OnDemand or RentalType.Reserved;

    public static string WireName(RentalType type) => type switch
    {
        RentalType.OnDemand => "on-demand",
        RentalType.Interruptible => "interruptible",
        _ => "reserved",
    };

    public void Stop(double now)
    {
        if (RunningSegments.Count > 0 && RunningSegments[^1].To is null)
        {
            RunningSegments[^1] = RunningSegments[^1] with { To = now };
        }

        GpuIndexes.Clear();
    }
}

internal sealed class MaintenanceWindow
{
    public required int Id { get; init; }

    public required int MachineId { get; init; }

    public required double StartTime { get; init; }

    public required double DurationHours { get; init; }

    public required string Category { get; init; }

    public double EndTime => StartTime + DurationHours * 3600.0;
}

internal sealed record RenterReport(string Problem, string Message, double CreatedAt);

internal sealed record DayEarnings(long Day, double Gpu, double Storage, double BandwidthUp, double BandwidthDown);

internal sealed class PendingPriceIncrease
{
    public required int Id { get; init; }

    public required int ContractId { get; init; }

    public required int MachineId { get; init; }

    public required int HostId { get; init; }

    public required double NewGpu { get; set; }

    public required double OldGpu { get; init; }

    public required double NewDisk { get; set; }

    public required double OldDisk { get; init; }

    public required double NewBwu { get; set; }

    public required double OldBwu { get; init; }

    public required double NewBwd { get; set; }

    public required double OldBwd { get; init; }

    public required double ContractEndDate { get; init; }

    public required double? AskEndDate { get; set; }

    public required double CreatedAt { get; set; }
}

/// <summary>An own machine (of the primary or the other account): the full §4 object is rendered from this.</summary>
internal sealed class MachineRecord
{
    public required int Id { get; init; }

    public required int OwnerId { get; init; }

    public required string Hostname { get; init; }

    public required Hardware Hw { get; init; }

    public required double Reliability2 { get; set; }

    public string Verification { get; set; } = "verified";

    public double? OfflineSince { get; set; }

    // Listing (create_asks, vast-api.md §2.3).
    public bool Listed { get; set; }

    public double? StartDate { get; set; }

    public double? EndDate { get; set; }

    public double? DurationSeconds { get; set; }

    public double? DurationSetAt { get; set; }

    public double? CreditDiscountMax { get; set; }

    public int? ListedMinGpuCount { get; set; }

    public double? ListedGpuCost { get; set; }

    public double? ListedStorageCost { get; set; }

    public double? ListedVolumeCost { get; set; }

    public int? VolumeTotalSize { get; set; }

    public double? ListedInetUpCost { get; set; }

    public double? ListedInetDownCost { get; set; }

    public double MinBidPrice { get; set; }

    /// <summary>Offer (ask) id per GPU chunk size while listed.</summary>
    public SortedDictionary<int, int> OfferIds { get; } = [];

    // Default job (create_bids, vast-api.md §2.6).
    public double? BidGpuCost { get; set; }

    public string? BidImage { get; set; }

    public List<string>? BidImageArgs { get; set; }

    public double? BidInetUpCost { get; set; }

    public double? BidInetDownCost { get; set; }

    public List<MaintenanceWindow> Maintenance { get; } = [];

    public List<Rental> Rentals { get; } = [];

    public List<RenterReport> Reports { get; } = [];

    public int ExpiredStorageContracts { get; set; }

    public List<DayEarnings> History { get; } = [];

    public IEnumerable<Rental> ActiveRentals => Rentals.Where(r => r.Active);
}

/// <summary>A machine of another host in the market: static apart from the emulator clock.</summary>
internal sealed class MarketMachine
{
    public required int Id { get; init; }

    public required int HostId { get; init; }

    public required Hardware Hw { get; init; }

    /// <summary>Renter price per GPU-hour (dph_base / num_gpus).</summary>
    public required double PricePerGpu { get; init; }

    public required double MinBidPerGpu { get; init; }

    public required double StorageCost { get; init; }

    public required double InetUpCost { get; init; }

    public required double InetDownCost { get; init; }

    public required double CreditDiscountMax { get; init; }

    public required double StartDate { get; init; }

    public required double EndDate { get; init; }

    public required string Verification { get; init; }

    public required double Reliability { get; init; }

    public required int RentedGpus { get; init; }

    public required double Usage30d { get; init; }

    /// <summary>Chunk size → offer id; and chunk size → score factor of a duplicate row (absent = no duplicate).</summary>
    public SortedDictionary<int, int> OfferIds { get; } = [];

    public Dictionary<int, double> DuplicateScoreFactor { get; } = [];
}
