using System.Globalization;
using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>
/// The whole emulated world: accounts, own machines (listing, default job, maintenance, contracts, reports, earnings),
/// the market of other hosts, pending price increases, rate limiter, faults and the request log.
/// Thread-safe: every member takes one lock. The admin API (/_emulator/...) is a thin HTTP layer over these methods.
/// </summary>
public sealed partial class EmulatorState
{
    private const int FirstRentalId = 18_400_001;
    private const int FirstOwnOfferId = 30_000_001;
    private const int FirstMaintenanceId = 9101;
    private const int FirstPendingId = 501;

    /// <summary>The request log keeps the newest entries only (a standalone emulator may run for days).</summary>
    private const int MaxLoggedRequests = 100_000;

    private readonly Lock _gate = new();
    private readonly EmulatorOptions _options;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, Account> _keys = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _keyIdentities = new(StringComparer.Ordinal);
    private readonly List<Account> _accounts = [];
    private readonly SortedDictionary<int, MachineRecord> _machines = [];
    private readonly HashSet<int> _offerIds = [];
    private readonly List<RequestLogEntry> _requests = [];
    private readonly List<ActiveFault> _faults = [];
    private readonly Dictionary<(string Endpoint, string Identity), DateTimeOffset> _lastCall = [];
    private readonly List<PendingPriceIncrease> _pending = [];
    private List<MarketMachine> _market = [];
    private Random _runtimeRandom = new(0);
    private int _nextRentalId;
    private int _nextOfferId;
    private int _nextMaintenanceId;
    private int _nextPendingId;
    private long _tooFrequentCount;
    private bool _rateLimitsEnabled;
    private double _rateLimitScale;

    public EmulatorState(EmulatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ApiKeys.Count == 0 || options.ApiKeys.Any(string.IsNullOrWhiteSpace) || string.IsNullOrWhiteSpace(options.OtherApiKey)
            || options.ApiKeys.Contains(options.OtherApiKey) || options.NumGpus is < 1 or > 16 || options.OfferCount < 0
            || options.UserId == options.OtherUserId || options.DuplicateOfferFraction is < 0 or > 1 || options.RateLimitScale < 0)
        {
            throw new ArgumentException("invalid emulator options: need at least one API key distinct from OtherApiKey, distinct user ids, "
                + "1..16 GPUs, OfferCount >= 0, DuplicateOfferFraction in [0, 1] and RateLimitScale >= 0", nameof(options));
        }

        _options = options;
        _time = options.TimeProvider;
        lock (_gate)
        {
            SeedLocked();
        }
    }

    /// <summary>The primary account (the one whose keys are <see cref="EmulatorOptions.ApiKeys"/>).</summary>
    public int PrimaryUserId => _options.UserId;

    public int OtherUserId => _options.OtherUserId;

    public string PrimaryApiKey => _options.ApiKeys[0];

    public string OtherApiKey => _options.OtherApiKey;

    /// <summary>Machine ids of the primary account, ascending.</summary>
    public IReadOnlyList<int> OwnMachineIds
    {
        get
        {
            lock (_gate)
            {
                return [.. _machines.Values.Where(m => m.OwnerId == _options.UserId).Select(m => m.Id)];
            }
        }
    }

    /// <summary>The machine of the other account (403/not_authorized tests); 0 once deleted.</summary>
    public int OtherMachineId
    {
        get
        {
            lock (_gate)
            {
                return _machines.Values.FirstOrDefault(m => m.OwnerId == _options.OtherUserId)?.Id ?? 0;
            }
        }
    }

    /// <summary>Now, as unix seconds, from the configured TimeProvider.</summary>
    public double Now => _time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;

    /// <summary>Today's day number (floor(unix / 86400)), the unit of earnings per_day.</summary>
    public long Today => (long)Math.Floor(Now / 86400.0);

    // ---------------------------------------------------------------- request log

    public IReadOnlyList<RequestLogEntry> Requests
    {
        get
        {
            lock (_gate)
            {
                return [.. _requests];
            }
        }
    }

    public void ClearRequests()
    {
        lock (_gate)
        {
            _requests.Clear();
        }
    }

    public JsonArray RequestsJson()
    {
        lock (_gate)
        {
            return [.. _requests.Select(r => (JsonNode)new JsonObject
            {
                ["time"] = r.Time,
                ["method"] = r.Method,
                ["path"] = r.Path,
                ["query"] = r.Query,
                ["endpoint"] = r.Endpoint,
                ["status"] = r.Status,
                ["identity"] = r.Identity,
                ["mutation"] = r.Mutation,
                ["applied"] = r.Applied,
                ["rateLimited"] = r.RateLimited,
                ["faulted"] = r.Faulted,
            })];
        }
    }

    internal void Record(RequestLogEntry entry)
    {
        lock (_gate)
        {
            if (_requests.Count >= MaxLoggedRequests)
            {
                _requests.RemoveRange(0, MaxLoggedRequests / 10);
            }

            _requests.Add(entry);
        }
    }

    // ---------------------------------------------------------------- faults

    public void AddFault(FaultSpec fault)
    {
        ArgumentNullException.ThrowIfNull(fault);
        if (fault.Endpoint != "*" && !Endpoints.Names.Contains(fault.Endpoint))
        {
            throw new EmulatorException(400, $"unknown endpoint '{fault.Endpoint}' (use one of {string.Join(", ", Endpoints.Names)} or *)");
        }

        if (fault.Count < 1 || fault.DelayMs < 0 || fault.Status is < 100 or > 599)
        {
            throw new EmulatorException(400, "count must be >= 1, delayMs >= 0 and status a valid HTTP status");
        }

        lock (_gate)
        {
            _faults.Add(new ActiveFault { Spec = fault, Remaining = fault.Count });
        }
    }

    public void ClearFaults()
    {
        lock (_gate)
        {
            _faults.Clear();
        }
    }

    /// <summary>Faults still armed, with their remaining counts.</summary>
    public IReadOnlyList<FaultSpec> Faults
    {
        get
        {
            lock (_gate)
            {
                return [.. _faults.Select(f => f.Spec with { Count = f.Remaining })];
            }
        }
    }

    internal FaultSpec? TakeFault(string endpoint)
    {
        lock (_gate)
        {
            var fault = _faults.FirstOrDefault(f => f.Spec.Endpoint == "*" || f.Spec.Endpoint == endpoint);
            if (fault is null)
            {
                return null;
            }

            if (--fault.Remaining <= 0)
            {
                _faults.Remove(fault);
            }

            return fault.Spec;
        }
    }

    internal bool RollBundlesFailure(out int status)
    {
        lock (_gate)
        {
            status = 0;
            if (_options.BundlesFailureRate <= 0 || _runtimeRandom.NextDouble() >= _options.BundlesFailureRate)
            {
                return false;
            }

            status = _runtimeRandom.NextDouble() < 0.5 ? 502 : 503;
            return true;
        }
    }

    // ---------------------------------------------------------------- rate limits

    public void SetRateLimits(bool enabled, double? scale = null)
    {
        if (scale is < 0 or double.NaN)
        {
            throw new EmulatorException(400, "scale must be >= 0");
        }

        lock (_gate)
        {
            _rateLimitsEnabled = enabled;
            _rateLimitScale = scale ?? _rateLimitScale;
            _lastCall.Clear();
        }
    }

    public bool RateLimitsEnabled
    {
        get
        {
            lock (_gate)
            {
                return _rateLimitsEnabled;
            }
        }
    }

    public double RateLimitScale
    {
        get
        {
            lock (_gate)
            {
                return _rateLimitScale;
            }
        }
    }

    /// <summary>Effective minimum interval (seconds) of an endpoint: published threshold or the default, times the scale.</summary>
    public double ThresholdSeconds(string endpoint)
    {
        lock (_gate)
        {
            return ThresholdLocked(endpoint);
        }
    }

    private double ThresholdLocked(string endpoint) =>
        Js.Round((Endpoints.PublishedThresholds.TryGetValue(endpoint, out var t) ? t : _options.DefaultThresholdSeconds) * _rateLimitScale, 6);

    /// <summary>
    /// Minimum interval between accepted calls per endpoint and identity. A refused call does not move the window.
    /// Returns null when allowed, else (threshold, json-body?) alternating deterministically.
    /// </summary>
    internal (double Threshold, bool Json)? CheckRate(string endpoint, string identity)
    {
        lock (_gate)
        {
            if (!_rateLimitsEnabled)
            {
                return null;
            }

            var threshold = ThresholdLocked(endpoint);
            var now = _time.GetUtcNow();
            // Compared in ticks: unix-second doubles lose the sub-millisecond precision a 0.08 s threshold needs.
            if (_lastCall.TryGetValue((endpoint, identity), out var last) && (now - last).Ticks < (long)Math.Round(threshold * TimeSpan.TicksPerSecond))
            {
                return (threshold, NextTooFrequentIsJsonLocked());
            }

            _lastCall[(endpoint, identity)] = now;
            return null;
        }
    }

    internal (double Threshold, bool Json) TooFrequentShape(string endpoint)
    {
        lock (_gate)
        {
            return (ThresholdLocked(endpoint), NextTooFrequentIsJsonLocked());
        }
    }

    private bool NextTooFrequentIsJsonLocked() => ((_options.Seed & 1) + _tooFrequentCount++) % 2 == 1;

    // ---------------------------------------------------------------- accounts

    /// <summary>The account of a key, or null. Also gives the rate-limit identity of the key (never the key itself).</summary>
    internal (int UserId, string Identity)? Authenticate(string key)
    {
        lock (_gate)
        {
            return _keys.TryGetValue(key, out var account) ? (account.UserId, _keyIdentities[key]) : null;
        }
    }

    // ---------------------------------------------------------------- reset and seeding

    /// <summary>Back to the initial world (same seed, current clock); clears log, faults and rate-limit windows.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            SeedLocked();
        }
    }

    private void SeedLocked()
    {
        var now = Now;
        _keys.Clear();
        _keyIdentities.Clear();
        _accounts.Clear();
        _machines.Clear();
        _offerIds.Clear();
        _requests.Clear();
        _faults.Clear();
        _lastCall.Clear();
        _pending.Clear();
        _runtimeRandom = new Random(_options.Seed ^ 0x5eed);
        _nextRentalId = FirstRentalId;
        _nextOfferId = FirstOwnOfferId;
        _nextMaintenanceId = FirstMaintenanceId;
        _nextPendingId = FirstPendingId;
        _tooFrequentCount = 0;
        _rateLimitsEnabled = _options.RateLimitsEnabled;
        _rateLimitScale = _options.RateLimitScale;

        var primary = new Account
        {
            UserId = _options.UserId,
            Username = _options.Username,
            Email = _options.Email,
            Fullname = "Demo Host",
            KeyId = 91001,
            Balance = 12.5,
        };
        var other = new Account
        {
            UserId = _options.OtherUserId,
            Username = _options.OtherUsername,
            Email = _options.OtherUsername + "@example.com",
            Fullname = "Other Host",
            KeyId = 91002,
            Balance = 3.2,
        };
        _accounts.Add(primary);
        _accounts.Add(other);
        for (var i = 0; i < _options.ApiKeys.Count; i++)
        {
            _keys[_options.ApiKeys[i]] = primary;
            _keyIdentities[_options.ApiKeys[i]] = string.Create(CultureInfo.InvariantCulture, $"user{primary.UserId}-key{i}");
        }

        _keys[_options.OtherApiKey] = other;
        _keyIdentities[_options.OtherApiKey] = string.Create(CultureInfo.InvariantCulture, $"user{other.UserId}-key0");

        for (var i = 0; i < _options.MachineHostnames.Count; i++)
        {
            var model = _options.MachineGpuModels.Count > 0 ? _options.MachineGpuModels[i % _options.MachineGpuModels.Count] : _options.GpuModel;
            var gpus = _options.MachineGpuCounts.Count > 0 ? _options.MachineGpuCounts[i % _options.MachineGpuCounts.Count] : _options.NumGpus;
            AddMachineLocked(MarketGenerator.OwnMachineIdBase + i, primary.UserId, _options.MachineHostnames[i], model, gpus, _options.InitiallyListed, i, now);
        }

        var otherMachine = AddMachineLocked(MarketGenerator.OtherMachineIdBase, other.UserId, "other-rig-01", "RTX 3090", 4, true, 100, now);
        otherMachine.ExpiredStorageContracts = 1;
        _market = MarketGenerator.Generate(new Random(_options.Seed), _options.OfferCount, _options.DuplicateOfferFraction, now, new HashSet<int> { primary.UserId, other.UserId }, _offerIds);

        if (_options.SeedRentals && _machines.Values.FirstOrDefault(m => m.OwnerId == primary.UserId) is { } first)
        {
            StartRentalLocked(first, new RentalRequest("on-demand", Math.Min(2, first.Hw.NumGpus), StartDate: now - 3 * 86400), now);
            if (first.Hw.NumGpus > 2)
            {
                StartRentalLocked(first, new RentalRequest("interruptible", 1, StartDate: now - 86400), now);
            }
        }
    }

    private MachineRecord AddMachineLocked(int id, int ownerId, string hostname, string gpuName, int numGpus, bool listed, int index, double now)
    {
        var spec = GpuCatalog.Find(gpuName);
        var rng = new Random(unchecked(_options.Seed * 31 + index + 1));
        var hw = MarketGenerator.CreateHardware(rng, spec, numGpus, false, string.Create(CultureInfo.InvariantCulture, $"203.0.113.{(10 + index) % 250}"));
        var price = GpuCatalog.TypicalHostPrice(spec);
        var machine = new MachineRecord
        {
            Id = id,
            OwnerId = ownerId,
            Hostname = hostname,
            Hw = hw,
            Reliability2 = Js.Round(0.98 - 0.002 * (index % 5), 4),
            MinBidPrice = Js.Round(price * 0.7, 3),
            ExpiredStorageContracts = index == 0 ? 2 : rng.Next(0, 3),
        };
        if (listed)
        {
            machine.Listed = true;
            machine.StartDate = Math.Round(now - 40 * 86400);
            machine.EndDate = Math.Round(now + 30 * 86400);
            machine.ListedGpuCost = price;
            machine.ListedStorageCost = 0.15;
            machine.ListedVolumeCost = 0.15;
            machine.VolumeTotalSize = Math.Min(200, hw.MaxDiskSpace / 4);
            machine.ListedInetUpCost = 0.005;
            machine.ListedInetDownCost = 0.005;
            machine.CreditDiscountMax = 0.1;
            machine.ListedMinGpuCount = 1;
            AssignOfferIdsLocked(machine);
        }

        // 30 days of earnings history before today (seeded).
        var today = (long)Math.Floor(now / 86400.0);
        for (var d = 30; d >= 1; d--)
        {
            var utilisation = 0.35 + rng.NextDouble() * 0.5;
            machine.History.Add(new DayEarnings(
                today - d,
                Js.Round(numGpus * price * 24 * utilisation, 4),
                Js.Round(0.2 + rng.NextDouble() * 2.3, 4),
                Js.Round(rng.NextDouble() * 0.6, 4),
                Js.Round(rng.NextDouble() * 0.3, 4)));
        }

        _machines[id] = machine;
        return machine;
    }

    private void AssignOfferIdsLocked(MachineRecord machine)
    {
        var chunks = MarketGenerator.Chunks(machine.Hw.NumGpus, machine.ListedMinGpuCount ?? 1);
        foreach (var stale in machine.OfferIds.Keys.Where(c => !chunks.Contains(c)).ToList())
        {
            machine.OfferIds.Remove(stale);
        }

        foreach (var chunk in chunks)
        {
            if (!machine.OfferIds.ContainsKey(chunk))
            {
                machine.OfferIds[chunk] = _nextOfferId++;
            }
        }
    }

    // ---------------------------------------------------------------- time passing

    /// <summary>Applies what the clock implies: ended contracts, expired listings, rolling durations, past maintenance.</summary>
    private void RefreshLocked(double now)
    {
        foreach (var machine in _machines.Values)
        {
            var freed = false;
            foreach (var rental in machine.Rentals.Where(r => r.Active && r.EndDate <= now))
            {
                rental.Stop(rental.EndDate);
                rental.EndedAt = rental.EndDate;
                machine.ExpiredStorageContracts++;
                freed = true;
            }

            if (freed)
            {
                ResumePreemptedLocked(machine, now);
            }

            if (machine.Listed && machine.DurationSeconds is { } duration && machine.DurationSetAt is { } setAt && now - setAt >= 86400)
            {
                // The server re-sets a rolling listing's end date daily to now + duration.
                var days = Math.Floor((now - setAt) / 86400);
                machine.DurationSetAt = setAt + days * 86400;
                machine.EndDate = machine.DurationSetAt + duration;
            }

            if (machine.Listed && machine.EndDate is { } end && end <= now)
            {
                machine.Listed = false;
                machine.OfferIds.Clear();
            }

            machine.Maintenance.RemoveAll(w => w.EndTime <= now);
        }

        _pending.RemoveAll(p => FindRentalLocked(p.ContractId) is not { Active: true });
    }

    private Rental? FindRentalLocked(int rentalId) =>
        _machines.Values.SelectMany(m => m.Rentals).FirstOrDefault(r => r.Id == rentalId);

    private sealed class ActiveFault
    {
        public required FaultSpec Spec { get; init; }

        public int Remaining { get; set; }
    }
}
