using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;
using VastHostAgent.Management;
using VastHostAgent.Metrics;
using VastHostAgent.Vast;

namespace VastHostAgent.Benchmarks;

/// <summary>Inputs shared by the benchmarks and the figures: the fake NVML library, fixture trees, a market.</summary>
internal static class Rig
{
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>The fake libnvidia-ml.so.1 (scripts/test.sh and scripts/bench.sh build it; VASTHOST_FAKE_NVML overrides).</summary>
    public static string FakeNvml =>
        Environment.GetEnvironmentVariable("VASTHOST_FAKE_NVML") is { Length: > 0 } path ? path
            : Path.Combine(RepositoryRoot, "tests", "fake-nvml", "build", "libnvidia-ml.so.1");

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "VastHostAgent.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? Environment.CurrentDirectory;
    }

    /// <summary>The NVML sampler against the fake library with <paramref name="gpus"/> GPUs (the real P/Invoke path).</summary>
    public static NvmlGpuTelemetry Nvml(int gpus)
    {
        if (!File.Exists(FakeNvml))
        {
            throw new InvalidOperationException($"{FakeNvml} is missing: run scripts/bench.sh (it builds the fake NVML library)");
        }

        Environment.SetEnvironmentVariable("FAKE_NVML_GPUS", gpus.ToString(CultureInfo.InvariantCulture));
        return new NvmlGpuTelemetry(Options.Create(new GpuOptions { NvmlLibrary = FakeNvml, XidEvents = false }), TimeProvider.System, NullLogger<NvmlGpuTelemetry>.Instance);
    }

    /// <summary>The exporter as the daemon builds it with Docker on (container series registered).</summary>
    public static SnapshotExporter Exporter() =>
        new(new MetricsRegistry(), null, Options.Create(new MetricsOptions()), Options.Create(new DockerOptions { Enabled = true }), Options.Create(new VastOptions()), Options.Create(new AgentOptions()), TimeProvider.System);

    /// <summary>A sysfs tree with <paramref name="gpus"/> NVIDIA GPUs (each with its audio function and AER files; every other one on vfio-pci), a NIC and a USB controller.</summary>
    public static string PciTree(int gpus)
    {
        var root = Directory.CreateTempSubdirectory("vha-bench-pci-").FullName;
        var devices = Path.Combine(root, "bus", "pci", "devices");
        void Device(string address, uint vendor, uint cls, string driver)
        {
            var dir = Path.Combine(devices, address);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "vendor"), string.Create(CultureInfo.InvariantCulture, $"0x{vendor:x4}\n"));
            File.WriteAllText(Path.Combine(dir, "class"), string.Create(CultureInfo.InvariantCulture, $"0x{cls:x6}\n"));
            Directory.CreateDirectory(Path.Combine(root, "bus", "pci", "drivers", driver));
            File.CreateSymbolicLink(Path.Combine(dir, "driver"), $"../../../bus/pci/drivers/{driver}");
        }

        for (var i = 1; i <= gpus; i++)
        {
            var address = string.Create(CultureInfo.InvariantCulture, $"0000:{i:x2}:00.0");
            Device(address, 0x10de, 0x030000, i % 2 == 0 ? "vfio-pci" : "nvidia");
            Device(address[..^1] + "1", 0x10de, 0x040300, "snd_hda_intel");
            foreach (var (file, total) in new[] { ("aer_dev_correctable", "TOTAL_ERR_COR"), ("aer_dev_nonfatal", "TOTAL_ERR_NONFATAL"), ("aer_dev_fatal", "TOTAL_ERR_FATAL") })
            {
                File.WriteAllText(Path.Combine(devices, address, file), $"RxErr 0\nBadTLP 0\n{total} 0\n");
            }
        }

        Device("0000:00:1f.6", 0x8086, 0x020000, "e1000e");
        Device("0000:00:14.0", 0x8086, 0x0c0330, "xhci_hcd");
        return root;
    }

    /// <summary>A /proc and cgroup v2 tree (systemd driver) for <paramref name="count"/> containers.</summary>
    public static (string ProcRoot, string CgroupRoot, List<(string Id, int Pid)> Containers) CgroupTree(int count)
    {
        var root = Directory.CreateTempSubdirectory("vha-bench-cgroup-").FullName;
        var proc = Path.Combine(root, "proc");
        var cgroup = Path.Combine(root, "cgroup");
        var containers = new List<(string, int)>();
        for (var i = 0; i < count; i++)
        {
            var id = i.ToString("x64", CultureInfo.InvariantCulture);
            var pid = 10_000 + i;
            var pidDir = Directory.CreateDirectory(Path.Combine(proc, pid.ToString(CultureInfo.InvariantCulture))).FullName;
            File.WriteAllText(Path.Combine(pidDir, "cgroup"), $"0::/system.slice/docker-{id}.scope\n");
            Directory.CreateDirectory(Path.Combine(pidDir, "net"));
            File.WriteAllText(Path.Combine(pidDir, "net", "dev"),
                "Inter-|   Receive                                                |  Transmit\n" +
                " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
                "    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n" +
                $"  eth0: {1_000_000 + i} 1234 0 0 0 0 0 0 {2_000_000 + i} 2345 0 0 0 0 0 0\n");
            var dir = Directory.CreateDirectory(Path.Combine(cgroup, "system.slice", $"docker-{id}.scope")).FullName;
            File.WriteAllText(Path.Combine(dir, "cpu.stat"), $"usage_usec {123_456_789 + i}\nuser_usec 100000000\nsystem_usec 23456789\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n");
            File.WriteAllText(Path.Combine(dir, "memory.current"), $"{536_870_912 + i}\n");
            File.WriteAllText(Path.Combine(dir, "memory.max"), "8589934592\n");
            File.WriteAllText(Path.Combine(dir, "memory.stat"), "anon 400000000\nfile 136870912\nkernel 1000000\nactive_file 100000000\ninactive_file 36870912\nslab 500000\n");
            File.WriteAllText(Path.Combine(dir, "cpu.max"), "400000 100000\n");
            containers.Add((id, pid));
        }

        return (proc, cgroup, containers);
    }

    /// <summary>A market of <paramref name="count"/> offers: RTX 4090 machines of 1 to 8 GPUs, some of them ours, a few malformed.</summary>
    public static List<VastOffer> Market(int count, long ownMachine, long ownHost)
    {
        var random = new Random(42);
        var offers = new List<VastOffer>(count);
        for (var i = 0; i < count; i++)
        {
            long gpus = 1 << random.Next(0, 4);
            var perGpu = 0.25 + (random.NextDouble() * 0.5);
            offers.Add(new VastOffer
            {
                Id = 1_000_000 + i,
                MachineId = i % 500 == 0 ? ownMachine : 50_000 + (i / 2),
                HostId = i % 500 == 0 ? ownHost : 900 + (i % 300),
                NumGpus = gpus,
                GpuName = "RTX 4090",
                DphBase = i % 997 == 0 ? null : perGpu * gpus,
                Verified = true,
                Rentable = true,
            });
        }

        return offers;
    }

    /// <summary>A snapshot of a rig: the GPUs as the fake NVML reports them, and Vast instance containers with usage.</summary>
    public static HostSnapshot Snapshot(GpuSample gpus, int containers)
    {
        var infos = new List<ContainerInfo>(containers);
        var usage = new Dictionary<string, ContainerUsage>(StringComparer.Ordinal);
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < containers; i++)
        {
            var id = i.ToString("x64", CultureInfo.InvariantCulture);
            infos.Add(new ContainerInfo
            {
                Id = id,
                Name = $"C.{31000 + i}",
                InstanceId = 31000 + i,
                Image = "vastai/pytorch:2.4",
                State = "running",
                CreatedAt = now.AddHours(-2),
                StartedAt = now.AddHours(-2),
                Pid = 10_000 + i,
                MemoryLimitBytes = 8L << 30,
                CpuLimitCores = 4,
                Gpus = new ContainerGpuRequest(false, [(i % Math.Max(1, gpus.Gpus.Count)).ToString(CultureInfo.InvariantCulture)], [], []),
            });
            usage[id] = new ContainerUsage(id, 1234.5 + i, 4, 536_870_912, 500_000_000, 8UL << 30, 1_000_000, 2_000_000);
        }

        return (HostSnapshot.Empty with { Generation = 1, Timestamp = now })
            .WithGpu(gpus)
            .WithDocker(new DockerState { Up = true, EngineVersion = "24.0.7", Containers = infos })
            .WithContainerUsage(usage);
    }
}

/// <summary>One NVML sample cycle (every reading of every GPU) through the fake library: the real P/Invoke path.</summary>
[MemoryDiagnoser]
public class NvmlSampling
{
    private NvmlGpuTelemetry _nvml = null!;

    [Params(1, 8, 16)]
    public int Gpus { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _nvml = Rig.Nvml(Gpus);
        _ = _nvml.Sample();
    }

    [GlobalCleanup]
    public void Cleanup() => _nvml.Dispose();

    [Benchmark]
    public GpuSample Sample() => _nvml.Sample();
}

/// <summary>A new snapshot applied to the Prometheus registry and rendered (what the first scrape after a sample pays).</summary>
[MemoryDiagnoser]
public class SnapshotSerialisation
{
    private SnapshotExporter _exporter = null!;
    private HostSnapshot _snapshot = null!;
    private long _generation;

    [Params(0, 64, 256)]
    public int Containers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        using var nvml = Rig.Nvml(8);
        _snapshot = Rig.Snapshot(nvml.Sample(), Containers);
        _exporter = Rig.Exporter();
    }

    [GlobalCleanup]
    public void Cleanup() => _exporter.Dispose();

    [Benchmark]
    public int ApplyAndRender()
    {
        _exporter.Apply(_snapshot with { Generation = ++_generation });
        return _exporter.RenderAsync(default).GetAwaiter().GetResult().Length;
    }
}

/// <summary>CPU, memory and network of every container from cgroup v2 and /proc files.</summary>
[MemoryDiagnoser]
public class CgroupParsing
{
    private CgroupReader _reader = null!;
    private List<(string Id, int Pid)> _containers = [];

    [Params(64)]
    public int Containers { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var (proc, cgroup, containers) = Rig.CgroupTree(Containers);
        _reader = new CgroupReader(proc, cgroup);
        _containers = containers;
    }

    [Benchmark]
    public int ReadAll()
    {
        var read = 0;
        foreach (var (id, pid) in _containers)
        {
            read += _reader.Read(id, pid) is null ? 0 : 1;
        }

        return read;
    }
}

/// <summary>One pricing decision: the comparable offers of a 10,000-offer market summarised, then the engine's rules.</summary>
[MemoryDiagnoser]
public class PricingDecision
{
    private List<VastOffer> _offers = [];
    private readonly PricingOptions _options = new() { Strategy = PricingStrategy.Market, Floor = 0.05, Ceiling = 10 };

    [Params(10_000)]
    public int Offers { get; set; }

    [GlobalSetup]
    public void Setup() => _offers = Rig.Market(Offers, ownMachine: 48_000, ownHost: 4242);

    [Benchmark]
    public PriceDecision Decide() => Figures.Decide(_offers, _options);
}

/// <summary>The same hot paths timed with a Stopwatch for scripts/bench.sh: median of many runs, one line each.</summary>
public static class Figures
{
    public static PriceDecision Decide(List<VastOffer> offers, PricingOptions options)
    {
        var now = DateTimeOffset.UtcNow;
        var (prices, own, malformed) = MarketData.PeerPrices(offers, 48_000, 4242, "RTX 4090", 1, 8, 0.75);
        var market = new MarketSnapshot(now, prices, offers.Count, own, malformed, 0.75, "configured", null, 0, "RTX 4090, 1-8 GPUs");
        return PricingEngine.Decide(new PricingInput(0.40, 8, 2, TimeSpan.Zero, TimeSpan.FromHours(1), now.AddDays(-1), now, market), options);
    }

    private static double MedianMicroseconds(Action action, int runs)
    {
        for (var i = 0; i < Math.Max(3, runs / 10); i++)
        {
            action();
        }

        var times = new double[runs];
        for (var i = 0; i < runs; i++)
        {
            var start = Stopwatch.GetTimestamp();
            action();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        Array.Sort(times);
        return times[runs / 2];
    }

    public static int Run()
    {
        using (var nvml = Rig.Nvml(8))
        {
            Print("nvml_sample_8_gpus", MedianMicroseconds(() => nvml.Sample(), 2000));
        }

        using (var nvml = Rig.Nvml(8))
        {
            // What economics adds to each sample: one meter step over the 8 GPUs' readings (time-of-use tariff).
            var economics = new VastHostAgent.Economics.EconomicsOptions
            {
                Enabled = true,
                PricePerKwh = 0.12,
                TimeZone = "UTC",
                OverheadWatts = 150,
                PowerUsageEffectiveness = 1.05,
                Schedule = [new VastHostAgent.Economics.TariffPeriodOptions { Days = "mon-fri", From = "17:00", To = "21:00", PricePerKwh = 0.28 }],
            };
            var meter = new VastHostAgent.Economics.EconomicsMeter(economics, 0.75);
            var gpuSample = nvml.Sample();
            var at = DateTimeOffset.UtcNow;
            Print("economics_step_8_gpus", MedianMicroseconds(() => meter.Step(gpuSample, null, at = at.AddSeconds(5)), 2000));
        }

        // The PCI scan (GPU-count truth) of every sample: 8 GPUs with their audio functions, a NIC and a USB controller.
        var pciScanner = new VastHostAgent.GpuCount.SysfsPciGpuScanner(Rig.PciTree(8));
        Print("pci_scan_18_entries_8_gpus", MedianMicroseconds(() => pciScanner.Scan(), 500), $"{pciScanner.Scan().Gpus.Count} GPUs");

        var pricing = new PricingOptions { Strategy = PricingStrategy.Market, Floor = 0.05, Ceiling = 10 };
        var offers = Rig.Market(10_000, 48_000, 4242);
        var decision = Decide(offers, pricing);
        Print("pricing_decision_10000_offers", MedianMicroseconds(() => Decide(offers, pricing), 200), $"{decision.Action} {decision.Price:0.000} from {decision.Peers} peers");

        var (proc, cgroup, containers) = Rig.CgroupTree(64);
        var reader = new CgroupReader(proc, cgroup);
        Print("cgroup_read_64_containers", MedianMicroseconds(() =>
        {
            foreach (var (id, pid) in containers)
            {
                _ = reader.Read(id, pid);
            }
        }, 500));

        using var gpus = Rig.Nvml(8);
        var sample = gpus.Sample();
        foreach (var count in new[] { 0, 64, 256 })
        {
            using var exporter = Rig.Exporter();
            var snapshot = Rig.Snapshot(sample, count);
            long generation = 0;
            var bytes = 0;
            Print($"snapshot_apply_render_8_gpus_{count}_containers", MedianMicroseconds(() =>
            {
                exporter.Apply(snapshot with { Generation = ++generation });
                bytes = exporter.RenderAsync(default).GetAwaiter().GetResult().Length;
            }, 300), $"{bytes} bytes");
        }

        return 0;
    }

    private static void Print(string name, double microseconds, string? note = null) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name} {microseconds:0.0} us{(note is null ? "" : " (" + note + ")")}"));
}
