using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>An authenticated (or, for bundles, anonymous) API call that passed faults and rate limits.</summary>
internal sealed record ApiRequest(int? CallerId, int? MachineId, string? UserSegment, IReadOnlyDictionary<string, string> Query, JsonNode? Body);

/// <summary>Status and JSON body of an answer; Applied = the call changed state.</summary>
internal sealed record ApiResult(int Status, JsonNode? Body, bool Applied = false);

/// <summary>The endpoint logic (vast-api.md §2), one method per endpoint, all under the state lock.</summary>
public sealed partial class EmulatorState
{
    private const string NoSuchMachine = "No such machine id";
    private const double Epsilon = 1e-12;

    private static readonly HashSet<string> MaintenanceCategories = new(StringComparer.Ordinal)
    {
        "power", "internet", "disk", "gpu", "software", "other", "not provided",
    };

    internal ApiResult Execute(string endpoint, ApiRequest request)
    {
        lock (_gate)
        {
            var now = Now;
            RefreshLocked(now);
            if (request.CallerId is not { } caller)
            {
                return endpoint == Endpoints.Bundles ? BundlesLocked(request, now) : new ApiResult(403, LoginRequired());
            }

            if (request.UserSegment is { } segment && !IsCaller(segment, caller))
            {
                return new ApiResult(403, Error("not_authorized", "You can only access your own account"));
            }

            var id = request.MachineId ?? 0;
            var body = request.Body as JsonObject ?? [];
            return endpoint switch
            {
                Endpoints.ShowMachines => ShowMachinesLocked(caller, now),
                Endpoints.ShowMachine => ShowMachineLocked(caller, id, now),
                Endpoints.CreateAsks => CreateAsksLocked(caller, body, now),
                Endpoints.Unlist => UnlistLocked(caller, id),
                Endpoints.MinBid => MinBidLocked(caller, id, body),
                Endpoints.CreateBids => CreateBidsLocked(caller, body),
                Endpoints.RemoveDefjob => RemoveDefjobLocked(caller, id),
                Endpoints.Dnotify => DnotifyLocked(caller, id, body, now),
                Endpoints.CancelMaint => CancelMaintLocked(caller, id, now),
                Endpoints.Maintenances => MaintenancesLocked(caller, request.Query),
                Endpoints.Reports => ReportsLocked(caller, id),
                Endpoints.Cleanup => CleanupLocked(caller, id, now),
                Endpoints.ForceDelete => ForceDeleteLocked(caller, id),
                Endpoints.Earnings => EarningsLocked(caller, request.Query, now),
                Endpoints.CurrentUser => new ApiResult(200, RenderUser(_accounts.First(a => a.UserId == caller))),
                Endpoints.Bundles => BundlesLocked(request, now),
                Endpoints.GpuMetrics => GpuMetricsLocked(caller, request.Query, now),
                Endpoints.PendingPriceIncreases => PendingLocked(caller),
                Endpoints.Invoices => InvoicesLocked(caller, request.Query, now),
                _ => new ApiResult(404, Error("not_found", "Unknown endpoint")),
            };
        }
    }

    internal static JsonObject LoginRequired() => Error("auth_error", "This action requires login.");

    internal static JsonObject Error(string error, string msg) => new() { ["success"] = false, ["error"] = error, ["msg"] = msg };

    private static bool IsCaller(string segment, int caller) =>
        segment is "me" or "current" or "0" || segment == caller.ToString(CultureInfo.InvariantCulture);

    private static JsonObject NotFound(int id, int caller) => new()
    {
        ["success"] = false,
        ["error"] = "not_found",
        ["msg"] = NoSuchMachine,
        ["machine_id"] = id,
        ["user_id"] = caller,
    };

    private MachineRecord? OwnedLocked(int id, int caller) =>
        _machines.TryGetValue(id, out var m) && m.OwnerId == caller ? m : null;

    // ---------------------------------------------------------------- machines

    private ApiResult ShowMachinesLocked(int caller, double now) =>
        new(200, new JsonObject
        {
            ["machines"] = new JsonArray([.. _machines.Values.Where(m => m.OwnerId == caller).Select(m => (JsonNode)RenderMachineLocked(m, now))]),
        });

    private ApiResult ShowMachineLocked(int caller, int id, double now)
    {
        if (!_machines.TryGetValue(id, out var m))
        {
            return new(404, NotFound(id, caller));
        }

        return m.OwnerId != caller
            ? new(403, Error("not_authorized", "Only the machine owner can view this machine"))
            : new(200, new JsonArray(RenderMachineLocked(m, now)));
    }

    private ApiResult CreateAsksLocked(int caller, JsonObject body, double now)
    {
        const string BadChunk = "Invalid machine id or min_chunk";
        const string BadParams = "Invalid machine id or parameters";
        static ApiResult Invalid(string msg) => new(400, new JsonObject { ["error"] = "invalid_args", ["msg"] = msg });

        // The backend does int(params["machine"]) and int(params.get("min_chunk", 1)): an explicit null fails.
        if (!body.TryGetPropertyValue("machine", out var machineNode) || !Js.TryInt(machineNode, out var id))
        {
            return Invalid(BadChunk);
        }

        var minChunk = 1;
        if (body.TryGetPropertyValue("min_chunk", out var chunkNode) && !Js.TryInt(chunkNode, out minChunk))
        {
            return Invalid(BadChunk);
        }

        if (!_machines.TryGetValue(id, out var m))
        {
            return Invalid(BadParams);
        }

        if (m.OwnerId != caller)
        {
            return new(403, new JsonObject { ["error"] = "not_authorized", ["msg"] = "Only machine owner can create ask contracts" });
        }

        if (minChunk < 1 || minChunk > m.Hw.NumGpus || (minChunk & (minChunk - 1)) != 0)
        {
            return Invalid(BadChunk);
        }

        if (!OptionalNumber(body, "price_gpu", out var priceGpu) || !OptionalNumber(body, "price_disk", out var priceDisk)
            || !OptionalNumber(body, "price_inetu", out var priceInetu) || !OptionalNumber(body, "price_inetd", out var priceInetd)
            || !OptionalNumber(body, "price_min_bid", out var priceMinBid) || !OptionalNumber(body, "end_date", out var endDate)
            || !OptionalNumber(body, "credit_discount_max", out var discount) || !OptionalNumber(body, "vol_price", out var volPrice)
            || !OptionalNumber(body, "vol_size", out var volSizeRaw) || !OptionalDuration(body, out var duration))
        {
            return Invalid(BadParams);
        }

        if (new[] { priceGpu, priceDisk, priceInetu, priceInetd, priceMinBid, volPrice }.Any(p => p is < 0)
            || discount is < 0 or > 1 || volSizeRaw is < 0 || volSizeRaw > m.Hw.MaxDiskSpace
            || (volSizeRaw is 0 && volPrice is not null) || duration is <= 0)
        {
            return Invalid(BadParams);
        }

        if (endDate is not null && duration is not null)
        {
            return new(200, new JsonObject { ["success"] = false, ["msg"] = "end_date and duration cannot be combined" });
        }

        if (endDate is { } requestedEnd && requestedEnd <= now)
        {
            return new(200, new JsonObject { ["success"] = false, ["msg"] = "end_date must be in the future" });
        }

        // Apply: a null price keeps the current value (documented choice; the reference is silent).
        if (!m.Listed)
        {
            m.StartDate = now;
        }

        m.Listed = true;
        m.ListedGpuCost = priceGpu ?? m.ListedGpuCost ?? GpuCatalog.TypicalHostPrice(m.Hw.Gpu);
        m.ListedStorageCost = priceDisk ?? m.ListedStorageCost ?? 0.10;
        m.ListedInetUpCost = priceInetu ?? m.ListedInetUpCost ?? 0.0;
        m.ListedInetDownCost = priceInetd ?? m.ListedInetDownCost ?? 0.0;
        m.MinBidPrice = priceMinBid ?? m.MinBidPrice;
        m.ListedMinGpuCount = minChunk;
        m.CreditDiscountMax = discount ?? m.CreditDiscountMax ?? 0.4;
        if (endDate is { } end)
        {
            m.EndDate = end;
            m.DurationSeconds = null;
            m.DurationSetAt = null;
        }
        else if (duration is { } seconds)
        {
            m.DurationSeconds = seconds;
            m.DurationSetAt = now;
            m.EndDate = now + seconds;
        }
        else if (m.EndDate <= now)
        {
            m.EndDate = null;
        }

        if (volSizeRaw is { } volSize)
        {
            m.VolumeTotalSize = (int)volSize;
        }

        m.ListedVolumeCost = m.VolumeTotalSize == 0 ? null : volPrice ?? m.ListedVolumeCost ?? m.ListedStorageCost;
        AssignOfferIdsLocked(m);

        // Raising a price above an on-demand contract's price: one pending row per contract (updated, not duplicated).
        foreach (var rental in m.ActiveRentals.Where(r => r.Type == RentalType.OnDemand))
        {
            var raised = m.ListedGpuCost > rental.Price + Epsilon || m.ListedStorageCost > rental.DiskPrice + Epsilon
                || m.ListedInetUpCost > rental.InetUpPrice + Epsilon || m.ListedInetDownCost > rental.InetDownPrice + Epsilon;
            var row = _pending.FirstOrDefault(p => p.ContractId == rental.Id);
            if (!raised)
            {
                if (row is not null)
                {
                    _pending.Remove(row);
                }

                continue;
            }

            if (row is null)
            {
                _pending.Add(new PendingPriceIncrease
                {
                    Id = _nextPendingId++,
                    ContractId = rental.Id,
                    MachineId = m.Id,
                    HostId = m.OwnerId,
                    NewGpu = m.ListedGpuCost.Value,
                    OldGpu = rental.Price,
                    NewDisk = m.ListedStorageCost.Value,
                    OldDisk = rental.DiskPrice,
                    NewBwu = m.ListedInetUpCost.Value,
                    OldBwu = rental.InetUpPrice,
                    NewBwd = m.ListedInetDownCost.Value,
                    OldBwd = rental.InetDownPrice,
                    ContractEndDate = rental.EndDate,
                    AskEndDate = m.EndDate,
                    CreatedAt = now,
                });
            }
            else
            {
                row.NewGpu = m.ListedGpuCost.Value;
                row.NewDisk = m.ListedStorageCost.Value;
                row.NewBwu = m.ListedInetUpCost.Value;
                row.NewBwd = m.ListedInetDownCost.Value;
                row.AskEndDate = m.EndDate;
                row.CreatedAt = now;
            }
        }

        // Contracts pushed out to the new end date: only when one was sent, only on the same or cheaper terms.
        var extended = 0;
        if ((endDate is not null || duration is not null) && m.EndDate is { } newEnd)
        {
            foreach (var rental in m.ActiveRentals.Where(r => r.Type != RentalType.Reserved && newEnd > r.EndDate))
            {
                var gpuPrice = rental.Type == RentalType.OnDemand ? m.ListedGpuCost.Value : m.MinBidPrice;
                var sameOrCheaper = gpuPrice <= rental.Price + Epsilon && m.ListedStorageCost <= rental.DiskPrice + Epsilon
                    && m.ListedInetUpCost <= rental.InetUpPrice + Epsilon && m.ListedInetDownCost <= rental.InetDownPrice + Epsilon;
                if (sameOrCheaper && _pending.All(p => p.ContractId != rental.Id))
                {
                    rental.EndDate = newEnd;
                    extended++;
                }
            }
        }

        return new(200, new JsonObject { ["success"] = true, ["extended"] = extended }, Applied: true);
    }

    private ApiResult UnlistLocked(int caller, int id)
    {
        if (OwnedLocked(id, caller) is not { } m)
        {
            return new(404, NotFound(id, caller));
        }

        m.Listed = false;
        m.OfferIds.Clear();
        m.DurationSeconds = null;
        m.DurationSetAt = null;
        return new(200, new JsonObject { ["success"] = true, ["machine_id"] = id, ["user_id"] = caller }, Applied: true);
    }

    private ApiResult MinBidLocked(int caller, int id, JsonObject body)
    {
        if (OwnedLocked(id, caller) is not { } m)
        {
            return new(403, Error("not_authorized", "Only machine owner can set the min bid price"));
        }

        if (!body.TryGetPropertyValue("price", out var priceNode) || !Js.TryNumberOrString(priceNode, out var price) || price < 0)
        {
            return new(422, Error("invalid_args", "price must be a number >= 0"));
        }

        m.MinBidPrice = price;
        return new(200, new JsonObject { ["success"] = true, ["you_sent"] = body.DeepClone() }, Applied: true);
    }

    private ApiResult CreateBidsLocked(int caller, JsonObject body)
    {
        if (!body.TryGetPropertyValue("machine", out var machineNode) || !Js.TryInt(machineNode, out var id) || !_machines.TryGetValue(id, out var m))
        {
            return new(400, Error("invalid_args", "Invalid machine id"));
        }

        if (m.OwnerId != caller)
        {
            return new(403, Error("not_authorized", "Only machine owner can create bid contracts"));
        }

        if (Js.String(body["image"]) is not { Length: > 0 } image)
        {
            return new(400, Error("invalid_args", "image is required"));
        }

        if (!OptionalNumber(body, "price_gpu", out var priceGpu) || !OptionalNumber(body, "price_inetu", out var inetu)
            || !OptionalNumber(body, "price_inetd", out var inetd) || priceGpu is < 0 || inetu is < 0 || inetd is < 0)
        {
            return new(400, Error("invalid_args", "Invalid price"));
        }

        List<string>? args = null;
        switch (body["args"])
        {
            case null:
                break;
            case JsonArray array when array.All(a => Js.Kind(a) is JsonValueKind.String or JsonValueKind.Number):
                args = [.. array.Select(Js.ScalarText)];
                break;
            default:
                return new(400, Error("invalid_args", "args must be a list of strings"));
        }

        m.BidImage = image;
        m.BidImageArgs = args ?? [];
        m.BidGpuCost = priceGpu ?? m.MinBidPrice;
        m.BidInetUpCost = inetu;
        m.BidInetDownCost = inetd;
        return new(200, new JsonObject { ["success"] = true, ["machine_id"] = id, ["user_id"] = caller, ["you_sent"] = body.DeepClone() }, Applied: true);
    }

    private ApiResult RemoveDefjobLocked(int caller, int id)
    {
        if (OwnedLocked(id, caller) is not { } m)
        {
            return new(404, NotFound(id, caller));
        }

        m.BidImage = null;
        m.BidImageArgs = null;
        m.BidGpuCost = null;
        m.BidInetUpCost = null;
        m.BidInetDownCost = null;
        return new(200, new JsonObject { ["success"] = true, ["machine_id"] = id, ["user_id"] = caller }, Applied: true);
    }

    // ---------------------------------------------------------------- maintenance

    private ApiResult DnotifyLocked(int caller, int id, JsonObject body, double now)
    {
        if (OwnedLocked(id, caller) is not { } m)
        {
            return new(404, NotFound(id, caller));
        }

        if (!TryEpoch(body["sdate"], out var start))
        {
            return new(400, Error("invalid_args", "sdate must be unix seconds or an ISO-8601 date"));
        }

        if (!Js.TryNumberOrString(body["duration"], out var hours) || hours <= 0 || hours > 24 * 366)
        {
            return new(400, Error("invalid_args", "duration must be a positive number of hours"));
        }

        var category = body.ContainsKey("maintenance_category") ? Js.String(body["maintenance_category"]) : "not provided";
        if (category is null || !MaintenanceCategories.Contains(category))
        {
            return new(400, Error("invalid_args", "maintenance_category must be one of power, internet, disk, gpu, software, other"));
        }

        if (start + hours * 3600 <= now)
        {
            return new(400, Error("invalid_args", "The maintenance window is in the past"));
        }

        // maintenance_reason (removed from the CLI) is accepted and ignored.
        m.Maintenance.Add(new MaintenanceWindow { Id = _nextMaintenanceId++, MachineId = id, StartTime = start, DurationHours = hours, Category = category });
        var notified = m.ActiveRentals.Count();
        return new(200, new JsonObject
        {
            ["success"] = true,
            ["you_sent"] = string.Create(CultureInfo.InvariantCulture, $"{notified} notifications sent"),
        }, Applied: true);
    }

    private ApiResult CancelMaintLocked(int caller, int id, double now)
    {
        if (OwnedLocked(id, caller) is not { } m)
        {
            return new(404, new JsonObject { ["success"] = false, ["msg"] = NoSuchMachine, ["machine_id"] = id, ["user_id"] = caller });
        }

        var deleted = m.Maintenance.Count;
        m.Maintenance.Clear();
        return new(200, new JsonObject
        {
            ["success"] = true,
            ["ctime"] = now,
            ["machine_id"] = id,
            ["msg"] = string.Create(CultureInfo.InvariantCulture, $"deleted {deleted} scheduled maintenance window(s) on machine {id}"),
        }, Applied: true);
    }

    private ApiResult MaintenancesLocked(int caller, IReadOnlyDictionary<string, string> query)
    {
        HashSet<int>? ids = null;
        if (query.TryGetValue("machine_ids", out var raw))
        {
            if (!TryIdList(raw, out var parsed))
            {
                return new(400, Error("invalid_args", "machine_ids must be a JSON list of machine ids"));
            }

            ids = parsed;
        }

        var windows = _machines.Values
            .Where(m => m.OwnerId == caller && (ids is null || ids.Contains(m.Id)))
            .SelectMany(m => m.Maintenance)
            .OrderBy(w => w.StartTime)
            .ThenBy(w => w.Id);
        return new(200, new JsonArray([.. windows.Select(w => (JsonNode)RenderWindow(w))]));
    }

    private ApiResult ReportsLocked(int caller, int id)
    {
        if (!_machines.TryGetValue(id, out var m))
        {
            return new(404, NotFound(id, caller));
        }

        return m.OwnerId != caller
            ? new(403, Error("not_authorized", "Only machine owner can view reports"))
            : new(200, new JsonArray([.. m.Reports.Select(r => (JsonNode)RenderReport(r))]));
    }

    private ApiResult CleanupLocked(int caller, int id, double now)
    {
        if (!_machines.TryGetValue(id, out var m))
        {
            return new(400, Error("invalid_args", "Invalid machine id"));
        }

        if (m.OwnerId != caller)
        {
            return new(403, Error("not_authorized", "Only machine owner can clean up contracts"));
        }

        var deleted = m.ExpiredStorageContracts;
        m.ExpiredStorageContracts = 0;
        return new(200, new JsonObject
        {
            ["success"] = true,
            ["ctime"] = now,
            ["machine_id"] = id,
            ["user_id"] = caller,
            ["num_deleted"] = deleted,
            ["msg"] = string.Create(CultureInfo.InvariantCulture, $"deleted {deleted} expired contracts on machine {id}"),
        }, Applied: true);
    }

    private ApiResult ForceDeleteLocked(int caller, int id)
    {
        if (!_machines.TryGetValue(id, out var m))
        {
            return new(200, new JsonObject { ["success"] = false, ["msg"] = NoSuchMachine });
        }

        if (m.OwnerId != caller)
        {
            return new(200, new JsonObject { ["success"] = false, ["msg"] = "Only machine owner can delete a machine" });
        }

        if (m.ActiveRentals.Any())
        {
            return new(200, new JsonObject { ["success"] = false, ["msg"] = "Machine has active client contracts" });
        }

        _machines.Remove(id);
        return new(200, new JsonObject { ["success"] = true }, Applied: true);
    }

    // ---------------------------------------------------------------- earnings, user, invoices

    private ApiResult EarningsLocked(int caller, IReadOnlyDictionary<string, string> query, double now)
    {
        if (!QueryNumber(query, "sday", out var sday) || !QueryNumber(query, "eday", out var eday) || !QueryNumber(query, "last_days", out var lastDays))
        {
            return new(400, Error("invalid_args", "sday, eday and last_days must be numbers"));
        }

        int? machid = null;
        if (query.TryGetValue("machid", out var rawMachid) && Js.ParseQueryValue(rawMachid) is { } machidNode && Js.Kind(machidNode) != JsonValueKind.Null)
        {
            if (!Js.TryInt(machidNode, out var parsed))
            {
                return new(400, Error("invalid_args", "machid must be a machine id or null"));
            }

            machid = parsed;
        }

        if (lastDays is { } last && sday is null)
        {
            sday = now / 86400.0 - last;
            eday ??= now / 86400.0;
        }

        var first = sday is { } s ? (long)Math.Floor(s) : long.MinValue;
        var lastDay = eday is { } e ? (long)Math.Floor(e) : long.MaxValue;
        var perDay = new SortedDictionary<long, DayEarnings>();
        var perMachine = new JsonArray();
        var machines = _machines.Values.Where(m => m.OwnerId == caller && (machid is null || m.Id == machid)).ToList();
        foreach (var m in machines)
        {
            var days = EarningsByDayLocked(m, now).Values.Where(d => d.Day >= first && d.Day <= lastDay).ToList();
            perMachine.Add(new JsonObject
            {
                ["machine_id"] = m.Id,
                ["gpu_earn"] = Js.Round(days.Sum(d => d.Gpu), 6),
                ["sto_earn"] = Js.Round(days.Sum(d => d.Storage), 6),
                ["bwu_earn"] = Js.Round(days.Sum(d => d.BandwidthUp), 6),
                ["bwd_earn"] = Js.Round(days.Sum(d => d.BandwidthDown), 6),
            });
            foreach (var d in days)
            {
                perDay[d.Day] = perDay.TryGetValue(d.Day, out var sum)
                    ? new DayEarnings(d.Day, sum.Gpu + d.Gpu, sum.Storage + d.Storage, sum.BandwidthUp + d.BandwidthUp, sum.BandwidthDown + d.BandwidthDown)
                    : d;
            }
        }

        var account = _accounts.First(a => a.UserId == caller);
        var today = (long)Math.Floor(now / 86400.0);
        var unpaid = _machines.Values.Where(m => m.OwnerId == caller)
            .SelectMany(m => EarningsByDayLocked(m, now).Values)
            .Where(d => d.Day >= today - 7)
            .Sum(d => d.Gpu + d.Storage + d.BandwidthUp + d.BandwidthDown);
        return new(200, new JsonObject
        {
            ["summary"] = new JsonObject
            {
                ["total_gpu"] = Js.Round(perDay.Values.Sum(d => d.Gpu), 6),
                ["total_stor"] = Js.Round(perDay.Values.Sum(d => d.Storage), 6),
                ["total_bwu"] = Js.Round(perDay.Values.Sum(d => d.BandwidthUp), 6),
                ["total_bwd"] = Js.Round(perDay.Values.Sum(d => d.BandwidthDown), 6),
            },
            ["username"] = account.Username,
            ["email"] = account.Email,
            ["fullname"] = account.Fullname,
            ["address1"] = "1 Example Street",
            ["address2"] = "",
            ["city"] = "Stockholm",
            ["zip"] = "11122",
            ["country"] = "SE",
            ["taxinfo"] = "",
            ["current"] = new JsonObject
            {
                ["balance"] = Js.Round(unpaid, 2),
                ["service_fee"] = 0.0,
                ["total"] = Js.Round(unpaid, 2),
                ["credit"] = account.Credit,
            },
            ["per_machine"] = perMachine,
            ["per_day"] = new JsonArray([.. perDay.Values.Select(d => (JsonNode)new JsonObject
            {
                ["day"] = d.Day,
                ["gpu_earn"] = Js.Round(d.Gpu, 6),
                ["sto_earn"] = Js.Round(d.Storage, 6),
                ["bwu_earn"] = Js.Round(d.BandwidthUp, 6),
                ["bwd_earn"] = Js.Round(d.BandwidthDown, 6),
            })]),
        });
    }

    private ApiResult InvoicesLocked(int caller, IReadOnlyDictionary<string, string> query, double now)
    {
        double? from = null;
        double? to = null;
        if (query.TryGetValue("select_filters", out var rawFilters) && Js.ParseQueryValue(rawFilters) is JsonObject filters
            && filters["when"] is JsonObject when)
        {
            from = Js.TryNumberOrString(when["gte"] ?? when["gt"], out var f) ? f : null;
            to = Js.TryNumberOrString(when["lte"] ?? when["lt"], out var t) ? t : null;
        }

        if (from is null || to is null || from > to)
        {
            return new(200, new JsonObject { ["success"] = false, ["error"] = "Invalid date range" });
        }

        // Weekly payouts of the (seeded + accrued) earnings, oldest week first.
        var days = _machines.Values.Where(m => m.OwnerId == caller).SelectMany(m => EarningsByDayLocked(m, now).Values)
            .GroupBy(d => d.Day).ToDictionary(g => g.Key, g => g.Sum(d => d.Gpu + d.Storage + d.BandwidthUp + d.BandwidthDown));
        var today = (long)Math.Floor(now / 86400.0);
        var rows = new List<JsonObject>();
        for (var weekStart = today - 28; weekStart + 7 <= today; weekStart += 7)
        {
            var amount = Enumerable.Range(0, 7).Sum(i => days.TryGetValue(weekStart + i, out var v) ? v : 0);
            var start = weekStart * 86400.0;
            var end = (weekStart + 7) * 86400.0;
            if (end < from || end > to)
            {
                continue;
            }

            var invoiceId = 700_000 + (int)(weekStart % 100_000);
            rows.Add(new JsonObject
            {
                ["start"] = start,
                ["end"] = end,
                ["type"] = "payout",
                ["source"] = "transfer",
                ["description"] = "Payout for machine earnings",
                ["amount"] = Js.Round(amount, 2),
                ["metadata"] = new JsonObject { ["invoice_id"] = invoiceId, ["service"] = "transfer" },
                ["items"] = new JsonArray(),
            });
        }

        var latestFirst = !query.TryGetValue("latest_first", out var lf) || !lf.Equals("false", StringComparison.OrdinalIgnoreCase);
        if (latestFirst)
        {
            rows.Reverse();
        }

        var limit = query.TryGetValue("limit", out var rawLimit) && int.TryParse(rawLimit, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) ? Math.Clamp(l, 1, 100) : 60;
        var page = rows.Take(limit).ToList();
        return new(200, new JsonObject
        {
            ["success"] = true,
            ["count"] = page.Count,
            ["total"] = rows.Count,
            ["next_token"] = null,
            ["results"] = new JsonArray([.. page]),
        });
    }

    private ApiResult PendingLocked(int caller)
    {
        var rows = _pending.Where(p => p.HostId == caller).Select(p => (JsonNode)RenderPendingLocked(p)).ToList();
        return new(200, new JsonObject
        {
            ["success"] = true,
            ["count"] = rows.Count,
            ["truncated"] = false,
            ["pending_price_increases"] = new JsonArray([.. rows]),
        });
    }

    // ---------------------------------------------------------------- market

    private ApiResult BundlesLocked(ApiRequest request, double now)
    {
        var q = request.Body as JsonObject;
        JsonArray? selectCols = null;
        if (q is not null && q.ContainsKey("select_cols") && q["q"] is JsonObject inner)
        {
            // PUT /search/asks/ form: {"select_cols": [...], "q": {...}}.
            selectCols = q["select_cols"] as JsonArray;
            q = inner;
        }

        if (q is null)
        {
            return new(400, new JsonObject { ["error"] = "invalid_request", ["msg"] = "Invalid json body" });
        }

        var query = OfferQuery.Parse(q, out var error);
        if (query is null)
        {
            return new(400, new JsonObject { ["error"] = "invalid_request", ["msg"] = error });
        }

        var rows = query.Apply(AllOfferInputsLocked(now).Select(o => OfferBuilder.Build(o, now, query.AllocatedStorage, query.Type)));
        var columns = selectCols?.Select(Js.String).OfType<string>().ToList();
        var offers = new JsonArray();
        foreach (var row in rows)
        {
            if (columns is null || columns.Contains("*"))
            {
                offers.Add(row);
                continue;
            }

            var projected = new JsonObject();
            foreach (var column in columns)
            {
                if (row.TryGetPropertyValue(column, out var value))
                {
                    projected[column] = value?.DeepClone();
                }
            }

            offers.Add(projected);
        }

        return new(200, new JsonObject { ["offers"] = offers });
    }

    private ApiResult GpuMetricsLocked(int caller, IReadOnlyDictionary<string, string> query, double now)
    {
        var verified = query.GetValueOrDefault("verified", "all").ToLowerInvariant();
        var hosting = query.GetValueOrDefault("hosting_type", "all").ToLowerInvariant();
        var numGpusRaw = query.GetValueOrDefault("num_gpus", "all").ToLowerInvariant();
        int? numGpus = null;
        if (verified is not ("yes" or "no" or "all" or "true" or "false") || hosting is not ("all" or "secure_cloud" or "community" or "datacenter" or "0" or "1"))
        {
            return new(400, Error("invalid_args", "verified must be yes|no|all and hosting_type all|secure_cloud|community"));
        }

        if (numGpusRaw != "all")
        {
            if (!int.TryParse(numGpusRaw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) || n < 1)
            {
                return new(400, Error("invalid_args", "num_gpus must be all or a GPU count"));
            }

            numGpus = n;
        }

        if (_machines.Values.All(m => m.OwnerId != caller))
        {
            return new(200, new JsonObject { ["success"] = true, ["gpus"] = new JsonArray(), ["needs_machine"] = true });
        }

        // Units: whole machines for num_gpus=all, offers of exactly N GPUs otherwise; deduplicated by offer id.
        var units = new List<(string Gpu, int Gpus, bool Rented, bool Verified, double PricePerGpu, double DlperfPerGpu, double Tflops, double Usage30d)>();
        var seen = new HashSet<int>();
        foreach (var offers in AllOfferInputsLocked(now).Where(o => seen.Add(o.Id)).GroupBy(o => o.MachineId))
        {
            var list = offers.ToList();
            var hw = list[0].Hw;
            var isVerified = list[0].Verification == "verified";
            if ((verified is "yes" or "true" && !isVerified) || (verified is "no" or "false" && isVerified)
                || (hosting is "secure_cloud" or "datacenter" or "1" && hw.HostingType != 1) || (hosting is "community" or "0" && hw.HostingType != 0))
            {
                continue;
            }

            var market = _market.FirstOrDefault(m => m.Id == list[0].MachineId);
            var usage30d = market?.Usage30d ?? 0.5;
            if (numGpus is null)
            {
                var whole = list.MaxBy(o => o.Chunk)!;
                var rented = market?.RentedGpus ?? (_machines.TryGetValue(whole.MachineId, out var own) ? hw.NumGpus - FreeGpusLocked(own).Count : 0);
                var price = whole.DphBase / whole.Chunk;
                for (var i = 0; i < hw.NumGpus; i++)
                {
                    units.Add((hw.Gpu.Name, 1, i < rented, isVerified, price, hw.DlperfPerGpu, hw.Gpu.TflopsPerGpu, usage30d));
                }
            }
            else
            {
                foreach (var offer in list.Where(o => o.Chunk == numGpus))
                {
                    for (var i = 0; i < offer.Chunk; i++)
                    {
                        units.Add((hw.Gpu.Name, 1, !offer.Rentable, isVerified, offer.DphBase / offer.Chunk, hw.DlperfPerGpu, hw.Gpu.TflopsPerGpu, usage30d));
                    }
                }
            }
        }

        var gpus = new JsonArray();
        foreach (var group in units.GroupBy(u => u.Gpu).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal))
        {
            var all = group.ToList();
            var available = all.Where(u => !u.Rented).ToList();
            var priced = (available.Count > 0 ? available : all).Select(u => u.PricePerGpu).Order().ToList();
            var dlperf = all.Average(u => u.DlperfPerGpu);
            var tflops = all.Average(u => u.Tflops);
            var median = Percentile(priced, 0.5);
            gpus.Add(new JsonObject
            {
                ["gpu_name"] = group.Key,
                ["total"] = all.Count,
                ["available"] = available.Count,
                ["rented_verified"] = all.Count(u => u.Rented && u.Verified),
                ["avail_verified"] = available.Count(u => u.Verified),
                ["rented_unverified"] = all.Count(u => u.Rented && !u.Verified),
                ["avail_unverified"] = available.Count(u => !u.Verified),
                ["usage"] = Js.Round((double)(all.Count - available.Count) / all.Count, 4),
                ["usage_30d"] = Js.Round(all.Average(u => u.Usage30d), 4),
                ["dlperf"] = Js.Round(dlperf, 3),
                ["tflops"] = Js.Round(tflops, 3),
                ["price_p10"] = Js.Round(Percentile(priced, 0.10), 4),
                ["price_p25"] = Js.Round(Percentile(priced, 0.25), 4),
                ["price_median"] = Js.Round(median, 4),
                ["price_p75"] = Js.Round(Percentile(priced, 0.75), 4),
                ["price_p90"] = Js.Round(Percentile(priced, 0.90), 4),
                ["tflops_per_dollar"] = median > 0 ? Js.Round(tflops / median, 3) : 0.0,
                ["dlperf_per_dollar"] = median > 0 ? Js.Round(dlperf / median, 3) : 0.0,
            });
        }

        return new(200, new JsonObject { ["success"] = true, ["gpus"] = gpus });
    }

    /// <summary>Linear-interpolation percentile (numpy's default) of sorted values.</summary>
    internal static double Percentile(IReadOnlyList<double> sorted, double p)
    {
        if (sorted.Count == 0)
        {
            return 0;
        }

        var rank = p * (sorted.Count - 1);
        var lower = (int)Math.Floor(rank);
        var upper = Math.Min(lower + 1, sorted.Count - 1);
        return sorted[lower] + (sorted[upper] - sorted[lower]) * (rank - lower);
    }

    // ---------------------------------------------------------------- parsing helpers

    /// <summary>Absent or null → null (true); a number or numeric string → value (true); anything else → false.</summary>
    private static bool OptionalNumber(JsonObject body, string key, out double? value)
    {
        value = null;
        if (!body.TryGetPropertyValue(key, out var node) || node is null)
        {
            return true;
        }

        if (!Js.TryNumberOrString(node, out var number))
        {
            return false;
        }

        value = number;
        return true;
    }

    /// <summary>duration: "n days|weeks|months|years" or total seconds (number or string).</summary>
    private static bool OptionalDuration(JsonObject body, out double? seconds)
    {
        seconds = null;
        if (!body.TryGetPropertyValue("duration", out var node) || node is null)
        {
            return true;
        }

        if (Js.TryNumberOrString(node, out var total))
        {
            seconds = total;
            return true;
        }

        var parts = (Js.String(node) ?? "").Trim().ToLowerInvariant().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 2 || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var n))
        {
            return false;
        }

        double? unit = parts[1].TrimEnd('s') switch
        {
            "second" => 1,
            "minute" => 60,
            "hour" => 3600,
            "day" => 86400,
            "week" => 7 * 86400,
            "month" => 30 * 86400,
            "year" => 365 * 86400,
            _ => null,
        };
        if (unit is null)
        {
            return false;
        }

        seconds = n * unit.Value;
        return true;
    }

    private static bool TryEpoch(JsonNode? node, out double epoch)
    {
        if (Js.TryNumberOrString(node, out epoch))
        {
            return epoch > 0;
        }

        if (Js.String(node) is { } text
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var date))
        {
            epoch = date.ToUnixTimeMilliseconds() / 1000.0;
            return true;
        }

        return false;
    }

    private static bool TryIdList(string raw, out HashSet<int> ids)
    {
        ids = [];
        var node = Js.ParseQueryValue(raw);
        IEnumerable<JsonNode?> items = node switch
        {
            JsonArray array => array,
            JsonValue value when Js.TryInt(value, out _) => [value],
            _ => raw.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => (JsonNode?)JsonValue.Create(s)),
        };
        foreach (var item in items)
        {
            if (!Js.TryInt(item, out var id))
            {
                return false;
            }

            ids.Add(id);
        }

        return true;
    }

    private static bool QueryNumber(IReadOnlyDictionary<string, string> query, string key, out double? value)
    {
        value = null;
        if (!query.TryGetValue(key, out var raw) || raw.Length == 0)
        {
            return true;
        }

        var node = Js.ParseQueryValue(raw);
        if (Js.Kind(node) == JsonValueKind.Null)
        {
            return true;
        }

        if (!Js.TryNumberOrString(node, out var number))
        {
            return false;
        }

        value = number;
        return true;
    }
}
