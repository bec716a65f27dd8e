using System.Globalization;
using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>Market endpoints: offers (bundles) and GPU price metrics.</summary>
public sealed partial class EmulatorState
{
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
}
