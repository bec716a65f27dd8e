using System.Globalization;
using VastHostAgent.Kernel;
using VastHostAgent.Vast;

namespace VastHostAgent.Management;

/// <summary>One field of the plan: what Vast has, what the configuration wants, and why.</summary>
public sealed record PlanItem(string Field, string Current, string Desired, string Action, string Reason, string Explanation);

/// <summary>A mutation the plan calls for; for an unlist, <c>UnlistReason</c> says why (remembered, so the agent relists once the reason is gone).</summary>
public sealed record PlannedMutation(VastEndpoint Endpoint, string Summary, CreateAsksRequest? Listing = null, double? MinBid = null, CreateBidsRequest? DefaultJob = null, string? UnlistReason = null, WindowRequest? Window = null);

/// <summary>A maintenance window to schedule on Vast (dnotify).</summary>
public sealed record WindowRequest(DateTimeOffset Start, TimeSpan Duration, string Category);

/// <summary>A default job taken off (for a window or by the fault guard), to put back afterwards.</summary>
public sealed record SavedDefaultJob(string Image, IReadOnlyList<string> Args, double? Price = null);

/// <summary>
/// Maintenance windows and the fault guard, seen from the reconcile: advanced once per reconcile, right
/// after the machine is read, they say what the listing must respect this cycle.
/// </summary>
public interface IListingConstraintSource
{
    /// <summary>
    /// Re-establishes maintenance windows and the fault guard's trip from the machine as just read when their
    /// state files were found unusable (persisting when <paramref name="apply"/>). Returns what was recovered.
    /// </summary>
    IReadOnlyList<string> Recover(VastMachine machine, ManagementState management, bool apply);

    /// <summary>
    /// Advances (persisting when <paramref name="apply"/>; its calls to Vast go through the cycle's
    /// <see cref="MutationPath"/>, so dry-run and holds apply) and returns the constraints.
    /// </summary>
    /// <param name="machine">The machine as just read.</param>
    /// <param name="health">The rig's health (controller: from Prometheus); null = the local snapshot's.</param>
    /// <param name="cycle">The cycle's mutation path.</param>
    /// <param name="apply">False for <c>plan</c>.</param>
    /// <param name="cancellationToken">Cancels the step.</param>
    Task<ListingConstraints> StepAsync(VastMachine machine, Kernel.RigObservation? health, MutationCycle cycle, bool apply, CancellationToken cancellationToken);
}

/// <summary>What maintenance and the fault guard require of the listing this cycle.</summary>
/// <param name="EndDateCap">No offer may end after this (epoch seconds): the next window's start.</param>
/// <param name="Suspended">No listing change and no default job (in maintenance, or the guard tripped).</param>
/// <param name="UnlistReason">Unlist the machine, and why (the agent relists when this clears).</param>
/// <param name="RemoveDefaultJob">Remove the default job whatever defaultJob.mode says (guard policy defaultJob).</param>
/// <param name="RestoreDefaultJob">A default job taken off earlier, to put back (when defaultJob.mode is unmanaged).</param>
public sealed record ListingConstraints(double? EndDateCap, bool Suspended, string? UnlistReason, bool RemoveDefaultJob, SavedDefaultJob? RestoreDefaultJob)
{
    public static readonly ListingConstraints None = new(null, false, null, false, null);
}

/// <summary>The reconcile plan for one machine: every field's decision, and the (few) calls that would make it so.</summary>
public sealed record ReconcilePlan(
    VastMachine Machine,
    PriceDecision Price,
    IReadOnlyList<PlanItem> Items,
    IReadOnlyList<PlannedMutation> Mutations,
    MarketSnapshot? Market)
{
    /// <summary>One GPU-hour's electricity under load, when known (economics): the powerCost min bid and the break-even guard.</summary>
    public RigPowerCost? Power { get; init; }
}

/// <summary>
/// Computes the desired listing from the configuration and diffs it with the machine field by field.
/// A field the configuration leaves null keeps the machine's value. <c>create_asks</c> is planned only when
/// something differs, and then carries every field (min_chunk never null); the min bid and the default job
/// use their own endpoints only when they alone differ. Pure: no I/O.
/// </summary>
public static class ListingPlanner
{
    private const double PriceTolerance = 0.00005;
    private static readonly TimeSpan EndDateTolerance = TimeSpan.FromMinutes(10);

    /// <summary>An end date closer than this to now is not sent (Vast refuses an end date in the past).</summary>
    private static readonly TimeSpan MinimumEndDateLead = TimeSpan.FromMinutes(1);

    /// <summary>A rolling duration on Vast this close to the configured one is in sync.</summary>
    private static readonly TimeSpan DurationTolerance = TimeSpan.FromMinutes(1);

    public static ReconcilePlan Plan(
        VastMachine machine, PriceDecision price, ManagementOptions o, ManagementState state, MarketSnapshot? market, DateTimeOffset now, ListingConstraints? constraints = null, RigPowerCost? power = null)
    {
        constraints ??= ListingConstraints.None;
        var suspended = constraints.Suspended || constraints.UnlistReason is not null;
        var items = new List<PlanItem>();
        var mutations = new List<PlannedMutation>();
        var id = machine.EffectiveId;
        var listed = machine.Listed == true;
        var relist = !listed && state.UnlistedByAgentReason is not null && !suspended;
        var shouldBeListed = listed || o.Listing.ListWhenUnlisted || relist;

        // GPU price
        var newPrice = price.Action == PriceAction.Change ? price.Price : machine.ListedGpuCost;
        items.Add(new PlanItem("gpu price", Money(machine.ListedGpuCost), Money(newPrice),
            price.Action == PriceAction.Change ? "change" : price.Reason is "in_sync" ? "keep" : "hold", price.Reason, price.Explanation));

        // Min bid: fixed, or a ratio of the (new) on-demand price; never below its floor nor above the on-demand price.
        double? minBid = machine.MinBidPrice;
        var minBidReason = "not_managed";
        var minBidWhy = "minBid.mode is off";
        if (o.MinBid.Mode == MinBidMode.PowerCost && power is null)
        {
            minBidReason = "power_cost_unknown";
            minBidWhy = "minBid.mode is powerCost, but the electricity of a GPU-hour under load is not known yet (economics, or the rig's series in Prometheus): kept";
        }
        else if (o.MinBid.Mode != MinBidMode.Off)
        {
            var wanted = o.MinBid.Mode switch
            {
                MinBidMode.Fixed => o.MinBid.Fixed!.Value,
                MinBidMode.PowerCost => power!.LoadCostPerGpuHour * o.MinBid.PowerCostFactor,
                _ => (newPrice ?? 0) * o.MinBid.Ratio,
            };
            minBidWhy = o.MinBid.Mode switch
            {
                MinBidMode.Fixed => Inv($"fixed {wanted:0.####}"),
                MinBidMode.PowerCost => Inv($"power under load: {power!.Explanation}; × {o.MinBid.PowerCostFactor:0.##} = {wanted:0.####}"),
                _ => Inv($"{o.MinBid.Ratio:0.##} × on-demand {newPrice:0.####} = {wanted:0.####}"),
            };
            if (o.MinBid.Mode == MinBidMode.PowerCost)
            {
                // Never below the power cost: round up to the next 0.0001.
                wanted = Math.Ceiling(wanted * 10000) / 10000;
            }

            wanted = Math.Max(o.MinBid.Floor, wanted);
            if (newPrice is { } cap && wanted > cap)
            {
                // Rounded down, so that rounding never lifts the bid above the price.
                minBid = Math.Floor(cap * 10000 + 1e-9) / 10000;
                minBidWhy += "; capped at the on-demand price";
            }
            else
            {
                minBid = Math.Round(wanted, 4, MidpointRounding.AwayFromZero);
            }

            minBidReason = "configured";
        }

        var minBidChanges = Differs(machine.MinBidPrice, minBid);
        items.Add(new PlanItem("min bid", Money(machine.MinBidPrice), Money(minBid), minBidChanges ? "change" : "keep", minBidReason, minBidWhy));

        // Rolling end date: Vast's own `duration` field (the server moves end_date to now + duration daily), so a
        // listing in sync needs no periodic create_asks. A fixed end_date is sent only while a maintenance window
        // clamps the offer; the next listing change after the window sets the duration again.
        var endDate = machine.EndDate;
        var rolling = false;
        var endReason = "not_managed";
        var endWhy = machine.Duration is { } kept ? Inv($"listing.offerDuration is not set; Vast rolls the end date ({kept / 86400:0.#} days)") : "listing.offerDuration is not set";
        if (o.Listing.OfferDuration is { } duration)
        {
            var days = duration.TotalDays;
            var remaining = machine.EndDate is { } end ? DateTimeOffset.FromUnixTimeMilliseconds((long)(end * 1000)) - now : TimeSpan.Zero;
            if (machine.Duration is { } current && Math.Abs(current - duration.TotalSeconds) <= DurationTolerance.TotalSeconds)
            {
                endReason = "rolling";
                endWhy = Inv($"Vast rolls it daily to now + {days:0.#} days (duration)");
            }
            else if (machine.EndDate is null || remaining < o.Listing.RefreshWhenLessThan || machine.Duration is not null)
            {
                rolling = true;
                endDate = Math.Round((now + duration).ToUnixTimeMilliseconds() / 1000.0);
                endReason = "refresh";
                endWhy = (machine.Duration is { } other ? Inv($"rolling duration {other / 86400:0.#} days, configured {days:0.#}")
                    : machine.EndDate is null ? "no end date" : Inv($"{remaining.TotalDays:0.#} days left, below {o.Listing.RefreshWhenLessThan.TotalDays:0.#}"))
                    + Inv($": a rolling duration of {days:0.#} days (Vast moves the end date daily)");
            }
            else
            {
                endReason = "in_sync";
                endWhy = Inv($"{remaining.TotalDays:0.#} days left (a rolling duration is set at the next listing change, or below {o.Listing.RefreshWhenLessThan.TotalDays:0.#} days)");
            }
        }

        // A maintenance window ahead (in every state until it is active): no offer may end after its start, so
        // no new contract outlives it. Right before the start an end date can no longer be set (it would be in the
        // past by the time Vast applies it): then the offer is at least never extended, and the machine is
        // unlisted when the window starts.
        if (constraints.EndDateCap is { } windowStart && (endDate is null || endDate > windowStart + EndDateTolerance.TotalSeconds))
        {
            endReason = "maintenance_cap";
            rolling = false;
            if (windowStart > now.ToUnixTimeSeconds() + MinimumEndDateLead.TotalSeconds)
            {
                endDate = windowStart;
                endWhy = $"a maintenance window starts {Date(windowStart)}: a fixed end date, no offer may end after it";
            }
            else
            {
                endDate = machine.EndDate;
                endWhy = $"a maintenance window starts {Date(windowStart)}: too close to move the end date; not extended (the machine is unlisted when the window starts)";
            }
        }

        var endChanges = rolling
            || (endDate is not null && (machine.EndDate is null || Math.Abs(endDate.Value - machine.EndDate.Value) > EndDateTolerance.TotalSeconds));
        items.Add(new PlanItem("end date", EndDate(machine.EndDate, machine.Duration), rolling || endReason == "rolling" ? Date(endDate) + " (rolling)" : Date(endDate),
            endChanges ? "change" : "keep", endReason, endWhy));

        // What create_asks carries for the end date: the rolling duration whenever it is wanted and no window
        // clamps (a fixed end_date would end it); a fixed end date only when one is wanted; otherwise neither,
        // which keeps what Vast has.
        var sendDuration = o.Listing.OfferDuration is { } offer && endReason is "rolling" or "refresh" or "in_sync" ? Inv($"{offer.TotalSeconds:0}") : null;
        var sendEndDate = sendDuration is not null || (endReason == "not_managed" && machine.Duration is not null) ? null : endDate;

        var storage = Field(items, "storage price", machine.ListedStorageCost, o.Listing.StoragePrice, "listing.storagePrice");
        var upload = Field(items, "upload price", machine.ListedInetUpCost, o.Listing.UploadPrice, "listing.uploadPrice");
        var download = Field(items, "download price", machine.ListedInetDownCost, o.Listing.DownloadPrice, "listing.downloadPrice");
        var discount = Field(items, "discount max", machine.CreditDiscountMax, o.Listing.DiscountMax, "listing.discountMax", Ratio);
        var chunk = (int)(o.Listing.MinChunk ?? machine.ListedMinGpuCount ?? 1);
        var chunkChanges = chunk != (machine.ListedMinGpuCount ?? 1);
        items.Add(new PlanItem("min chunk", (machine.ListedMinGpuCount ?? 1).ToString(CultureInfo.InvariantCulture), chunk.ToString(CultureInfo.InvariantCulture),
            chunkChanges ? "change" : "keep", o.Listing.MinChunk is null ? "not_managed" : "configured", o.Listing.MinChunk is null ? "kept as listed" : "listing.minChunk"));
        var volumeSize = o.Listing.VolumeSizeGb ?? (machine.VolumeTotalSize is { } v ? (long)v : null);
        var volumePrice = volumeSize is null or 0 ? null : o.Listing.VolumePrice ?? machine.ListedVolumeCost;
        var volumeChanges = (o.Listing.VolumeSizeGb is not null && o.Listing.VolumeSizeGb != (long?)machine.VolumeTotalSize)
            || (o.Listing.VolumePrice is not null && Differs(machine.ListedVolumeCost, o.Listing.VolumePrice));
        items.Add(new PlanItem("volume", Volume(machine.VolumeTotalSize, machine.ListedVolumeCost), Volume(volumeSize, volumePrice),
            volumeChanges ? "change" : "keep", o.Listing.VolumeSizeGb is null && o.Listing.VolumePrice is null ? "not_managed" : "configured", "listing.volumeSizeGb / listing.volumePrice"));

        var listingChanges = price.Action == PriceAction.Change || endChanges || storage || upload || download || discount || chunkChanges || volumeChanges;
        string listingAction, listingReason, listingWhy;
        if (constraints.UnlistReason is { } unlistReason)
        {
            (listingAction, listingReason, listingWhy) = listed
                ? ("change", "unlist", $"unlisting: {unlistReason}")
                : ("hold", "suspended", $"stays unlisted: {unlistReason}");
        }
        else if (!shouldBeListed)
        {
            (listingAction, listingReason, listingWhy) = ("hold", "unlisted_by_host", "the machine is not listed and the agent did not unlist it (listing.listWhenUnlisted is false)");
        }
        else if (suspended)
        {
            (listingAction, listingReason, listingWhy) = ("hold", "suspended", "listing changes are suspended (maintenance or fault guard)");
        }
        else if (!listed)
        {
            (listingAction, listingReason, listingWhy) = ("change", relist ? "relist" : "list", relist ? $"the agent unlisted it ({state.UnlistedByAgentReason}); restoring" : "listing.listWhenUnlisted");
        }
        else if (listingChanges)
        {
            (listingAction, listingReason, listingWhy) = ("change", "update", "one or more listing fields differ");
        }
        else
        {
            (listingAction, listingReason, listingWhy) = ("keep", "in_sync", "the listing matches the configuration");
        }

        var desiredListed = constraints.UnlistReason is not null ? "not listed" : shouldBeListed && !suspended ? "listed" : listed ? "listed" : "not listed";
        items.Add(new PlanItem("listing", listed ? "listed" : "not listed", desiredListed, listingAction, listingReason, listingWhy));

        if (listingAction == "change" && listingReason == "unlist")
        {
            mutations.Add(new PlannedMutation(VastEndpoint.Unlist, "unlist: " + constraints.UnlistReason, UnlistReason: constraints.UnlistReason));
        }
        else if (listingAction == "change")
        {
            var request = new CreateAsksRequest
            {
                Machine = id,
                PriceGpu = newPrice,
                PriceDisk = Pick(o.Listing.StoragePrice, machine.ListedStorageCost),
                PriceInetu = Pick(o.Listing.UploadPrice, machine.ListedInetUpCost),
                PriceInetd = Pick(o.Listing.DownloadPrice, machine.ListedInetDownCost),
                PriceMinBid = minBid,
                MinChunk = chunk,
                EndDate = sendEndDate,
                CreditDiscountMax = Pick(o.Listing.DiscountMax, machine.CreditDiscountMax),
                Duration = sendDuration,
                VolSize = volumeSize,
                VolPrice = volumePrice,
            };
            mutations.Add(new PlannedMutation(VastEndpoint.CreateAsks,
                Inv($"create_asks: price {newPrice:0.####}, min bid {minBid:0.####}, end {(sendDuration is not null ? $"rolling {o.Listing.OfferDuration!.Value.TotalDays:0.#} days" : Date(sendEndDate ?? endDate))}, min chunk {chunk}"), Listing: request));
        }
        else if (minBidChanges && listed && !suspended && minBid is { } bid)
        {
            mutations.Add(new PlannedMutation(VastEndpoint.MinBid, Inv($"minbid: {bid:0.####}"), MinBid: bid));
        }

        PlanDefaultJob(machine, o.DefaultJob, state, suspended, constraints, relisting: listingAction == "change" && listingReason == "relist", items, mutations);
        return new ReconcilePlan(machine, price, items, mutations, market) { Power = power };
    }

    private static void PlanDefaultJob(VastMachine machine, DefaultJobOptions o, ManagementState state, bool suspended, ListingConstraints constraints, bool relisting, List<PlanItem> items, List<PlannedMutation> mutations)
    {
        var current = string.IsNullOrEmpty(machine.BidImage) ? "none" : $"{machine.BidImage} {string.Join(' ', machine.DefaultJobArgs())} @ {Money(machine.BidGpuCost)}".Trim();
        var mode = o.Mode;
        var why = $"defaultJob.mode is {mode.ConfigName()}";
        if (suspended || constraints.RemoveDefaultJob || (mode != DefaultJobMode.Unmanaged && state.UnlistedByAgentReason is not null && !relisting))
        {
            mode = DefaultJobMode.Absent;
            why = constraints.RemoveDefaultJob && !suspended
                ? "the fault guard holds the machine (policy defaultJob): no default job"
                : "no default job while the machine is in maintenance or unlisted by the agent";
        }
        else if (mode == DefaultJobMode.Unmanaged && constraints.RestoreDefaultJob is { } saved && string.IsNullOrEmpty(machine.BidImage))
        {
            var restored = $"{saved.Image} {string.Join(' ', saved.Args)} @ {Money(saved.Price)}".Trim();
            items.Add(new PlanItem("default job", current, restored, "change", "restore", "putting back the default job taken off for maintenance or by the fault guard"));
            mutations.Add(new PlannedMutation(VastEndpoint.CreateBids, $"create_bids: {restored} (restored)",
                DefaultJob: new CreateBidsRequest(machine.EffectiveId, saved.Price, null, null, saved.Image, saved.Args)));
            return;
        }

        switch (mode)
        {
            case DefaultJobMode.Present:
                var same = machine.BidImage == o.Image && machine.DefaultJobArgs().SequenceEqual(o.Args) && !Differs(machine.BidGpuCost, o.Price);
                var desired = $"{o.Image} {string.Join(' ', o.Args)} @ {Money(o.Price)}".Trim();
                items.Add(new PlanItem("default job", current, desired, same ? "keep" : "change", "configured", why));
                if (!same)
                {
                    mutations.Add(new PlannedMutation(VastEndpoint.CreateBids, $"create_bids: {desired}",
                        DefaultJob: new CreateBidsRequest(machine.EffectiveId, o.Price, null, null, o.Image, o.Args)));
                }

                break;
            case DefaultJobMode.Absent:
                var has = !string.IsNullOrEmpty(machine.BidImage);
                items.Add(new PlanItem("default job", current, "none", has ? "change" : "keep", "configured", why));
                if (has)
                {
                    mutations.Add(new PlannedMutation(VastEndpoint.RemoveDefaultJob, "remove default job"));
                }

                break;
            default:
                items.Add(new PlanItem("default job", current, current, "keep", "not_managed", why));
                break;
        }
    }

    private static bool Field(List<PlanItem> items, string name, double? current, double? configured, string key, Func<double?, string>? format = null)
    {
        format ??= Money;
        var changes = configured is not null && Differs(current, configured);
        items.Add(new PlanItem(name, format(current), format(configured ?? current), changes ? "change" : "keep",
            configured is null ? "not_managed" : "configured", configured is null ? "kept as listed" : key));
        return changes;
    }

    private static double? Pick(double? configured, double? current) => configured ?? current;

    private static bool Differs(double? a, double? b) => (a, b) switch
    {
        (null, null) => false,
        (null, _) or (_, null) => true,
        _ => Math.Abs(a.Value - b.Value) > PriceTolerance,
    };

    internal static string Money(double? value) => value is { } v ? "$" + v.ToString("0.0000", CultureInfo.InvariantCulture) : "-";

    internal static string Ratio(double? value) => value is { } v ? v.ToString("P1", CultureInfo.InvariantCulture) : "-";

    private static string EndDate(double? epoch, double? rollingSeconds) =>
        rollingSeconds is { } r ? Inv($"{Date(epoch)} (rolling {r / 86400:0.#} days)") : Date(epoch);

    internal static string Date(double? epoch) => epoch is { } e
        ? DateTimeOffset.FromUnixTimeMilliseconds((long)(e * 1000)).ToString("yyyy-MM-dd HH:mm'Z'", CultureInfo.InvariantCulture)
        : "-";

    private static string Volume(double? size, double? price) => size is null or 0 ? "none" : Inv($"{size:0} GB @ {Money(price)}");

    private static string Volume(long? size, double? price) => Volume((double?)size, price);

    private static string Inv(FormattableString text) => FormattableString.Invariant(text);
}
