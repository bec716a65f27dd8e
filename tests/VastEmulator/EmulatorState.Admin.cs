using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>Operations the real API has no endpoint for (renters, daemons, the clock): tests drive them directly.</summary>
public sealed partial class EmulatorState
{
    /// <summary>Starts a client contract on a machine; returns the contract id. On-demand/reserved preempt interruptible contracts.</summary>
    public int StartRental(int machineId, RentalRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        lock (_gate)
        {
            var now = Now;
            RefreshLocked(now);
            return StartRentalLocked(MachineOrThrowLocked(machineId), request, now).Id;
        }
    }

    /// <summary>Ends a contract now (the renter destroyed the instance); frees its GPUs.</summary>
    public void EndRental(int machineId, int rentalId)
    {
        lock (_gate)
        {
            var now = Now;
            RefreshLocked(now);
            var machine = MachineOrThrowLocked(machineId);
            var rental = machine.Rentals.FirstOrDefault(r => r.Id == rentalId && r.Active)
                ?? throw new EmulatorException(404, $"no active contract {rentalId} on machine {machineId}");
            rental.Stop(now);
            rental.EndedAt = now;
            _pending.RemoveAll(p => p.ContractId == rentalId);
            ResumePreemptedLocked(machine, now);
        }
    }

    /// <summary>Daemon contact: offline makes <c>timeout</c> grow and hides the offers; online sets it back to 0.</summary>
    public void SetOnline(int machineId, bool online)
    {
        lock (_gate)
        {
            var machine = MachineOrThrowLocked(machineId);
            machine.OfflineSince = online ? null : machine.OfflineSince ?? Now;
        }
    }

    /// <summary>Adds a machine (unlisted) to an account (default: the primary one); returns its id.</summary>
    public int AddMachine(string hostname, string gpuName = "RTX 4090", int numGpus = 8, int? ownerId = null, bool listed = false)
    {
        if (string.IsNullOrWhiteSpace(hostname) || numGpus is < 1 or > 16)
        {
            throw new EmulatorException(400, "hostname is required and num_gpus must be 1..16");
        }

        lock (_gate)
        {
            var owner = ownerId ?? _options.UserId;
            if (_accounts.All(a => a.UserId != owner))
            {
                throw new EmulatorException(400, $"no account {owner}");
            }

            var id = Math.Max(MarketGenerator.OwnMachineIdBase + 100, _machines.Keys.Where(k => k < MarketGenerator.OtherMachineIdBase).DefaultIfEmpty(0).Max() + 1);
            AddMachineLocked(id, owner, hostname, gpuName, numGpus, listed, _machines.Count + 1, Now);
            return id;
        }
    }

    /// <summary>A renter files a report against a machine.</summary>
    public void AddReport(int machineId, string problem, string message)
    {
        lock (_gate)
        {
            MachineOrThrowLocked(machineId).Reports.Add(new RenterReport(problem, message, Now));
        }
    }

    /// <summary>The client accepts a pending price increase: the contract takes the new prices.</summary>
    public void AcceptPriceIncrease(int pendingId)
    {
        lock (_gate)
        {
            RefreshLocked(Now);
            var row = _pending.FirstOrDefault(p => p.Id == pendingId) ?? throw new EmulatorException(404, "no_pending_price_increase");
            if (FindRentalLocked(row.ContractId) is { } rental)
            {
                rental.Price = row.NewGpu;
                rental.DiskPrice = row.NewDisk;
                rental.InetUpPrice = row.NewBwu;
                rental.InetDownPrice = row.NewBwd;
            }

            _pending.Remove(row);
        }
    }

    /// <summary>The client rejects a pending price increase: the row goes away, the contract keeps its price.</summary>
    public void RejectPriceIncrease(int pendingId)
    {
        lock (_gate)
        {
            RefreshLocked(Now);
            if (_pending.RemoveAll(p => p.Id == pendingId) == 0)
            {
                throw new EmulatorException(404, "no_pending_price_increase");
            }
        }
    }

    /// <summary>The §4 machine object as GET /machines returns it, or null.</summary>
    public JsonObject? MachineJson(int machineId)
    {
        lock (_gate)
        {
            var now = Now;
            RefreshLocked(now);
            return _machines.TryGetValue(machineId, out var machine) ? RenderMachineLocked(machine, now) : null;
        }
    }

    /// <summary>Every offer of the market (own listed machines included), on-demand, default allocated storage.</summary>
    public JsonArray OffersJson()
    {
        lock (_gate)
        {
            var now = Now;
            RefreshLocked(now);
            return [.. AllOfferInputsLocked(now).Select(o => (JsonNode)OfferBuilder.Build(o, now, OfferQuery.DefaultAllocatedStorage, SearchType.OnDemand))];
        }
    }

    /// <summary>Pending price increase rows (all hosts), as GET /instances/pending-price-increases/ renders them.</summary>
    public JsonArray PendingPriceIncreasesJson()
    {
        lock (_gate)
        {
            RefreshLocked(Now);
            return [.. _pending.Select(p => (JsonNode)RenderPendingLocked(p))];
        }
    }

    /// <summary>Everything a test may want to assert on, as GET /_emulator/state returns it.</summary>
    public JsonObject StateJson()
    {
        lock (_gate)
        {
            var now = Now;
            RefreshLocked(now);
            var machines = new JsonArray();
            foreach (var m in _machines.Values)
            {
                machines.Add(new JsonObject
                {
                    ["id"] = m.Id,
                    ["owner_id"] = m.OwnerId,
                    ["online"] = m.OfflineSince is null,
                    ["machine"] = RenderMachineLocked(m, now),
                    ["listing"] = new JsonObject
                    {
                        ["listed"] = m.Listed,
                        ["price_gpu"] = m.ListedGpuCost,
                        ["price_disk"] = m.ListedStorageCost,
                        ["price_inetu"] = m.ListedInetUpCost,
                        ["price_inetd"] = m.ListedInetDownCost,
                        ["price_min_bid"] = m.MinBidPrice,
                        ["min_chunk"] = m.ListedMinGpuCount,
                        ["end_date"] = m.EndDate,
                        ["duration"] = m.DurationSeconds,
                        ["credit_discount_max"] = m.CreditDiscountMax,
                        ["vol_size"] = m.VolumeTotalSize,
                        ["vol_price"] = m.ListedVolumeCost,
                    },
                    ["offers"] = new JsonArray([.. OwnOfferInputsLocked(m).Select(o => (JsonNode)new JsonObject
                    {
                        ["id"] = o.Id,
                        ["num_gpus"] = o.Chunk,
                        ["dph_base"] = o.DphBase,
                        ["min_bid"] = o.MinBid,
                        ["rentable"] = o.Rentable,
                    })]),
                    ["default_job"] = m.BidImage is null ? null : new JsonObject
                    {
                        ["bid_gpu_cost"] = m.BidGpuCost,
                        ["bid_image"] = m.BidImage,
                        ["bid_image_args"] = new JsonArray([.. (m.BidImageArgs ?? []).Select(a => (JsonNode)JsonValue.Create(a))]),
                        ["bid_inet_up_cost"] = m.BidInetUpCost,
                        ["bid_inet_down_cost"] = m.BidInetDownCost,
                    },
                    ["maintenance"] = new JsonArray([.. m.Maintenance.Select(w => (JsonNode)RenderWindow(w))]),
                    ["rentals"] = new JsonArray([.. m.Rentals.Select(r => (JsonNode)new JsonObject
                    {
                        ["id"] = r.Id,
                        ["type"] = Rental.WireName(r.Type),
                        ["gpus"] = r.Gpus,
                        ["gpu_indexes"] = new JsonArray([.. r.GpuIndexes.Select(i => (JsonNode)i)]),
                        ["price"] = r.Price,
                        ["disk_price"] = r.DiskPrice,
                        ["inet_up_price"] = r.InetUpPrice,
                        ["inet_down_price"] = r.InetDownPrice,
                        ["start_date"] = r.StartDate,
                        ["end_date"] = r.EndDate,
                        ["active"] = r.Active,
                        ["running"] = r.Running,
                        ["preempted"] = r.Preempted,
                        ["ended_at"] = r.EndedAt,
                    })]),
                    ["expired_storage_contracts"] = m.ExpiredStorageContracts,
                    ["reports"] = new JsonArray([.. m.Reports.Select(r => (JsonNode)RenderReport(r))]),
                });
            }

            return new JsonObject
            {
                ["now"] = now,
                ["today"] = (long)Math.Floor(now / 86400.0),
                ["rate_limits"] = new JsonObject { ["enabled"] = _rateLimitsEnabled, ["scale"] = _rateLimitScale },
                ["accounts"] = new JsonArray([.. _accounts.Select(a => (JsonNode)new JsonObject
                {
                    ["user_id"] = a.UserId,
                    ["username"] = a.Username,
                    ["machines"] = new JsonArray([.. _machines.Values.Where(m => m.OwnerId == a.UserId).Select(m => (JsonNode)m.Id)]),
                })]),
                ["machines"] = machines,
                ["pending_price_increases"] = new JsonArray([.. _pending.Select(p => (JsonNode)RenderPendingLocked(p))]),
                ["faults"] = new JsonArray([.. _faults.Select(f => (JsonNode)new JsonObject
                {
                    ["endpoint"] = f.Spec.Endpoint,
                    ["status"] = f.Spec.Status,
                    ["remaining"] = f.Remaining,
                    ["delayMs"] = f.Spec.DelayMs,
                    ["malformed"] = f.Spec.Malformed,
                    ["timeout"] = f.Spec.Timeout,
                    ["passThrough"] = f.Spec.PassThrough,
                })]),
                ["market"] = new JsonObject
                {
                    ["machines"] = _market.Count,
                    ["offers"] = _market.Sum(m => m.OfferIds.Count),
                    ["duplicate_rows"] = _market.Sum(m => m.DuplicateScoreFactor.Count),
                },
            };
        }
    }

    private MachineRecord MachineOrThrowLocked(int machineId) =>
        _machines.TryGetValue(machineId, out var machine) ? machine : throw new EmulatorException(404, $"no machine {machineId}");

    private Rental StartRentalLocked(MachineRecord machine, RentalRequest request, double now)
    {
        var type = request.Type.Trim().ToLowerInvariant() switch
        {
            "on-demand" or "ondemand" or "on_demand" => RentalType.OnDemand,
            "interruptible" or "bid" => RentalType.Interruptible,
            "reserved" => RentalType.Reserved,
            _ => throw new EmulatorException(400, $"type must be on-demand, interruptible or reserved, not '{request.Type}'"),
        };
        if (request.Gpus < 1 || request.Gpus > machine.Hw.NumGpus)
        {
            throw new EmulatorException(400, $"gpus must be 1..{machine.Hw.NumGpus}");
        }

        var start = request.StartDate ?? now;
        var end = request.EndDate ?? machine.EndDate ?? now + 7 * 86400;
        if (start > now || end <= now || request.Price is < 0)
        {
            throw new EmulatorException(400, "startDate must not be in the future, endDate must be in the future, price >= 0");
        }

        var rental = new Rental
        {
            Id = _nextRentalId++,
            MachineId = machine.Id,
            Type = type,
            Gpus = request.Gpus,
            Price = request.Price ?? (type == RentalType.Interruptible ? machine.MinBidPrice : machine.ListedGpuCost ?? GpuCatalog.TypicalHostPrice(machine.Hw.Gpu)),
            DiskPrice = machine.ListedStorageCost ?? 0.1,
            InetUpPrice = machine.ListedInetUpCost ?? 0,
            InetDownPrice = machine.ListedInetDownCost ?? 0,
            StartDate = start,
            EndDate = end,
        };
        if (request.Running)
        {
            var free = FreeGpusLocked(machine);
            if (free.Count < request.Gpus && rental.IsOnDemandLike)
            {
                // On-demand beats interruptible: pause the cheapest running bids until enough GPUs are free.
                foreach (var bid in machine.Rentals.Where(r => r.Running && r.Type == RentalType.Interruptible).OrderBy(r => r.Price).ToList())
                {
                    bid.Stop(now);
                    bid.Preempted = true;
                    free = FreeGpusLocked(machine);
                    if (free.Count >= request.Gpus)
                    {
                        break;
                    }
                }
            }

            if (free.Count < request.Gpus)
            {
                throw new EmulatorException(409, $"only {free.Count} free GPUs on machine {machine.Id}");
            }

            rental.GpuIndexes.AddRange(free.Take(request.Gpus));
            rental.RunningSegments.Add(new Segment(start, null));
        }

        machine.Rentals.Add(rental);
        return rental;
    }

    private void ResumePreemptedLocked(MachineRecord machine, double now)
    {
        foreach (var bid in machine.Rentals.Where(r => r.Active && r.Preempted).OrderByDescending(r => r.Price).ToList())
        {
            var free = FreeGpusLocked(machine);
            if (free.Count < bid.Gpus)
            {
                continue;
            }

            bid.Preempted = false;
            bid.GpuIndexes.AddRange(free.Take(bid.Gpus));
            bid.RunningSegments.Add(new Segment(now, null));
        }
    }

    private static List<int> FreeGpusLocked(MachineRecord machine)
    {
        var used = machine.Rentals.Where(r => r.Running).SelectMany(r => r.GpuIndexes).ToHashSet();
        return [.. Enumerable.Range(0, machine.Hw.NumGpus).Where(i => !used.Contains(i))];
    }
}
