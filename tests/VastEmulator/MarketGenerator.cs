namespace VastEmulator;

/// <summary>Deterministic (seeded) hardware and market generation.</summary>
internal static class MarketGenerator
{
    public const int OwnMachineIdBase = 48211;
    public const int OtherMachineIdBase = 51877;

    private static readonly (string Name, int Threads, double Ghz)[] Cpus =
    [
        ("AMD EPYC 7543 32-Core Processor", 64, 2.8),
        ("AMD EPYC 7763 64-Core Processor", 128, 2.45),
        ("AMD EPYC 9654 96-Core Processor", 192, 2.4),
        ("AMD EPYC 7B13 64-Core Processor", 128, 2.45),
        ("AMD Ryzen 9 7950X 16-Core Processor", 32, 4.5),
        ("AMD Ryzen Threadripper PRO 5975WX 32-Cores", 64, 3.6),
        ("Intel(R) Xeon(R) Platinum 8480+", 112, 2.0),
        ("Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", 64, 2.0),
        ("Intel(R) Core(TM) i9-13900K", 32, 3.0),
    ];

    private static readonly (string Name, long Code)[] Locations =
    [
        ("Sweden, SE", 46), ("Texas, US", 1048), ("California, US", 1006), ("Virginia, US", 1051),
        ("Ontario, CA", 2035), ("Quebec, CA", 2024), ("Germany, DE", 49), ("Netherlands, NL", 31),
        ("France, FR", 33), ("Poland, PL", 48), ("Czechia, CZ", 420), ("Norway, NO", 47), ("Finland, FI", 358),
        ("Japan, JP", 81), ("Korea, KR", 82), ("Taiwan, TW", 886), ("Vietnam, VN", 84), ("Australia, AU", 61),
        ("Brazil, BR", 55), ("Spain, ES", 34), ("United Kingdom, GB", 44), ("Romania, RO", 40), ("Iceland, IS", 354),
    ];

    private static readonly (string Version, double Cuda)[] Drivers =
    [
        ("550.127.05", 12.4), ("560.35.03", 12.6), ("565.57.01", 12.7), ("570.86.10", 12.8), ("570.124.06", 12.8), ("575.57.08", 12.9),
    ];

    private static readonly string[] Mobos =
    [
        "ROMED8-2T", "MC62-G40-00", "H12SSL-i", "WRX80 Creator", "X13DEG-OAD", "PRO WS W790-ACE", "MZ73-LM0-000", "ProArt B650-CREATOR",
    ];

    private static readonly string[] Disks =
    [
        "Samsung SSD 990 PRO 4TB", "Micron_7450_MTFDKCC3T8TFR", "KIOXIA KCD8XPUG7T68", "WD_BLACK SN850X 2000GB",
        "SAMSUNG MZQL23T8HCLS-00A07", "Solidigm D7-P5520",
    ];

    private static readonly string[] UbuntuVersions = ["22.04", "22.04", "24.04", "20.04"];

    /// <summary>GPU chunks offered for a listing: min_chunk, then powers of two up to num_gpus, then the whole machine.</summary>
    public static IReadOnlyList<int> Chunks(int numGpus, int minChunk)
    {
        var chunks = new List<int>();
        for (var c = Math.Max(1, minChunk); c <= numGpus; c *= 2)
        {
            chunks.Add(c);
        }

        if (chunks.Count == 0 || chunks[^1] != numGpus)
        {
            chunks.Add(numGpus);
        }

        return chunks;
    }

    public static Hardware CreateHardware(Random rng, GpuSpec spec, int numGpus, bool datacenter, string? publicIp = null)
    {
        var cpu = Cpus[rng.Next(Cpus.Length)];
        var location = Locations[rng.Next(Locations.Length)];
        var minDriver = spec.Name == "RTX 5090" ? 3 : 0;
        var driver = Drivers[rng.Next(minDriver, Drivers.Length)];
        var ramPerThreadGb = 2 + rng.Next(0, 7);
        return new Hardware
        {
            Gpu = spec,
            NumGpus = numGpus,
            GpuLanes = numGpus >= 8 && !spec.DatacenterClass && rng.NextDouble() < 0.4 ? 8 : 16,
            DlperfFactor = 0.9 + rng.NextDouble() * 0.15,
            CpuName = cpu.Name,
            CpuCores = cpu.Threads,
            CpuGhz = cpu.Ghz,
            CpuRamMb = cpu.Threads * ramPerThreadGb * 1024,
            MoboName = Mobos[rng.Next(Mobos.Length)],
            DiskName = Disks[rng.Next(Disks.Length)],
            DiskBw = Js.Round(1500 + rng.NextDouble() * 16000, 1),
            MaxDiskSpace = numGpus * (250 + rng.Next(0, 650)),
            InetUp = Js.Round(200 + rng.NextDouble() * 9000, 1),
            InetDown = Js.Round(300 + rng.NextDouble() * 9000, 1),
            DriverVersion = driver.Version,
            CudaMaxGood = driver.Cuda,
            UbuntuVersion = UbuntuVersions[rng.Next(UbuntuVersions.Length)],
            DirectPortCount = datacenter ? 16385 : 100 + rng.Next(0, 2000),
            PublicIp = publicIp ?? RandomIp(rng),
            Geolocation = location.Name,
            Geolocode = location.Code,
            HostingType = datacenter ? 1 : 0,
            StaticIp = datacenter || rng.NextDouble() < 0.5,
            VmsEnabled = rng.NextDouble() < 0.3,
        };
    }

    /// <summary>Other hosts' machines until <paramref name="offerCount"/> offers exist (ids avoid the own-machine ranges).</summary>
    public static List<MarketMachine> Generate(Random rng, int offerCount, double duplicateFraction, double now, IReadOnlySet<int> reservedHostIds, HashSet<int> offerIds)
    {
        var machines = new List<MarketMachine>();
        var machineIds = new HashSet<int>();
        var hosts = new List<int>();
        var offers = 0;
        var totalWeight = GpuCatalog.All.Sum(g => g.Weight);
        while (offers < offerCount)
        {
            var spec = PickGpu(rng, totalWeight);
            var numGpus = PickNumGpus(rng, spec.DatacenterClass);
            var datacenter = spec.DatacenterClass ? rng.NextDouble() < 0.5 : rng.NextDouble() < 0.05;
            int hostId;
            if (hosts.Count > 0 && rng.NextDouble() < 0.35)
            {
                hostId = hosts[rng.Next(hosts.Count)];
            }
            else
            {
                do
                {
                    hostId = rng.Next(100, 400_000);
                }
                while (reservedHostIds.Contains(hostId) || hosts.Contains(hostId));

                hosts.Add(hostId);
            }

            int machineId;
            do
            {
                machineId = rng.Next(1000, 100_000);
            }
            while ((machineId >= 48000 && machineId < 53000) || !machineIds.Add(machineId));

            var price = Js.Round(spec.PriceLow + (spec.PriceHigh - spec.PriceLow) * (rng.NextDouble() + rng.NextDouble()) / 2, 3);
            var verificationRoll = rng.NextDouble();
            var machine = new MarketMachine
            {
                Id = machineId,
                HostId = hostId,
                Hw = CreateHardware(rng, spec, numGpus, datacenter),
                PricePerGpu = price,
                MinBidPerGpu = Js.Round(price * (0.35 + rng.NextDouble() * 0.4), 3),
                StorageCost = Js.Round(0.05 + rng.NextDouble() * 0.25, 3),
                InetUpCost = Js.Round(rng.NextDouble() * 0.02, 4),
                InetDownCost = Js.Round(rng.NextDouble() * 0.02, 4),
                CreditDiscountMax = Js.Round(0.05 + rng.NextDouble() * 0.35, 2),
                StartDate = Math.Round(now - (1 + rng.NextDouble() * 400) * 86400),
                EndDate = Math.Round(now + (3 + rng.NextDouble() * 177) * 86400),
                Verification = verificationRoll < 0.75 ? "verified" : verificationRoll < 0.97 ? "unverified" : "deverified",
                Reliability = Js.Round(0.999 - 0.12 * Math.Pow(rng.NextDouble(), 3), 4),
                RentedGpus = rng.NextDouble() < 0.45 ? rng.Next(1, numGpus + 1) : 0,
                Usage30d = Js.Round(0.2 + rng.NextDouble() * 0.7, 3),
            };
            var minChunkRoll = rng.NextDouble();
            var minChunk = numGpus == 1 || minChunkRoll < 0.7 ? 1 : minChunkRoll < 0.85 ? 2 : numGpus;
            foreach (var chunk in Chunks(numGpus, minChunk))
            {
                if (offers >= offerCount)
                {
                    break;
                }

                int offerId;
                do
                {
                    offerId = rng.Next(10_000_000, 30_000_000);
                }
                while (!offerIds.Add(offerId));

                machine.OfferIds[chunk] = offerId;
                if (duplicateFraction > 0 && rng.NextDouble() < duplicateFraction)
                {
                    machine.DuplicateScoreFactor[chunk] = Js.Round(0.7 + rng.NextDouble() * 0.29, 3);
                }

                offers++;
            }

            machines.Add(machine);
        }

        return machines;
    }

    private static GpuSpec PickGpu(Random rng, int totalWeight)
    {
        var roll = rng.Next(totalWeight);
        foreach (var spec in GpuCatalog.All)
        {
            if (roll < spec.Weight)
            {
                return spec;
            }

            roll -= spec.Weight;
        }

        return GpuCatalog.All[0];
    }

    private static int PickNumGpus(Random rng, bool datacenterClass)
    {
        var roll = rng.NextDouble();
        return datacenterClass
            ? roll < 0.15 ? 1 : roll < 0.25 ? 2 : roll < 0.45 ? 4 : 8
            : roll < 0.35 ? 1 : roll < 0.55 ? 2 : roll < 0.75 ? 4 : 8;
    }

    private static string RandomIp(Random rng)
    {
        var ip = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{rng.Next(23, 223)}.{rng.Next(0, 256)}.{rng.Next(0, 256)}.{rng.Next(1, 255)}");
        var stray = rng.NextDouble();
        // Real offers occasionally carry stray whitespace in public_ipaddr (vast-api.md §5.2).
        return stray < 0.02 ? " " + ip : stray < 0.04 ? ip + "\n" : stray < 0.05 ? ip + " " : ip;
    }
}
