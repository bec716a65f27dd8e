using System.Text.Json;
using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>Machine endpoints: show, list (create asks), unlist, minimum bid, default jobs.</summary>
public sealed partial class EmulatorState
{
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
}
