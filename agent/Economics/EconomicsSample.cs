using VastHostAgent.Kernel;

namespace VastHostAgent.Economics;

/// <summary>Power and energy of one GPU, as the economics feature counts them. Dollars.</summary>
/// <param name="Index">NVML index.</param>
/// <param name="Uuid">GPU UUID.</param>
/// <param name="CostPerHour">Electricity per hour at the current draw (× PUE) and tariff; null when NVML reports no power.</param>
/// <param name="EnergyJoules">Energy used since the agent started, from NVML's energy counter (a driver reset of the counter is carried over) or, without one, power × time.</param>
/// <param name="Estimated">True when the energy comes from power × time (no energy counter).</param>
public sealed record GpuEconomics(int Index, string Uuid, double? CostPerHour, double EnergyJoules, bool Estimated);

/// <summary>What the rig costs and earns, worked out at one instant. Every money value is in dollars.</summary>
public sealed record EconomicsSample
{
    public required DateTimeOffset At { get; init; }

    /// <summary>The tariff now ($/kWh).</summary>
    public required double DollarsPerKwh { get; init; }

    /// <summary>The tariff now in the configured currency (per kWh).</summary>
    public required double PricePerKwh { get; init; }

    public required string Currency { get; init; }

    /// <summary>IANA name of the schedule's zone.</summary>
    public required string TimeZone { get; init; }

    /// <summary>The tariff has time-of-use periods.</summary>
    public bool TimeOfUse { get; init; }

    public IReadOnlyList<GpuEconomics> Gpus { get; init; } = [];

    /// <summary>GPUs' draw × PUE plus the overhead (W); null when NVML reports no power at all.</summary>
    public double? MachineWatts { get; init; }

    /// <summary>Electricity per hour of the whole rig now; null without power readings.</summary>
    public double? CostPerHour { get; init; }

    /// <summary>Electricity since the agent started (GPUs and overhead).</summary>
    public double CostTotal { get; init; }

    /// <summary>Electricity since local midnight (or since the agent started, when later: <see cref="CostTodaySince"/>).</summary>
    public double CostToday { get; init; }

    public DateTimeOffset CostTodaySince { get; init; }

    /// <summary>A whole day at the current draw under the day's tariff.</summary>
    public double? CostPerDay { get; init; }

    /// <summary>Mean of Vast's earnings over the complete days of the last week (null while none is known).</summary>
    public double? RevenuePerDay { get; init; }

    /// <summary>How many complete days <see cref="RevenuePerDay"/> averages.</summary>
    public int RevenueDays { get; init; }

    /// <summary>Vast's earnings of today (UTC day), so far.</summary>
    public double? RevenueToday { get; init; }

    /// <summary><see cref="RevenuePerDay"/> − <see cref="CostPerDay"/>.</summary>
    public double? MarginPerDay { get; init; }

    /// <summary>The listed on-demand price of a GPU-hour less its electricity under load at the current tariff.</summary>
    public double? MarginPerGpuHour { get; init; }

    /// <summary>The listed (host-side) price per GPU-hour that pays the rig's electricity at the current draw and tariff.</summary>
    public double? BreakEvenListed { get; init; }

    /// <summary><see cref="BreakEvenListed"/> ÷ the host share: the same as the renter's on-demand price.</summary>
    public double? BreakEvenRenter { get; init; }

    /// <summary>One GPU-hour under load at the highest tariff (what the <c>powerCost</c> min bid and the price guard use).</summary>
    public RigPowerCost? Load { get; init; }
}

/// <summary>This feature's part of the <see cref="HostSnapshot"/>, by name.</summary>
public static class EconomicsSnapshot
{
    extension(HostSnapshot snapshot)
    {
        /// <summary>Power cost, revenue and margin; null while economics.enabled is false or before the first run.</summary>
        public EconomicsSample? Economics => snapshot.Part<EconomicsSample>();

        /// <summary>The snapshot with <c>Economics</c> replaced (and the kernel's <see cref="RigPowerCost"/> with it).</summary>
        public HostSnapshot WithEconomics(EconomicsSample? value) => snapshot.WithPart(value).WithPart(value?.Load);
    }
}
