using System.Globalization;
using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>The search type of a bundles query (vast-api.md §5.1).</summary>
internal enum SearchType
{
    OnDemand,
    Bid,
    Reserved,
}

/// <summary>What an offer row is made of; own and market machines both produce these.</summary>
internal sealed record OfferInput(
    int Id,
    int MachineId,
    int HostId,
    Hardware Hw,
    int Chunk,
    double DphBase,
    double MinBid,
    double StorageCost,
    double InetUpCost,
    double InetDownCost,
    double CreditDiscountMax,
    double? StartDate,
    double? EndDate,
    string Verification,
    double Reliability,
    bool Rentable,
    double ScoreFactor = 1.0);

/// <summary>Renders the §5.2 offer object.</summary>
internal static class OfferBuilder
{
    /// <summary>Storage (GB) used for the stable <c>score</c>, independent of the query's allocated_storage.</summary>
    private const double ScoreStorageGb = 5.0;

    public static JsonObject Build(OfferInput o, double now, double allocatedStorage, SearchType type)
    {
        var hw = o.Hw;
        var frac = (double)o.Chunk / hw.NumGpus;
        var storageHour = allocatedStorage * o.StorageCost / Pricing.HoursPerMonth;
        var isBid = type == SearchType.Bid;
        var dphTotal = (isBid ? o.MinBid : o.DphBase) + storageHour;
        var dlperf = Js.Round(hw.DlperfPerGpu * o.Chunk, 4);
        var totalFlops = Js.Round(hw.Gpu.TflopsPerGpu * o.Chunk, 3);
        var scorePrice = o.DphBase + ScoreStorageGb * o.StorageCost / Pricing.HoursPerMonth;
        var scoreBase = scorePrice > 0 ? dlperf / scorePrice * o.Reliability * o.Reliability : 0;
        var discounted = dphTotal * (1 - o.CreditDiscountMax);
        var remaining = o.EndDate is { } end ? Math.Max(0, end - now) : (double?)null;
        var gpuIds = new JsonArray();
        for (var i = 0; i < o.Chunk; i++)
        {
            gpuIds.Add(i);
        }

        var breakdown = new JsonObject
        {
            ["gpuCostPerHour"] = isBid ? o.MinBid : o.DphBase,
            ["diskHour"] = storageHour,
            ["totalHour"] = dphTotal,
            ["discountTotalHour"] = dphTotal - discounted,
            ["discountedTotalPerHour"] = discounted,
        };
        return new JsonObject
        {
            ["id"] = o.Id,
            ["ask_contract_id"] = o.Id,
            ["bundle_id"] = o.Id,
            ["bundled_results"] = 0,
            ["machine_id"] = o.MachineId,
            ["host_id"] = o.HostId,
            ["hostname"] = null,
            ["num_gpus"] = o.Chunk,
            ["gpu_name"] = hw.Gpu.Name,
            ["gpu_ram"] = hw.Gpu.GpuRamMb,
            ["gpu_total_ram"] = hw.Gpu.GpuRamMb * o.Chunk,
            ["gpu_frac"] = Js.Round(frac, 4),
            ["gpu_arch"] = "nvidia",
            ["gpu_lanes"] = hw.GpuLanes,
            ["gpu_ids"] = gpuIds,
            ["gpu_mem_bw"] = hw.Gpu.MemBandwidth,
            ["gpu_max_power"] = hw.Gpu.MaxPower,
            ["gpu_max_temp"] = 83.0,
            ["gpu_display_active"] = false,
            ["compute_cap"] = hw.Gpu.ComputeCap,
            ["cuda_max_good"] = hw.CudaMaxGood,
            ["bw_nvlink"] = hw.Gpu.NvlinkBandwidth is { } nv ? nv : 0.0,
            ["cpu_name"] = hw.CpuName,
            ["cpu_cores"] = hw.CpuCores,
            ["cpu_cores_effective"] = Js.Round(hw.CpuCores * frac, 2),
            ["cpu_ghz"] = hw.CpuGhz,
            ["cpu_ram"] = (int)(hw.CpuRamMb * frac),
            ["cpu_arch"] = hw.CpuArch,
            ["disk_space"] = Js.Round(hw.MaxDiskSpace * 0.9 * frac, 1),
            ["disk_bw"] = hw.DiskBw,
            ["disk_name"] = hw.DiskName,
            ["inet_up"] = hw.InetUp,
            ["inet_down"] = hw.InetDown,
            ["inet_up_cost"] = o.InetUpCost,
            ["inet_down_cost"] = o.InetDownCost,
            ["internet_up_cost_per_tb"] = Js.Round(o.InetUpCost * 1024, 4),
            ["internet_down_cost_per_tb"] = Js.Round(o.InetDownCost * 1024, 4),
            ["direct_port_count"] = hw.DirectPortCount,
            ["pci_gen"] = hw.Gpu.PciGen,
            ["pcie_bw"] = hw.Gpu.PcieBandwidth,
            ["mobo_name"] = hw.MoboName,
            ["os_version"] = hw.UbuntuVersion,
            ["ubuntu_version"] = hw.UbuntuVersion,
            ["driver_version"] = hw.DriverVersion,
            ["driver_vers"] = hw.DriverVers,
            ["has_avx"] = 1,
            ["dph_base"] = o.DphBase,
            ["dph_total"] = dphTotal,
            ["dph_total_adj"] = dphTotal,
            ["min_bid"] = o.MinBid,
            ["dlperf"] = dlperf,
            ["dlperf_per_dphtotal"] = dphTotal > 0 ? dlperf / dphTotal : 0.0,
            ["flops_per_dphtotal"] = dphTotal > 0 ? totalFlops / dphTotal : 0.0,
            ["total_flops"] = totalFlops,
            ["score"] = Js.Round(scoreBase * o.ScoreFactor, 6),
            ["vram_costperhour"] = dphTotal / (hw.Gpu.GpuRamMb * o.Chunk / 1024.0),
            ["storage_cost"] = o.StorageCost,
            ["storage_total_cost"] = storageHour,
            ["credit_discount_max"] = o.CreditDiscountMax,
            ["discount_rate"] = o.CreditDiscountMax,
            ["discounted_hourly"] = o.DphBase * (1 - o.CreditDiscountMax),
            ["discounted_dph_total"] = discounted,
            ["rentable"] = o.Rentable,
            ["rented"] = !o.Rentable,
            ["is_bid"] = isBid,
            ["external"] = false,
            ["hosting_type"] = hw.HostingType,
            ["datacenter"] = hw.HostingType == 1,
            ["public_ipaddr"] = hw.PublicIp,
            ["geolocation"] = hw.Geolocation,
            ["geolocode"] = hw.Geolocode,
            ["reliability"] = o.Reliability,
            ["reliability2"] = o.Reliability,
            ["reliability_mult"] = Js.Round(Math.Pow(o.Reliability, 4), 6),
            ["expected_reliability"] = o.Reliability,
            ["verification"] = o.Verification,
            ["verified"] = o.Verification == "verified",
            ["vericode"] = o.Verification switch { "verified" => 1, "unverified" => 0, _ => -1 },
            ["static_ip"] = hw.StaticIp,
            ["vms_enabled"] = hw.VmsEnabled,
            ["is_vm_deverified"] = false,
            ["logo"] = "/static/logos/vastai_small2.png",
            ["webpage"] = null,
            ["resource_type"] = "gpu",
            ["start_date"] = o.StartDate,
            ["end_date"] = o.EndDate,
            ["duration"] = remaining,
            ["time_remaining"] = remaining is { } r ? FormatRemaining(r) : "",
            ["time_remaining_isbid"] = isBid && remaining is { } rb ? FormatRemaining(rb) : "",
            ["cluster_id"] = null,
            ["avail_vol_ask_id"] = null,
            ["avail_vol_dph"] = null,
            ["avail_vol_size"] = null,
            ["nw_disk_min_bw"] = null,
            ["nw_disk_max_bw"] = null,
            ["nw_disk_avg_bw"] = null,
            ["platform_fee"] = Pricing.PlatformFee,
            ["search"] = breakdown,
            ["instance"] = breakdown.DeepClone(),
        };
    }

    private static string FormatRemaining(double seconds)
    {
        var span = TimeSpan.FromSeconds(seconds);
        return span.TotalDays >= 1
            ? string.Create(CultureInfo.InvariantCulture, $"{span.TotalDays:0.0} days")
            : string.Create(CultureInfo.InvariantCulture, $"{span.TotalHours:0.0} hrs");
    }
}
