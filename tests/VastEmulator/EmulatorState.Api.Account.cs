using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>Account endpoints: earnings, invoices, pending charges.</summary>
public sealed partial class EmulatorState
{
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
}
