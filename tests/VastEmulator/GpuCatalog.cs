namespace VastEmulator;

/// <summary>
/// One GPU model of the emulated market. Prices are market prices per GPU-hour as renters see them
/// (<c>dph_base / num_gpus</c>); a host's listed price is that times <see cref="Pricing.HostShare"/>.
/// </summary>
public sealed record GpuSpec(
    string Name,
    int GpuRamMb,
    double PriceLow,
    double PriceHigh,
    double TflopsPerGpu,
    double DlperfPerGpu,
    int ComputeCap,
    double MemBandwidth,
    double? NvlinkBandwidth,
    double MaxPower,
    double PcieBandwidth,
    double PciGen,
    bool DatacenterClass,
    int Weight);

/// <summary>The ~10 GPU models the market generator draws from, with typical price spreads (2025–2026).</summary>
public static class GpuCatalog
{
    public static readonly IReadOnlyList<GpuSpec> All =
    [
        new("RTX 4090", 24564, 0.30, 0.60, 82.6, 32.5, 890, 1008.0, null, 450, 25.2, 4.0, false, 30),
        new("RTX 3090", 24576, 0.12, 0.25, 35.6, 18.5, 860, 936.2, null, 350, 24.6, 4.0, false, 20),
        new("RTX 5090", 32607, 0.50, 0.90, 104.8, 45.0, 1200, 1792.0, null, 575, 50.4, 5.0, false, 12),
        new("RTX 4080", 16376, 0.15, 0.30, 48.7, 22.0, 890, 716.8, null, 320, 25.1, 4.0, false, 9),
        new("RTX A6000", 49140, 0.35, 0.60, 38.7, 20.5, 860, 768.0, 112.5, 300, 24.8, 4.0, false, 6),
        new("L40S", 46068, 0.55, 0.95, 91.6, 38.0, 890, 864.0, null, 350, 25.3, 4.0, true, 6),
        new("A100 PCIE", 40960, 0.60, 1.10, 19.5, 31.0, 800, 1555.0, null, 250, 24.9, 4.0, true, 4),
        new("A100 SXM4", 81920, 0.80, 1.40, 19.5, 35.5, 800, 2039.0, 600.0, 400, 25.0, 4.0, true, 5),
        new("H100 PCIE", 81559, 1.40, 2.20, 51.2, 55.0, 900, 2000.0, null, 350, 50.1, 5.0, true, 4),
        new("H100 SXM", 81559, 1.60, 2.80, 66.9, 70.0, 900, 3350.0, 900.0, 700, 50.3, 5.0, true, 8),
    ];

    public static IEnumerable<string> Names => All.Select(g => g.Name);

    /// <summary>The model with that name; unknown names get RTX 4090 specs under the given name.</summary>
    public static GpuSpec Find(string name) =>
        All.FirstOrDefault(g => string.Equals(g.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? All[0] with { Name = name };

    /// <summary>A typical host price per GPU-hour for the model (middle of the market spread × host share), 3 decimals.</summary>
    public static double TypicalHostPrice(GpuSpec spec) =>
        Math.Round((spec.PriceLow + spec.PriceHigh) / 2 * Pricing.HostShare, 3);
}

/// <summary>The fee model of the emulator (the real one is unknown, vast-api.md §5.2).</summary>
public static class Pricing
{
    /// <summary>Share of the renter price that goes to the host: <c>dph_base = chunk × listed_gpu_cost / HostShare</c>.</summary>
    public const double HostShare = 0.75;

    /// <summary>The platform fee fraction reported on offers and pending price increases (1 − HostShare).</summary>
    public const double PlatformFee = 0.25;

    /// <summary>Hours in the storage month used to turn $/GB/month into $/hour (30 days).</summary>
    public const double HoursPerMonth = 720.0;
}
