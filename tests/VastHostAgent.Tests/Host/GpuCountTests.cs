using System.Globalization;
using VastHostAgent.Gpu;
using VastHostAgent.GpuCount;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Host;

/// <summary>The PCI scan and the GPU-count truth against sysfs fixture trees: all on nvidia, two on vfio-pci, one gone, one on no driver.</summary>
public sealed class GpuCountTests
{
    private static readonly string[] Four = ["0000:01:00.0", "0000:02:00.0", "0000:03:00.0", "0000:04:00.0"];

    /// <summary>An NVML sample with GPUs at these NVML-style addresses (<c>00000000:01:00.0</c>), up unless listed lost.</summary>
    private static GpuSample Nvml(IEnumerable<string> addresses, params string[] lost) => new()
    {
        NvmlUp = true,
        Gpus = [.. addresses.Select((a, i) => new GpuReading
        {
            Identity = new GpuIdentity(i, $"GPU-{i}", "NVIDIA GeForce RTX 4090", "0000" + a.ToUpperInvariant(), i, null, null),
            Up = !lost.Contains(a),
            DownReason = lost.Contains(a) ? "GPU_IS_LOST" : null,
        })],
    };

    private static PciFixture Rig(string name, Func<string, string?> driver)
    {
        var fixture = new PciFixture(TestEnvironment.NewTempDirectory(name));
        foreach (var a in Four)
        {
            fixture.Gpu(a, driver(a));
        }

        // Not GPUs: an Intel NIC, and an NVIDIA USB controller (class 0x0c0330) of a Turing card.
        fixture.Device("0000:00:1f.6", "e1000e", vendor: 0x8086, cls: 0x020000);
        fixture.Device("0000:04:00.2", "xhci_hcd", cls: 0x0c0330);
        return fixture;
    }

    private static GpuCountSample Truth(PciFixture fixture, GpuSample? nvml, IReadOnlySet<string>? seen = null, (int, string)? expected = null) =>
        GpuCountTruth.Compute(new SysfsPciGpuScanner(fixture.Root).Scan(), nvml, expected ?? (4, "Vast"), seen ?? new HashSet<string>());

    [Fact]
    public void All_on_nvidia_and_read_by_nvml_nothing_is_missing_and_audio_usb_and_other_vendors_are_not_gpus()
    {
        var fixture = Rig("pci-all", _ => "nvidia");
        var scan = new SysfsPciGpuScanner(fixture.Root).Scan();
        Assert.True(scan.BusPresent);
        Assert.Equal(Four, scan.Gpus.Select(g => g.Address));
        Assert.All(scan.Gpus, g => Assert.Equal("nvidia", g.Driver));

        var truth = Truth(fixture, Nvml(Four));
        Assert.Equal((4, 4, 0, 0), (truth.Expected, truth.Nvml, truth.Passthrough.Count, truth.Missing.Count));
        Assert.Empty(truth.Aer);
    }

    [Fact]
    public void Two_on_vfio_pci_are_passthrough_not_missing_even_when_nvml_still_lists_them_lost()
    {
        var fixture = Rig("pci-vfio", a => a is "0000:03:00.0" or "0000:04:00.0" ? "vfio-pci" : "nvidia");
        var truth = Truth(fixture, Nvml(Four, "0000:03:00.0", "0000:04:00.0"));
        Assert.Equal(2, truth.Nvml);
        Assert.Equal(["0000:03:00.0", "0000:04:00.0"], truth.Passthrough);
        Assert.Empty(truth.Missing);
        Assert.True(truth.IsPassthrough("00000000:03:00.0")); // NVML's spelling

        // NVML re-initialised after the unbind: it lists only the two it still has.
        Assert.Empty(Truth(fixture, Nvml(Four.Take(2))).Missing);
    }

    [Fact]
    public void One_gone_from_the_bus_is_missing_as_gone_whether_seen_before_or_known_lost_to_nvml()
    {
        var fixture = Rig("pci-gone", _ => "nvidia");
        var seen = new SysfsPciGpuScanner(fixture.Root).Scan().Gpus.Select(g => g.Address).ToHashSet(StringComparer.Ordinal);
        fixture.Remove("0000:02:00.0");

        // NVML re-initialised and no longer lists it: only the scanner's memory knows it was there.
        var truth = Truth(fixture, Nvml(Four.Where(a => a != "0000:02:00.0")), seen);
        Assert.Equal(3, truth.Nvml);
        Assert.Equal([new MissingGpu("0000:02:00.0", MissingReason.Gone)], truth.Missing);

        // A fresh agent: NVML still holds the lost handle (GPU_IS_LOST), the bus no longer has it.
        var fresh = Truth(fixture, Nvml(Four, "0000:02:00.0"));
        Assert.Equal([new MissingGpu("0000:02:00.0", MissingReason.Gone)], fresh.Missing);
    }

    [Fact]
    public void One_on_no_driver_is_missing_and_so_is_one_nvml_does_not_list_or_another_driver_holds()
    {
        var fixture = Rig("pci-nodriver", a => a == "0000:04:00.0" ? null : "nvidia");
        var truth = Truth(fixture, Nvml(Four.Take(3)));
        Assert.Equal([new MissingGpu("0000:04:00.0", MissingReason.NoDriver)], truth.Missing);

        fixture.Bind("0000:04:00.0", "nouveau").Bind("0000:03:00.0", "nvidia");
        var more = Truth(fixture, Nvml(Four.Take(2)));
        Assert.Equal(
            [new MissingGpu("0000:03:00.0", MissingReason.NotInNvml), new MissingGpu("0000:04:00.0", MissingReason.OtherDriver)],
            more.Missing);

        var lost = Truth(Rig("pci-lost", _ => "nvidia"), Nvml(Four, "0000:01:00.0"));
        Assert.Equal([new MissingGpu("0000:01:00.0", MissingReason.NvmlLost)], lost.Missing);

        // Lost before NVML read its identity (no bus id): nothing to place on the bus, so no phantom "gone" GPU.
        var anonymous = Nvml(Four);
        anonymous = anonymous with { Gpus = [.. anonymous.Gpus, new GpuReading { Identity = new GpuIdentity(4, "", "unknown", "", null, null, null), Up = false }] };
        Assert.Empty(Truth(Rig("pci-anon", _ => "nvidia"), anonymous).Missing);
    }

    [Fact]
    public void While_nvml_is_down_gpus_on_nvidia_are_not_called_missing_and_without_a_bus_nothing_is_counted()
    {
        var fixture = Rig("pci-nvmldown", a => a == "0000:04:00.0" ? null : "nvidia");
        var down = Truth(fixture, GpuSample.Unavailable("driver/library version mismatch"));
        Assert.Equal(0, down.Nvml);
        Assert.Equal([new MissingGpu("0000:04:00.0", MissingReason.NoDriver)], down.Missing);

        var noBus = GpuCountTruth.Compute(new SysfsPciGpuScanner(TestEnvironment.NewTempDirectory("pci-none")).Scan(), Nvml(Four), null, new HashSet<string>());
        Assert.False(noBus.PciScanned);
        Assert.Equal(4, noBus.Nvml);
        Assert.Null(noBus.Expected);
    }

    [Fact]
    public void Aer_totals_come_from_the_total_lines_and_are_absent_without_the_files()
    {
        var fixture = Rig("pci-aer", _ => "nvidia").Aer("0000:02:00.0", correctable: 17, nonfatal: 2, fatal: 1);
        var scan = new SysfsPciGpuScanner(fixture.Root).Scan();
        Assert.Equal(new AerTotals(17, 2, 1), scan.Gpus.Single(g => g.Address == "0000:02:00.0").Aer);
        Assert.All(scan.Gpus.Where(g => g.Address != "0000:02:00.0"), g => Assert.Null(g.Aer));
        Assert.Equal([new GpuAer("0000:02:00.0", new AerTotals(17, 2, 1))], Truth(fixture, Nvml(Four)).Aer);
    }

    [Theory]
    [InlineData("00000000:01:00.0", "0000:01:00.0")]
    [InlineData("0000:0A:00.0", "0000:0a:00.0")]
    [InlineData("01:00.0", "0000:01:00.0")]
    [InlineData("00010000:c1:00.0", "10000:c1:00.0")]
    public void Nvml_and_sysfs_spellings_of_an_address_normalise_to_one(string address, string expected) =>
        Assert.Equal(expected, VastHostAgent.Kernel.PciAddress.Normalise(address));

    [Fact]
    public void Expected_is_vast_num_gpus_when_read_else_the_configured_count()
    {
        var machine = new VastHostAgent.Vast.VastState { Machine = new VastHostAgent.Vast.VastMachine { NumGpus = 8 } };
        Assert.Equal((8, "Vast"), GpuCountSource.Expected(machine, 4));
        Assert.Equal((4, "config"), GpuCountSource.Expected(new VastHostAgent.Vast.VastState(), 4));
        Assert.Equal((4, "config"), GpuCountSource.Expected(null, 4));
        Assert.Null(GpuCountSource.Expected(null, 0));
    }

    [Fact]
    public void A_device_that_leaves_the_bus_and_comes_back_as_something_else_is_read_again()
    {
        // Vendor and class are read once per appearance of an address (scans repeat every sample interval).
        var fixture = new PciFixture(TestEnvironment.NewTempDirectory("pci-again"));
        for (var i = 1; i <= 8; i++)
        {
            fixture.Gpu(string.Create(CultureInfo.InvariantCulture, $"0000:{i:x2}:00.0"), i % 2 == 0 ? "vfio-pci" : "nvidia");
        }

        fixture.Device("0000:00:1f.6", "e1000e", vendor: 0x8086, cls: 0x020000);
        var scanner = new SysfsPciGpuScanner(fixture.Root);
        Assert.Equal(8, scanner.Scan().Gpus.Count);
        Assert.Equal(4, scanner.Scan().Gpus.Count(g => g.Driver == "vfio-pci"));

        fixture.Remove("0000:08:00.0");
        Assert.Equal(7, scanner.Scan().Gpus.Count);
        fixture.Device("0000:08:00.0", "e1000e", vendor: 0x8086, cls: 0x020000);
        Assert.Equal(7, scanner.Scan().Gpus.Count);
        fixture.Remove("0000:00:1f.6");
        Assert.Equal(7, scanner.Scan().Gpus.Count); // a scan sees the address gone (a PCI swap takes far longer than a sample interval)
        fixture.Gpu("0000:00:1f.6", "nvidia");
        Assert.Contains(scanner.Scan().Gpus, g => g.Address == "0000:00:1f.6");
    }
}
