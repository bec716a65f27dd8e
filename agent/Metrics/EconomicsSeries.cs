using System.Globalization;
using VastHostAgent.Economics;
using VastHostAgent.Kernel;

namespace VastHostAgent.Metrics;

/// <summary>Power cost, energy, revenue, margin and break-even (economics.enabled). Every money series is in dollars.</summary>
internal sealed class EconomicsSeries : ISnapshotSeries
{
    private readonly TrackedGauge _info;
    private readonly TrackedGauge _price;
    private readonly TrackedGauge _priceDollars;
    private readonly TrackedGauge _gpuCost;
    private readonly TrackedCounter _gpuEnergy;
    private readonly TrackedGauge _watts;
    private readonly TrackedGauge _cost;
    private readonly TrackedCounter _costTotal;
    private readonly TrackedGauge _costToday;
    private readonly TrackedGauge _costPerDay;
    private readonly TrackedGauge _revenuePerDay;
    private readonly TrackedGauge _revenueToday;
    private readonly TrackedGauge _marginPerDay;
    private readonly TrackedGauge _marginPerGpuHour;
    private readonly TrackedGauge _breakEven;
    private readonly TrackedGauge _loadCost;

    public EconomicsSeries(SeriesFactory f)
    {
        _info = f.Gauge("vasthost_economics_info", "The tariff's currency and time zone. Always 1.", "currency", "time_zone", "tariff");
        _price = f.Gauge("vasthost_economics_electricity_price_per_kilowatt_hour", "Electricity price now, in the configured currency (see vasthost_economics_info).");
        _priceDollars = f.Gauge("vasthost_economics_electricity_price_dollars_per_kilowatt_hour", "Electricity price now, in dollars.");
        _gpuCost = f.Gauge("vasthost_economics_gpu_power_cost_dollars_per_hour", "Electricity per hour of one GPU at its draw now (× PUE).", "gpu", "uuid");
        _gpuEnergy = f.Counter("vasthost_economics_gpu_energy_joules_total", "Energy one GPU used since the agent started (NVML's energy counter; driver resets of the counter carried over; power × time on GPUs without the counter).", "gpu", "uuid");
        _watts = f.Gauge("vasthost_economics_power_watts", "The rig's draw now as costed: GPUs × PUE plus the configured overhead.");
        _cost = f.Gauge("vasthost_economics_power_cost_dollars_per_hour", "Electricity per hour of the whole rig at its draw now.");
        _costTotal = f.Counter("vasthost_economics_power_cost_dollars_total", "Electricity the rig used since the agent started, at the tariff of each moment.");
        _costToday = f.Gauge("vasthost_economics_power_cost_today_dollars", "Electricity since local midnight (or since the agent started, when later).");
        _costPerDay = f.Gauge("vasthost_economics_power_cost_dollars_per_day", "A whole day at the draw now under the day's tariff.");
        _revenuePerDay = f.Gauge("vasthost_economics_revenue_dollars_per_day", "Vast earnings per day: the mean of the complete days of the last week.");
        _revenueToday = f.Gauge("vasthost_economics_revenue_today_dollars", "Vast earnings of today (UTC), so far.");
        _marginPerDay = f.Gauge("vasthost_economics_margin_dollars_per_day", "Revenue per day less the power cost per day.");
        _marginPerGpuHour = f.Gauge("vasthost_economics_margin_dollars_per_gpu_hour", "The listed on-demand price of a GPU-hour less its electricity under load at the tariff now.");
        _breakEven = f.Gauge("vasthost_economics_break_even_dollars_per_gpu_hour", "On-demand price per GPU-hour that pays the rig's electricity at its draw now: side listed (the host's price) or renter (÷ host share).", "side");
        _loadCost = f.Gauge("vasthost_economics_load_cost_dollars_per_gpu_hour", "Electricity of one GPU-hour under load (power limit × PUE + overhead share) at the schedule's peak tariff: the powerCost min bid's base.");
    }

    public void Apply(HostSnapshot snapshot)
    {
        if (snapshot.Economics is not { } e)
        {
            return;
        }

        _info.Set(1, e.Currency, e.TimeZone, e.TimeOfUse ? "time_of_use" : "flat");
        _price.Set(e.PricePerKwh);
        _priceDollars.Set(e.DollarsPerKwh);
        foreach (var g in e.Gpus)
        {
            var index = g.Index.ToString(CultureInfo.InvariantCulture);
            _gpuCost.Set(g.CostPerHour, index, g.Uuid);
            _gpuEnergy.Set(g.EnergyJoules, index, g.Uuid);
        }

        _watts.Set(e.MachineWatts);
        _cost.Set(e.CostPerHour);
        _costTotal.Set(e.CostTotal);
        _costToday.Set(e.CostToday);
        _costPerDay.Set(e.CostPerDay);
        _revenuePerDay.Set(e.RevenuePerDay);
        _revenueToday.Set(e.RevenueToday);
        _marginPerDay.Set(e.MarginPerDay);
        _marginPerGpuHour.Set(e.MarginPerGpuHour);
        _breakEven.Set(e.BreakEvenListed, "listed");
        _breakEven.Set(e.BreakEvenRenter, "renter");
        _loadCost.Set(e.Load?.LoadCostPerGpuHour);
    }
}
