using System.Globalization;
using VastHostAgent.Management;
using VastHostAgent.Vast;

namespace VastHostAgent.Fleet;

/// <summary>
/// The market for a whole fleet: one search per machine class (GPU model, GPU-count bucket, verified-only) per
/// refresh, shared by every machine of the class, so the fleet gets one market target per class and never
/// undercuts itself. The account's own offers are excluded by host id and learned from in the same search (the
/// host's share of the renter price); the market metrics fallback is one call per bucket per refresh.
/// </summary>
public sealed class FleetMarket(IVastClient client, TimeProvider time)
{
    private readonly Dictionary<MarketClass, (MarketSnapshot? Snapshot, string? Problem, DateTimeOffset TriedAt)> _classes = [];
    private long? _hostId;

    /// <summary>The class a machine compares in.</summary>
    public static MarketClass ClassOf(VastMachine machine, MarketPricingOptions o)
    {
        var (low, high) = MarketData.Bucket(machine.NumGpus ?? 1);
        return new MarketClass(machine.GpuName ?? "", low, high, o.VerifiedOnly);
    }

    /// <summary>The market of a class, searched again when its refresh interval has passed (a failed search is retried at the next refresh too).</summary>
    public async Task<(MarketSnapshot? Snapshot, string? Problem)> GetAsync(
        MarketClass key, IReadOnlyList<VastMachine> ownOfClass, MarketPricingOptions o, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_classes.TryGetValue(key, out var known) && now - known.TriedAt < o.RefreshInterval)
        {
            return (known.Snapshot, known.Problem);
        }

        try
        {
            _hostId ??= (await client.GetCurrentUserAsync(cancellationToken).ConfigureAwait(false)).Id;
            var query = new OfferQuery { Limit = 2000 }
                .Where("gpu_name", "eq", key.GpuName)
                .Where("num_gpus", "gte", key.Low).Where("num_gpus", "lte", key.High)
                .Where("rentable", "eq", true)
                .Where("external", "eq", false);
            if (key.VerifiedOnly)
            {
                query.Where("verified", "eq", true);
            }

            var offers = await client.SearchOffersAsync(query, cancellationToken).ConfigureAwait(false);
            var own = ownOfClass.ToDictionary(m => m.EffectiveId);
            var shares = offers
                .Where(x => x.MachineId is { } id && own.TryGetValue(id, out var m) && m.ListedGpuCost is > 0 && x.DphBase is > 0 && x.NumGpus is > 0)
                .Select(x => own[x.MachineId!.Value].ListedGpuCost!.Value * x.NumGpus!.Value / x.DphBase!.Value)
                .Where(s => s is >= 0.3 and <= 1.0)
                .ToList();
            var (share, source) = shares.Count > 0 ? (PricingEngine.Percentile(shares, 50), "learned from the account's offers") : (o.HostShare, "configured");
            // The account's own offers by machine; any other offer of the account by host id (PeerPrices).
            var others = offers.Where(x => x.MachineId is not { } id || !own.ContainsKey(id)).ToList();
            var (prices, ownExcluded, malformed) = MarketData.PeerPrices(others, -1, _hostId, key.GpuName, key.Low, key.High, share);
            ownExcluded += offers.Count - others.Count;

            var description = string.Create(CultureInfo.InvariantCulture,
                $"{key.GpuName}, {(key.High >= 1024 ? $"{key.Low}+" : key.Low == key.High ? $"{key.Low}" : $"{key.Low}-{key.High}")} GPUs, {(key.VerifiedOnly ? "verified, " : "")}rentable; host share {share:0.00} {source}; shared by {ownOfClass.Count} machine(s) of the account");
            var snapshot = new MarketSnapshot(now, prices, offers.Count, ownExcluded, malformed, share, source, null, 0, description);
            _classes[key] = (snapshot, null, now);
            return (snapshot, null);
        }
        catch (VastApiException ex)
        {
            // The last snapshot (if any) ages; the pricing engine holds once it is stale.
            var last = known.Snapshot;
            _classes[key] = (last, ex.Message, now);
            return (last, ex.Message);
        }
    }
}

/// <summary>Machines that compare in one market: GPU model, GPU-count bucket and whether only verified offers count.</summary>
public sealed record MarketClass(string GpuName, int Low, int High, bool VerifiedOnly);
