using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>Rendering of the documented objects: machine (§4), offers (§5.2), windows, reports, pending rows, user.</summary>
public sealed partial class EmulatorState
{
    private const int DiskPerContractGpuGb = 50;

    private JsonObject RenderMachineLocked(MachineRecord m, double now)
    {
        var hw = m.Hw;
        var active = m.Rentals.Where(r => r.Active).ToList();
        var running = active.Where(r => r.Running).ToList();
        var occupancy = new StringBuilder();
        var tokens = Enumerable.Repeat('x', hw.NumGpus).ToArray();
        foreach (var rental in running)
        {
            foreach (var index in rental.GpuIndexes)
            {
                tokens[index] = rental.Type switch
                {
                    RentalType.OnDemand => 'D',
                    RentalType.Reserved => 'R',
                    _ => 'I',
                };
            }
        }

        foreach (var token in tokens)
        {
            occupancy.Append(token).Append(' ');
        }

        var allocated = active.Sum(r => r.Gpus * DiskPerContractGpuGb);
        var reserve = (int)(hw.MaxDiskSpace * 0.072);
        var availDisk = Math.Max(0, hw.MaxDiskSpace - reserve - allocated);
        var days = EarningsByDayLocked(m, now);
        var today = (long)Math.Floor(now / 86400.0);
        var fractionOfToday = (now - today * 86400.0) / 86400.0;
        var earnDay = DayTotal(days, today) + DayTotal(days, today - 1) * (1 - fractionOfToday);
        var maintenance = m.Maintenance.Count == 0
            ? null
            : new JsonArray([.. m.Maintenance.Select(w => (JsonNode)new JsonObject
            {
                ["id"] = w.Id,
                ["machine_id"] = w.MachineId,
                ["start_time"] = w.StartTime,
                ["duration_hours"] = w.DurationHours,
                ["maintenance_category"] = w.Category,
                ["maintenance_reason"] = null,
            })]);
        return new JsonObject
        {
            ["id"] = m.Id,
            ["machine_id"] = m.Id,
            ["hostname"] = m.Hostname,
            ["geolocation"] = hw.Geolocation,
            ["timeout"] = m.OfflineSince is { } since ? (int)Math.Max(0, now - since) : 0,
            ["mobo_name"] = hw.MoboName,
            ["num_gpus"] = hw.NumGpus,
            ["total_flops"] = hw.TotalFlops,
            ["gpu_name"] = hw.Gpu.Name,
            ["gpu_ram"] = hw.Gpu.GpuRamMb,
            ["gpu_max_cur_temp"] = running.Count > 0 ? 71.0 : 34.0,
            ["gpu_lanes"] = hw.GpuLanes,
            ["gpu_mem_bw"] = hw.Gpu.MemBandwidth,
            ["bw_nvlink"] = hw.Gpu.NvlinkBandwidth,
            ["pcie_bw"] = hw.Gpu.PcieBandwidth,
            ["pci_gen"] = hw.Gpu.PciGen,
            ["cpu_name"] = hw.CpuName,
            ["cpu_ram"] = hw.CpuRamMb,
            ["cpu_cores"] = hw.CpuCores,
            ["cpu_arch"] = hw.CpuArch,
            ["listed"] = m.Listed,
            ["start_date"] = m.StartDate,
            ["end_date"] = m.EndDate,
            ["duration"] = m.DurationSeconds,
            ["credit_discount_max"] = m.CreditDiscountMax,
            ["listed_min_gpu_count"] = m.ListedMinGpuCount,
            ["listed_gpu_cost"] = m.ListedGpuCost,
            ["listed_storage_cost"] = m.ListedStorageCost,
            ["listed_volume_cost"] = m.ListedVolumeCost,
            ["volume_total_size"] = m.VolumeTotalSize,
            ["listed_inet_up_cost"] = m.ListedInetUpCost,
            ["listed_inet_down_cost"] = m.ListedInetDownCost,
            ["min_bid_price"] = m.MinBidPrice,
            ["gpu_occupancy"] = occupancy.ToString(),
            ["bid_gpu_cost"] = m.BidGpuCost,
            ["bid_image"] = m.BidImage,
            ["bid_image_args"] = m.BidImageArgs is null ? null : new JsonArray([.. m.BidImageArgs.Select(a => (JsonNode)JsonValue.Create(a))]),
            ["bid_image_args_str"] = m.BidImageArgs is null ? null : string.Join(' ', m.BidImageArgs),
            ["disk_space"] = (double)Math.Max(0, availDisk - (m.VolumeTotalSize ?? 0)),
            ["max_disk_space"] = hw.MaxDiskSpace,
            ["alloc_disk_space"] = allocated == 0 ? null : allocated,
            ["avail_disk_space"] = availDisk,
            ["disk_name"] = hw.DiskName,
            ["disk_bw"] = hw.DiskBw,
            ["inet_up"] = hw.InetUp,
            ["inet_down"] = hw.InetDown,
            ["earn_hour"] = Js.Round(running.Sum(r => r.Gpus * r.Price), 6),
            ["earn_day"] = Js.Round(earnDay, 4),
            ["verification"] = m.Verification,
            ["error_description"] = null,
            ["vm_error_msg"] = null,
            ["vm_error_level"] = null,
            ["current_rentals_running"] = running.Count,
            ["current_rentals_running_on_demand"] = running.Count(r => r.IsOnDemandLike),
            ["current_rentals_resident"] = active.Count,
            ["current_rentals_on_demand"] = active.Count(r => r.IsOnDemandLike),
            ["reliability2"] = m.Reliability2,
            ["direct_port_count"] = hw.DirectPortCount,
            ["public_ipaddr"] = hw.PublicIp,
            ["num_reports"] = m.Reports.Count,
            ["num_recent_reports"] = (double)m.Reports.Count(r => r.CreatedAt >= now - 30 * 86400),
            ["client_end_date"] = active.Count == 0 ? null : active.Max(r => r.EndDate),
            ["machine_maintenance"] = maintenance,
            ["clients"] = new JsonArray(),
            ["driver_version"] = hw.DriverVersion,
            ["cuda_max_good"] = hw.CudaMaxGood,
            ["kernel_version"] = null,
            ["ubuntu_version"] = hw.UbuntuVersion,
        };
    }

    private static double DayTotal(SortedDictionary<long, DayEarnings> days, long day) =>
        days.TryGetValue(day, out var e) ? e.Gpu + e.Storage + e.BandwidthUp + e.BandwidthDown : 0;

    private static JsonObject RenderWindow(MaintenanceWindow w) => new()
    {
        ["id"] = w.Id,
        ["machine_id"] = w.MachineId,
        ["start_time"] = w.StartTime,
        ["end_time"] = w.EndTime,
        ["duration_hours"] = w.DurationHours,
        ["maintenance_category"] = w.Category,
        ["maintenance_reason"] = null,
    };

    private static JsonObject RenderReport(RenterReport r) => new()
    {
        ["problem"] = r.Problem,
        ["message"] = r.Message,
        ["created_at"] = r.CreatedAt,
    };

    private static JsonObject RenderPendingLocked(PendingPriceIncrease p) => new()
    {
        ["pending_price_increase_id"] = p.Id,
        ["contract_id"] = p.ContractId,
        ["host_id"] = p.HostId,
        ["new_gpu_costpersec"] = p.NewGpu / 3600.0,
        ["old_gpu_costpersec"] = p.OldGpu / 3600.0,
        ["new_disk_ram_costpersec"] = p.NewDisk / (Pricing.HoursPerMonth * 3600.0),
        ["old_disk_ram_costpersec"] = p.OldDisk / (Pricing.HoursPerMonth * 3600.0),
        ["new_bwu_cost"] = p.NewBwu,
        ["old_bwu_cost"] = p.OldBwu,
        ["new_bwd_cost"] = p.NewBwd,
        ["old_bwd_cost"] = p.OldBwd,
        ["new_platform_fee"] = Pricing.PlatformFee,
        ["old_platform_fee"] = Pricing.PlatformFee,
        ["contract_end_date"] = p.ContractEndDate,
        ["ask_end_date"] = p.AskEndDate,
        ["created_at"] = p.CreatedAt,
    };

    /// <summary>Every GPU name in the market and among the machines, sorted (GET /gpu_names/unique/).</summary>
    private JsonObject GpuNamesLocked() => new()
    {
        ["gpu_names"] = new JsonArray([.. _market.Select(m => m.Hw.Gpu.Name).Concat(_machines.Values.Select(m => m.Hw.Gpu.Name))
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select(n => (JsonNode)JsonValue.Create(n))]),
    };

    /// <summary>The user object; <c>api_key</c> is the key of the request (the CLI pops it before printing, and fails without it).</summary>
    private static JsonObject RenderUser(Account a, string? key) => new()
    {
        ["id"] = a.UserId,
        ["api_key"] = key,
        ["key_id"] = a.KeyId,
        ["user"] = a.Username,
        ["username"] = a.Username,
        ["email"] = a.Email,
        ["fullname"] = a.Fullname,
        ["balance"] = a.Balance,
        ["credit"] = a.Credit,
        ["ssh_key"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEmulatedVastHostKeyOnlyForTests " + a.Username,
        ["sid"] = string.Create(CultureInfo.InvariantCulture, $"emu-session-{a.UserId}"),
        ["balance_threshold"] = 0.0,
        ["balance_threshold_enabled"] = false,
        ["billaddress_city"] = "Stockholm",
        ["billaddress_country"] = "SE",
        ["billaddress_line1"] = "1 Example Street",
        ["billaddress_line2"] = "",
        ["billaddress_zip"] = "11122",
        ["billed_expected"] = 0.0,
        ["billed_verified"] = 0.0,
        ["billing_creditonly"] = false,
        ["can_pay"] = true,
        ["email_verified"] = true,
        ["got_signup_credit"] = false,
        ["has_billing"] = true,
        ["has_payout"] = true,
        ["last4"] = "4242",
        ["paid_expected"] = 0.0,
        ["paid_verified"] = 0.0,
        ["password_resettable"] = true,
        ["paypal_email"] = null,
    };

    /// <summary>Earnings per day: the seeded history plus what contracts accrued (GPU time × price, per running segment).</summary>
    private static SortedDictionary<long, DayEarnings> EarningsByDayLocked(MachineRecord m, double now)
    {
        var days = new SortedDictionary<long, DayEarnings>();
        foreach (var day in m.History)
        {
            days[day.Day] = day;
        }

        foreach (var rental in m.Rentals)
        {
            foreach (var segment in rental.RunningSegments)
            {
                var from = segment.From;
                var to = Math.Min(segment.To ?? now, Math.Min(rental.EndDate, rental.EndedAt ?? double.MaxValue));
                while (from < to)
                {
                    var day = (long)Math.Floor(from / 86400.0);
                    var dayEnd = (day + 1) * 86400.0;
                    var slice = Math.Min(to, dayEnd) - from;
                    var earned = rental.Gpus * rental.Price * slice / 3600.0;
                    days[day] = days.TryGetValue(day, out var e) ? e with { Gpu = e.Gpu + earned } : new DayEarnings(day, earned, 0, 0, 0);
                    from = dayEnd;
                }
            }
        }

        return days;
    }

    private IEnumerable<OfferInput> OwnOfferInputsLocked(MachineRecord m)
    {
        if (!m.Listed || m.OfflineSince is not null)
        {
            yield break;
        }

        var free = FreeGpusLocked(m).Count;
        var price = m.ListedGpuCost ?? GpuCatalog.TypicalHostPrice(m.Hw.Gpu);
        foreach (var (chunk, id) in m.OfferIds)
        {
            yield return new OfferInput(
                id,
                m.Id,
                m.OwnerId,
                m.Hw,
                chunk,
                chunk * price / Pricing.HostShare,
                chunk * m.MinBidPrice / Pricing.HostShare,
                m.ListedStorageCost ?? 0.1,
                m.ListedInetUpCost ?? 0,
                m.ListedInetDownCost ?? 0,
                m.CreditDiscountMax ?? 0,
                m.StartDate,
                m.EndDate,
                m.Verification,
                m.Reliability2,
                free >= chunk);
        }
    }

    private IEnumerable<OfferInput> AllOfferInputsLocked(double now)
    {
        foreach (var m in _market)
        {
            if (m.EndDate <= now)
            {
                continue;
            }

            foreach (var (chunk, id) in m.OfferIds)
            {
                var input = new OfferInput(
                    id,
                    m.Id,
                    m.HostId,
                    m.Hw,
                    chunk,
                    chunk * m.PricePerGpu,
                    chunk * m.MinBidPerGpu,
                    m.StorageCost,
                    m.InetUpCost,
                    m.InetDownCost,
                    m.CreditDiscountMax,
                    m.StartDate,
                    m.EndDate,
                    m.Verification,
                    m.Reliability,
                    m.Hw.NumGpus - m.RentedGpus >= chunk);
                yield return input;
                if (m.DuplicateScoreFactor.TryGetValue(chunk, out var factor))
                {
                    yield return input with { ScoreFactor = factor };
                }
            }
        }

        foreach (var machine in _machines.Values)
        {
            foreach (var input in OwnOfferInputsLocked(machine))
            {
                yield return input;
            }
        }
    }
}
