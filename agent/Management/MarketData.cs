using System.Globalization;
using VastHostAgent.Vast;

namespace VastHostAgent.Management;

/// <summary>
/// Searches the market for offers comparable to this machine: same GPU model, same GPU-count bucket
/// (1, 2–3, 4–7, 8+), rentable, verified (by default), on-demand. Offers of this machine and of every other
/// machine of the same host are excluded (host id learned from this machine's own offers, else the account
/// id), so a fleet of agents never chases its own prices down. Peers' prices are renter prices
/// (<c>dph_base / num_gpus</c>); they are converted to host prices with the host share learned from this
/// machine's own offers (its listed price against their dph_base), else the configured share.
/// </summary>
public sealed class MarketData(IVastClient client, TimeProvider time)
{
    private static readonly TimeSpan OwnOffersRefresh = TimeSpan.FromHours(24);
    private (DateTimeOffset At, long MachineId, long? HostId, double Share, string Source)? _own;

    /// <summary>The GPU-count bucket a machine of <paramref name="numGpus"/> GPUs compares in.</summary>
    public static (int Low, int High) Bucket(long numGpus) => numGpus switch
    {
        <= 1 => (1, 1),
        <= 3 => (2, 3),
        <= 7 => (4, 7),
        _ => (8, 1024),
    };

    /// <summary>
    /// Host-side per-GPU prices of comparable offers: this host's own offers excluded, offers with missing or
    /// absurd numbers (or outside the model and GPU-count bucket) counted as malformed. Pure.
    /// </summary>
    public static (List<double> Prices, int OwnExcluded, int Malformed) PeerPrices(
        IReadOnlyList<VastOffer> offers, long machineId, long? hostId, string gpuName, int low, int high, double share)
    {
        var prices = new List<double>(offers.Count);
        int ownExcluded = 0, malformed = 0;
        foreach (var offer in offers)
        {
            if (offer.MachineId == machineId || (hostId is not null && offer.HostId == hostId))
            {
                ownExcluded++;
                continue;
            }

            if (offer.DphBase is not { } dph || offer.NumGpus is not { } n || n <= 0 || !double.IsFinite(dph) || dph <= 0
                || !string.Equals(offer.GpuName, gpuName, StringComparison.Ordinal) || n < low || n > high)
            {
                malformed++;
                continue;
            }

            var perGpu = dph / n * share;
            if (perGpu is < 0.001 or > 1000)
            {
                malformed++;
                continue;
            }

            prices.Add(perGpu);
        }

        return (prices, ownExcluded, malformed);
    }

    public async Task<(MarketSnapshot Snapshot, long? HostId)> FetchAsync(
        VastMachine machine, long? knownHostId, MarketPricingOptions options, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var machineId = machine.EffectiveId;
        var gpuName = machine.GpuName ?? "";
        var (low, high) = Bucket(machine.NumGpus ?? 1);

        // This machine's own offers: who we are (host id) and what share of the renter price we get.
        // Both change rarely: learned once a day (one search), not at every market refresh.
        if (_own is not { } own || own.MachineId != machineId || time.GetUtcNow() - own.At > OwnOffersRefresh || own.HostId is null)
        {
            var ownOffers = await client.SearchOffersAsync(new OfferQuery { Limit = 64 }
                .Where("machine_id", "eq", machineId)
                .Where("verified", "eq", "any").Where("rentable", "eq", "any").Where("rented", "eq", "any"), cancellationToken).ConfigureAwait(false);
            var learnedHost = ownOffers.Select(o => o.HostId).FirstOrDefault(h => h is not null) ?? knownHostId;
            learnedHost ??= (await client.GetCurrentUserAsync(cancellationToken).ConfigureAwait(false)).Id;
            var shares = ownOffers
                .Where(o => o.DphBase is > 0 && o.NumGpus is > 0 && machine.ListedGpuCost is > 0)
                .Select(o => machine.ListedGpuCost!.Value * o.NumGpus!.Value / o.DphBase!.Value)
                .Where(s => s is >= 0.3 and <= 1.0)
                .ToList();
            own = shares.Count > 0
                ? (time.GetUtcNow(), machineId, learnedHost, PricingEngine.Percentile(shares, 50), "learned from this machine's offers")
                : (time.GetUtcNow(), machineId, learnedHost, options.HostShare, "configured");
            _own = own;
        }

        var hostId = own.HostId;
        var (share, shareSource) = (own.Share, own.Source);

        var query = new OfferQuery { Limit = 2000 }
            .Where("gpu_name", "eq", gpuName)
            .Where("num_gpus", "gte", low).Where("num_gpus", "lte", high)
            .Where("rentable", "eq", true)
            .Where("external", "eq", false);
        if (options.VerifiedOnly)
        {
            query.Where("verified", "eq", true);
        }

        var offers = await client.SearchOffersAsync(query, cancellationToken).ConfigureAwait(false);
        var (prices, ownExcluded, malformed) = PeerPrices(offers, machineId, hostId, gpuName, low, high, share);

        IReadOnlyDictionary<int, double>? percentiles = null;
        double metricsCount = 0;
        if (options.UseMetricsFallback)
        {
            try
            {
                var metrics = await client.GetGpuMetricsAsync(options.VerifiedOnly ? "yes" : "all", "all",
                    low == high ? low.ToString(CultureInfo.InvariantCulture) : "all", cancellationToken).ConfigureAwait(false);
                if (metrics.FirstOrDefault(g => string.Equals(g.GpuName, gpuName, StringComparison.Ordinal)) is { } row)
                {
                    percentiles = new Dictionary<int, double?>
                    {
                        [10] = row.PriceP10 * share,
                        [25] = row.PriceP25 * share,
                        [50] = row.PriceMedian * share,
                        [75] = row.PriceP75 * share,
                        [90] = row.PriceP90 * share,
                    }.Where(kv => kv.Value is { } v && double.IsFinite(v) && v > 0).ToDictionary(kv => kv.Key, kv => kv.Value!.Value);
                    metricsCount = row.Total ?? 0;
                }
            }
            catch (VastApiException)
            {
                // The fallback is optional: pricing goes on with the peers (or holds).
            }
        }

        var description = FormattableString.Invariant(
            $"{gpuName}, {(high >= 1024 ? $"{low}+" : low == high ? $"{low}" : $"{low}-{high}")} GPUs, {(options.VerifiedOnly ? "verified, " : "")}rentable; host share {share:0.00} {shareSource}");
        return (new MarketSnapshot(now, prices, offers.Count, ownExcluded, malformed, share, shareSource, percentiles, metricsCount, description), hostId);
    }
}
