using System.Globalization;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;
using VastHostAgent.Vast;

namespace VastHostAgent.Economics;

/// <summary>
/// Counts the rig's energy and electricity cost from successive GPU samples, and works out revenue, margin and
/// break-even from Vast's earnings and listing. Energy comes from NVML's energy counter per GPU: a counter lower
/// than last time means the driver reset it, and the new value is what was used since. A GPU without the counter
/// is integrated from its power × time (and marked estimated). Not thread-safe: one caller (the economics source).
/// </summary>
public sealed class EconomicsMeter(EconomicsOptions options, double hostShare)
{
    /// <summary>A step longer than this (the agent was suspended, or samples stalled) adds at most this much time.</summary>
    private static readonly TimeSpan MaxStep = TimeSpan.FromMinutes(5);

    /// <summary>No GPU draws more than this: a larger counter jump is a driver glitch, counted at this power.</summary>
    private const double MaxGpuWatts = 5000;

    private readonly TariffSchedule _tariff = options.Tariff();
    private readonly string _currency = options.Currency.ToUpperInvariant();
    private readonly Dictionary<string, GpuEnergy> _energy = new(StringComparer.Ordinal);
    private DateTimeOffset? _last;
    private DateTimeOffset _started;
    private double _costTotal;
    private double _costToday;
    private DateTimeOffset _todayStart;

    // Worked out once per local day, and once per change of the GPUs' limits: not on every sample.
    private double _dayAverage;
    private RigPowerCost? _load;
    private (double Watts, string Source, int Gpus) _loadKey;

    public TariffSchedule Tariff => _tariff;

    /// <summary>Counts the time since the last step and works out the figures at <paramref name="now"/>.</summary>
    public EconomicsSample Step(GpuSample? gpu, VastState? vast, DateTimeOffset now)
    {
        var price = _tariff.DollarsPerKwhAt(now);
        var dt = _last is { } last && now > last ? now - last : TimeSpan.Zero;
        if (dt > MaxStep)
        {
            dt = MaxStep;
        }

        if (_last is null)
        {
            _started = now;
        }

        var dayStart = _tariff.StartOfLocalDay(now);
        if (_last is null || dayStart != _todayStart)
        {
            _todayStart = dayStart;
            _costToday = 0;
            _dayAverage = _tariff.AverageDollarsPerKwhOnDayOf(now);
        }

        _last = now;
        var pue = options.PowerUsageEffectiveness;
        var gpus = new List<GpuEconomics>();
        double? gpuWatts = null;
        var stepJoules = options.OverheadWatts * dt.TotalSeconds;
        var readings = gpu is { NvmlUp: true } ? gpu.Gpus : [];
        foreach (var r in readings)
        {
            var uuid = r.Identity.Uuid;
            if (!_energy.TryGetValue(uuid, out var e))
            {
                e = new GpuEnergy();
                _energy[uuid] = e;
            }

            var joules = e.Advance(r, dt);
            stepJoules += joules * pue;
            if (r.Up && r.PowerUsageWatts is { } watts && double.IsFinite(watts) && watts >= 0)
            {
                gpuWatts = (gpuWatts ?? 0) + watts;
            }

            var cost = r.Up && r.PowerUsageWatts is { } w && double.IsFinite(w) && w >= 0 ? w * pue / 1000 * price : (double?)null;
            gpus.Add(new GpuEconomics(r.Identity.Index, uuid, cost, e.Total, e.Estimated));
        }

        var stepCost = stepJoules / 3.6e6 * price;
        _costTotal += stepCost;
        _costToday += stepCost;

        double? machineWatts = gpuWatts is { } g ? (g * pue) + options.OverheadWatts : null;
        double? costPerHour = machineWatts / 1000 * price;
        double? costPerDay = machineWatts / 1000 * 24 * _dayAverage;
        var n = readings.Count;
        double? breakEven = costPerHour is { } ch && n > 0 ? ch / n : null;
        var load = LoadCost(readings, now);

        var machine = vast?.Machine;
        var (revenuePerDay, revenueDays, revenueToday) = Revenue(vast?.Earnings, now);
        double? listed = machine?.ListedGpuCost is { } l && double.IsFinite(l) && l > 0 ? l : null;
        double? loadNow = load is null ? null : load.LoadCostPerGpuHour / _tariff.PeakDollarsPerKwh * price;
        if (_tariff.PeakDollarsPerKwh <= 0)
        {
            loadNow = load is null ? null : 0;
        }

        return new EconomicsSample
        {
            At = now,
            DollarsPerKwh = price,
            PricePerKwh = price / options.DollarsPerUnit,
            Currency = _currency,
            TimeZone = _tariff.Zone.Id,
            TimeOfUse = _tariff.TimeOfUse,
            Gpus = gpus,
            MachineWatts = machineWatts,
            CostPerHour = costPerHour,
            CostTotal = _costTotal,
            CostToday = _costToday,
            CostTodaySince = _started > _todayStart ? _started : _todayStart,
            CostPerDay = costPerDay,
            RevenuePerDay = revenuePerDay,
            RevenueDays = revenueDays,
            RevenueToday = revenueToday,
            MarginPerDay = revenuePerDay - costPerDay,
            MarginPerGpuHour = listed - loadNow,
            BreakEvenListed = breakEven,
            BreakEvenRenter = breakEven / hostShare,
            Load = load,
        };
    }

    /// <summary>
    /// One GPU-hour under load at the highest tariff: the GPU's enforced power limit (else its default limit, else
    /// its draw now) × PUE, plus its share of the overhead. The most expensive GPU of the rig sets it.
    /// </summary>
    private RigPowerCost? LoadCost(IReadOnlyList<GpuReading> readings, DateTimeOffset now)
    {
        if (readings.Count == 0)
        {
            return null;
        }

        double? worst = null;
        string? source = null;
        foreach (var r in readings)
        {
            var (watts, what) = r.PowerLimitWatts is { } limit && limit > 0 ? (limit, "limit")
                : r.PowerDefaultLimitWatts is { } d && d > 0 ? (d, "default limit")
                : r.PowerUsageWatts is { } u && u > 0 ? (u, "draw now")
                : (0.0, "");
            if (watts > 0 && (worst is null || watts > worst))
            {
                worst = watts;
                source = what;
            }
        }

        if (worst is not { } w)
        {
            return null;
        }

        if (_load is not null && _loadKey == (w, source!, readings.Count))
        {
            return _load; // the same limits: the same figure and explanation
        }

        var pue = options.PowerUsageEffectiveness;
        var share = options.OverheadWatts / readings.Count;
        var total = (w * pue) + share;
        var peak = _tariff.PeakDollarsPerKwh;
        var cost = total / 1000 * peak;
        var text = string.Create(CultureInfo.InvariantCulture,
            $"{w:0} W {source}{(pue != 1 ? $" × PUE {pue:0.00}" : "")}{(share > 0 ? $" + {options.OverheadWatts:0} W overhead / {readings.Count}" : "")} = {total:0} W at {peak:0.####} $/kWh{(_tariff.TimeOfUse ? " (the schedule's peak)" : "")} = {cost:0.####} $/GPU-h");
        _loadKey = (w, source!, readings.Count);
        _load = new RigPowerCost(cost, text, now);
        return _load;
    }

    /// <summary>The mean of the complete UTC days of the week Vast reported, and today's so far.</summary>
    private static (double? PerDay, int Days, double? Today) Revenue(VastEarnings? earnings, DateTimeOffset now)
    {
        if (earnings?.PerDay is not { } rows)
        {
            return (null, 0, null);
        }

        var today = (long)Math.Floor(now.ToUnixTimeSeconds() / 86400.0);
        var complete = rows.Where(r => r.Day is { } d && today - d is >= 1 and <= 6).ToList();
        double? todays = rows.Where(r => r.Day == today).Select(r => (double?)r.Total).FirstOrDefault();
        return complete.Count == 0 ? (null, 0, todays) : (complete.Average(r => r.Total), complete.Count, todays);
    }

    /// <summary>One GPU's energy since the agent started.</summary>
    private sealed class GpuEnergy
    {
        private double? _lastCounter;

        public double Total { get; private set; }

        public bool Estimated { get; private set; }

        /// <summary>Adds what the GPU used over <paramref name="dt"/>; returns it (J).</summary>
        public double Advance(GpuReading r, TimeSpan dt)
        {
            var cap = MaxGpuWatts * Math.Max(dt.TotalSeconds, 1);
            double used;
            if (r.EnergyConsumedJoules is { } counter && double.IsFinite(counter) && counter >= 0)
            {
                used = _lastCounter is not { } last ? 0 : GpuReading.EnergySince(last, counter);
                _lastCounter = counter;
                Estimated = false;
            }
            else if (r.Up && r.PowerUsageWatts is { } watts && double.IsFinite(watts) && watts >= 0)
            {
                used = watts * dt.TotalSeconds;
                Estimated = true;
            }
            else
            {
                used = 0;
            }

            used = Math.Min(used, cap);
            Total += used;
            return used;
        }
    }
}
