using VastHostAgent.Gpu;
using VastHostAgent.Kernel;

namespace VastHostAgent.GpuCount;

/// <summary>Why a GPU on (or gone from) the PCI bus is counted missing. Bounded: these are label values.</summary>
public static class MissingReason
{
    /// <summary>On the bus, no driver bound.</summary>
    public const string NoDriver = "no_driver";

    /// <summary>On the bus, bound to a driver other than nvidia or vfio-pci (e.g. nouveau).</summary>
    public const string OtherDriver = "other_driver";

    /// <summary>Bound to nvidia, but NVML (up) does not list it.</summary>
    public const string NotInNvml = "not_in_nvml";

    /// <summary>Bound to nvidia, and NVML reports it lost or needing a reset.</summary>
    public const string NvmlLost = "nvml_lost";

    /// <summary>Seen on the bus (or known to NVML) earlier, absent now: fallen off the bus.</summary>
    public const string Gone = "gone";
}

/// <summary>A GPU counted missing: its PCI address and why.</summary>
public sealed record MissingGpu(string Address, string Reason);

/// <summary>PCIe AER totals of one NVIDIA GPU on the bus.</summary>
public sealed record GpuAer(string Address, AerTotals Totals);

/// <summary>
/// GPU-count truth of the rig: how many GPUs it should have, how many NVML sees, which are passed through to a VM
/// (bound to vfio-pci) and which are missing. Immutable; one per PCI scan.
/// </summary>
public sealed record GpuCountSample
{
    /// <summary>GPUs expected (Vast's <c>num_gpus</c>, or <c>host.expectedGpus</c>); null when neither is known.</summary>
    public int? Expected { get; init; }

    /// <summary>Where <see cref="Expected"/> came from: <c>Vast</c> or <c>config</c>.</summary>
    public string? ExpectedSource { get; init; }

    /// <summary>GPUs NVML reads (up); 0 while NVML is down.</summary>
    public int Nvml { get; init; }

    /// <summary>The PCI bus could be scanned (false: passthrough and missing are unknown).</summary>
    public bool PciScanned { get; init; }

    /// <summary>NVIDIA GPUs bound to vfio-pci (passed through to a VM rental), by address.</summary>
    public IReadOnlyList<string> Passthrough { get; init; } = [];

    /// <summary>GPUs on the bus in neither set, or gone from it.</summary>
    public IReadOnlyList<MissingGpu> Missing { get; init; } = [];

    /// <summary>AER totals of the NVIDIA GPUs that have AER files.</summary>
    public IReadOnlyList<GpuAer> Aer { get; init; } = [];

    /// <summary>How long the last scan took.</summary>
    public TimeSpan ScanDuration { get; init; }

    /// <summary>True when a passthrough GPU has this (NVML or sysfs) PCI address.</summary>
    public bool IsPassthrough(string pciAddress) => Passthrough.Contains(PciAddress.Normalise(pciAddress), StringComparer.Ordinal);
}

/// <summary>Works the GPU-count truth out of one PCI scan, the latest NVML sample and the expected count. Pure.</summary>
public static class GpuCountTruth
{
    public const string VfioPci = "vfio-pci";
    public const string Nvidia = "nvidia";

    /// <param name="scan">The PCI scan.</param>
    /// <param name="gpu">The latest NVML sample (null: gpu.enabled off or none yet).</param>
    /// <param name="expected">GPUs expected, and from where.</param>
    /// <param name="seenBefore">Addresses of NVIDIA GPUs seen on the bus by earlier scans of this process.</param>
    public static GpuCountSample Compute(PciScan scan, GpuSample? gpu, (int Count, string Source)? expected, IReadOnlySet<string> seenBefore)
    {
        var nvmlUp = gpu is { NvmlUp: true };
        // A GPU lost before NVML could read its identity has no bus id: it cannot be placed on the bus.
        var known = nvmlUp ? gpu!.Gpus.Where(g => !string.IsNullOrWhiteSpace(g.Identity.PciBusId)).ToList() : [];
        var up = known.Where(g => g.Up).Select(g => PciAddress.Normalise(g.Identity.PciBusId)).ToHashSet(StringComparer.Ordinal);
        var lost = known.Where(g => !g.Up).Select(g => PciAddress.Normalise(g.Identity.PciBusId)).ToHashSet(StringComparer.Ordinal);
        var sample = new GpuCountSample
        {
            Expected = expected?.Count,
            ExpectedSource = expected?.Source,
            Nvml = nvmlUp ? gpu!.Gpus.Count(g => g.Up) : 0,
            PciScanned = scan.BusPresent,
        };
        if (!scan.BusPresent)
        {
            return sample;
        }

        var passthrough = new List<string>();
        var missing = new List<MissingGpu>();
        var onBus = new HashSet<string>(StringComparer.Ordinal);
        foreach (var d in scan.Gpus)
        {
            onBus.Add(d.Address);
            switch (d.Driver)
            {
                case VfioPci:
                    passthrough.Add(d.Address);
                    break;
                case null:
                    missing.Add(new MissingGpu(d.Address, MissingReason.NoDriver));
                    break;
                case Nvidia when !nvmlUp || up.Contains(d.Address):
                    break; // NVML reads it, or NVML is down (its own condition: nothing can be said per GPU)
                case Nvidia:
                    missing.Add(new MissingGpu(d.Address, lost.Contains(d.Address) ? MissingReason.NvmlLost : MissingReason.NotInNvml));
                    break;
                default:
                    missing.Add(new MissingGpu(d.Address, MissingReason.OtherDriver));
                    break;
            }
        }

        foreach (var address in seenBefore.Concat(lost).Distinct(StringComparer.Ordinal))
        {
            if (!onBus.Contains(address) && !up.Contains(address))
            {
                missing.Add(new MissingGpu(address, MissingReason.Gone));
            }
        }

        return sample with
        {
            Passthrough = passthrough,
            Missing = [.. missing.OrderBy(m => m.Address, StringComparer.Ordinal)],
            Aer = [.. scan.Gpus.Where(d => d.Aer is not null).Select(d => new GpuAer(d.Address, d.Aer!))],
        };
    }
}

/// <summary>This feature's part of the <see cref="HostSnapshot"/>, by name.</summary>
public static class GpuCountSnapshot
{
    extension(HostSnapshot snapshot)
    {
        /// <summary>GPU-count truth; null while host.pciScan is off or before the first scan.</summary>
        public GpuCountSample? GpuCount => snapshot.Part<GpuCountSample>();

        /// <summary>The snapshot with <c>GpuCount</c> replaced.</summary>
        public HostSnapshot WithGpuCount(GpuCountSample? value) => snapshot.WithPart(value);
    }
}
