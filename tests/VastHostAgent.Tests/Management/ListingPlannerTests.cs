using VastHostAgent.Management;
using VastHostAgent.Vast;

namespace VastHostAgent.Tests.Management;

/// <summary>The desired listing from the configuration, diffed field by field with the machine.</summary>
public sealed class ListingPlannerTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2026-11-27T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private static VastMachine Machine(Func<VastMachine, VastMachine>? change = null)
    {
        var m = new VastMachine
        {
            Id = 48211,
            Hostname = "rig-01",
            NumGpus = 8,
            GpuName = "RTX 4090",
            Listed = true,
            ListedGpuCost = 0.40,
            MinBidPrice = 0.28,
            ListedStorageCost = 0.15,
            ListedInetUpCost = 0.005,
            ListedInetDownCost = 0.004,
            ListedMinGpuCount = 2,
            CreditDiscountMax = 0.1,
            EndDate = Now.AddDays(20).ToUnixTimeSeconds(),
            VolumeTotalSize = 200,
            ListedVolumeCost = 0.12,
            GpuOccupancy = "x x x x x x x x",
        };
        return change is null ? m : change(m);
    }

    private static PriceDecision Hold(double? price) => new(PriceAction.Hold, price, price, "fixed", "in_sync", "in sync", 0, null);

    private static PriceDecision Change(double price) => new(PriceAction.Change, price, price, "fixed", "follow_target", "target", 0, null);

    private static ManagementOptions Options(Action<ManagementOptions>? change = null)
    {
        var o = new ManagementOptions();
        change?.Invoke(o);
        return o;
    }

    [Fact]
    public void In_sync_plans_no_call_at_all()
    {
        var plan = ListingPlanner.Plan(Machine(), Hold(0.40), Options(), new ManagementState(), null, Now);
        Assert.Empty(plan.Mutations);
        Assert.All(plan.Items, i => Assert.Equal("keep", i.Action));
    }

    [Fact]
    public void A_price_change_sends_create_asks_with_every_field_keeping_min_chunk_volume_and_unmanaged_prices()
    {
        var plan = ListingPlanner.Plan(Machine(), Change(0.44), Options(), new ManagementState(), null, Now);
        var mutation = Assert.Single(plan.Mutations);
        Assert.Equal(VastEndpoint.CreateAsks, mutation.Endpoint);
        var r = mutation.Listing!;
        Assert.Equal(0.44, r.PriceGpu);
        Assert.Equal(2, r.MinChunk);          // kept
        Assert.Equal(200, r.VolSize);         // kept
        Assert.Equal(0.12, r.VolPrice);
        Assert.Equal(0.15, r.PriceDisk);      // not managed: the machine's own value
        Assert.Equal(0.005, r.PriceInetu);
        Assert.Equal(0.004, r.PriceInetd);
        Assert.Equal(0.1, r.CreditDiscountMax);
        Assert.Equal(0.28, r.PriceMinBid);    // min bid off: kept
        // The fixed end date becomes Vast's rolling duration (listing.offerDuration, 30 days) with this change.
        Assert.Null(r.EndDate);
        Assert.Equal("2592000", r.Duration);

        // listing.offerDuration unset: the fixed end date is re-sent as it is.
        var unmanaged = Assert.Single(ListingPlanner.Plan(Machine(), Change(0.44), Options(x => x.Listing.OfferDuration = null), new ManagementState(), null, Now).Mutations).Listing!;
        Assert.Equal(Machine().EndDate, unmanaged.EndDate);
        Assert.Null(unmanaged.Duration);

        // ... and a rolling duration the host set in the console is kept (neither field sent).
        var rollingByHost = Assert.Single(ListingPlanner.Plan(Machine(m => m with { Duration = 14 * 86400 }), Change(0.44), Options(x => x.Listing.OfferDuration = null), new ManagementState(), null, Now).Mutations).Listing!;
        Assert.Null(rollingByHost.EndDate);
        Assert.Null(rollingByHost.Duration);
    }

    [Fact]
    public void The_end_date_rolls_with_Vast_duration_set_once_when_less_than_the_threshold_remains_then_never_refreshed()
    {
        var o = Options(x => { x.Listing.OfferDuration = TimeSpan.FromDays(30); x.Listing.RefreshWhenLessThan = TimeSpan.FromDays(7); });
        var justAbove = Machine(m => m with { EndDate = Now.AddDays(7).AddMinutes(1).ToUnixTimeSeconds() });
        Assert.Empty(ListingPlanner.Plan(justAbove, Hold(0.40), o, new ManagementState(), null, Now).Mutations);

        var justBelow = Machine(m => m with { EndDate = Now.AddDays(7).AddMinutes(-1).ToUnixTimeSeconds() });
        var plan = ListingPlanner.Plan(justBelow, Hold(0.40), o, new ManagementState(), null, Now);
        var request = Assert.Single(plan.Mutations).Listing!;
        Assert.Equal("2592000", request.Duration); // Vast moves end_date to now + 30 days every day from now on
        Assert.Null(request.EndDate);              // never combined with end_date
        Assert.Equal(0.40, request.PriceGpu);      // the rest unchanged
        Assert.Equal(("change", "refresh"), plan.Items.Where(i => i.Field == "end date").Select(i => (i.Action, i.Reason)).Single());

        var none = Machine(m => m with { EndDate = null });
        Assert.Equal("2592000", Assert.Single(ListingPlanner.Plan(none, Hold(0.40), o, new ManagementState(), null, Now).Mutations).Listing!.Duration);

        // Rolling on Vast with the configured duration: in sync whatever the end date says, with no refresh ever.
        var rolling = Machine(m => m with { Duration = 30 * 86400, EndDate = Now.AddDays(29).ToUnixTimeSeconds() });
        var inSync = ListingPlanner.Plan(rolling, Hold(0.40), o, new ManagementState(), null, Now);
        Assert.Empty(inSync.Mutations);
        Assert.Equal(("keep", "rolling"), inSync.Items.Where(i => i.Field == "end date").Select(i => (i.Action, i.Reason)).Single());

        // A different rolling duration on Vast (the configuration changed): set again.
        var other = Machine(m => m with { Duration = 14 * 86400, EndDate = Now.AddDays(14).ToUnixTimeSeconds() });
        Assert.Equal("2592000", Assert.Single(ListingPlanner.Plan(other, Hold(0.40), o, new ManagementState(), null, Now).Mutations).Listing!.Duration);
    }

    [Fact]
    public void A_window_ahead_turns_a_rolling_listing_into_a_fixed_end_date_at_its_start()
    {
        var start = Now.AddDays(2).ToUnixTimeSeconds();
        var rolling = Machine(m => m with { Duration = 30 * 86400, EndDate = Now.AddDays(30).ToUnixTimeSeconds() });
        var plan = ListingPlanner.Plan(rolling, Hold(0.40), Options(), new ManagementState(), null, Now, new ListingConstraints(start, false, null, false, null));
        var request = Assert.Single(plan.Mutations).Listing!;
        Assert.Equal(start, request.EndDate);
        Assert.Null(request.Duration);
        Assert.Equal(("change", "maintenance_cap"), plan.Items.Where(i => i.Field == "end date").Select(i => (i.Action, i.Reason)).Single());
    }

    [Fact]
    public void Configured_fields_are_enforced_and_a_min_chunk_is_never_null()
    {
        var o = Options(x => { x.Listing.StoragePrice = 0.10; x.Listing.MinChunk = 4; x.Listing.VolumeSizeGb = 0; });
        var request = Assert.Single(ListingPlanner.Plan(Machine(m => m with { ListedMinGpuCount = null }), Hold(0.40), o, new ManagementState(), null, Now).Mutations).Listing!;
        Assert.Equal(0.10, request.PriceDisk);
        Assert.Equal(4, request.MinChunk);
        Assert.Equal(0, request.VolSize);
        Assert.Null(request.VolPrice); // invalid with size 0

        var defaultChunk = ListingPlanner.Plan(Machine(m => m with { ListedMinGpuCount = null }), Change(0.44), Options(), new ManagementState(), null, Now);
        Assert.Equal(1, Assert.Single(defaultChunk.Mutations).Listing!.MinChunk);
    }

    [Fact]
    public void A_min_bid_that_alone_differs_goes_through_the_minbid_endpoint_as_a_ratio_with_floor_and_cap()
    {
        var o = Options(x => { x.MinBid.Mode = MinBidMode.Ratio; x.MinBid.Ratio = 0.6; x.MinBid.Floor = 0.05; });
        var mutation = Assert.Single(ListingPlanner.Plan(Machine(), Hold(0.40), o, new ManagementState(), null, Now).Mutations);
        Assert.Equal((VastEndpoint.MinBid, 0.24), (mutation.Endpoint, mutation.MinBid!.Value));

        var floored = Options(x => { x.MinBid.Mode = MinBidMode.Ratio; x.MinBid.Ratio = 0.1; x.MinBid.Floor = 0.2; });
        Assert.Equal(0.2, Assert.Single(ListingPlanner.Plan(Machine(), Hold(0.40), floored, new ManagementState(), null, Now).Mutations).MinBid);
        var capped = Options(x => { x.MinBid.Mode = MinBidMode.Fixed; x.MinBid.Fixed = 0.9; });
        Assert.Equal(0.40, Assert.Single(ListingPlanner.Plan(Machine(), Hold(0.40), capped, new ManagementState(), null, Now).Mutations).MinBid);
    }

    [Fact]
    public void An_unlisted_machine_is_left_alone_unless_the_agent_unlisted_it_or_listing_is_asked_for()
    {
        var unlisted = Machine(m => m with { Listed = false });
        var plan = ListingPlanner.Plan(unlisted, Change(0.44), Options(), new ManagementState(), null, Now);
        Assert.Empty(plan.Mutations);
        Assert.Equal("unlisted_by_host", plan.Items.Single(i => i.Field == "listing").Reason);

        var relist = ListingPlanner.Plan(unlisted, Hold(0.40), Options(), new ManagementState { UnlistedByAgentReason = "maintenance" }, null, Now);
        Assert.Equal(VastEndpoint.CreateAsks, Assert.Single(relist.Mutations).Endpoint);
        Assert.Equal("relist", relist.Items.Single(i => i.Field == "listing").Reason);

        Assert.Single(ListingPlanner.Plan(unlisted, Hold(0.40), Options(x => x.Listing.ListWhenUnlisted = true), new ManagementState(), null, Now).Mutations);
        Assert.DoesNotContain(ListingPlanner.Plan(unlisted, Hold(0.40), Options(), new ManagementState { UnlistedByAgentReason = "fault" }, null, Now, Suspended).Mutations,
            m => m.Endpoint == VastEndpoint.CreateAsks);
    }

    [Fact]
    public void The_default_job_is_set_kept_or_removed_as_configured_and_removed_while_the_agent_holds_the_machine_unlisted()
    {
        var present = Options(x => { x.DefaultJob.Mode = DefaultJobMode.Present; x.DefaultJob.Image = "vastai/idle:1"; x.DefaultJob.Args = ["-t", "8"]; x.DefaultJob.Price = 0.07; });
        var set = Assert.Single(ListingPlanner.Plan(Machine(), Hold(0.40), present, new ManagementState(), null, Now).Mutations);
        Assert.Equal(VastEndpoint.CreateBids, set.Endpoint);
        Assert.Equal((48211L, 0.07, "vastai/idle:1"), (set.DefaultJob!.Machine, set.DefaultJob.PriceGpu!.Value, set.DefaultJob.Image!));
        Assert.Equal(["-t", "8"], set.DefaultJob.Args!);

        var withJob = Machine(m => m with { BidImage = "vastai/idle:1", BidImageArgsStr = "-t 8", BidGpuCost = 0.07 });
        Assert.Empty(ListingPlanner.Plan(withJob, Hold(0.40), present, new ManagementState(), null, Now).Mutations);
        Assert.Equal(VastEndpoint.RemoveDefaultJob, Assert.Single(ListingPlanner.Plan(withJob, Hold(0.40), present, new ManagementState { UnlistedByAgentReason = "fault" }, null, Now, Suspended).Mutations).Endpoint);
        Assert.Equal(VastEndpoint.RemoveDefaultJob, Assert.Single(ListingPlanner.Plan(withJob, Hold(0.40), Options(x => x.DefaultJob.Mode = DefaultJobMode.Absent), new ManagementState(), null, Now).Mutations).Endpoint);
        Assert.Empty(ListingPlanner.Plan(withJob, Hold(0.40), Options(), new ManagementState(), null, Now).Mutations); // unmanaged
    }

    private static readonly ListingConstraints Suspended = new(null, true, null, false, null);

    [Fact]
    public void A_window_ahead_caps_the_offer_end_date_at_its_start_and_only_when_the_offer_would_outlive_it()
    {
        var o = Options();
        var start = Now.AddDays(2).ToUnixTimeSeconds();
        var capped = ListingPlanner.Plan(Machine(), Hold(0.40), o, new ManagementState(), null, Now, new ListingConstraints(start, false, null, false, null));
        var end = capped.Items.Single(i => i.Field == "end date");
        Assert.Equal(("change", "maintenance_cap"), (end.Action, end.Reason));
        Assert.Equal(start, Assert.Single(capped.Mutations).Listing!.EndDate);

        // Already ending before the window (and not due for its rolling refresh): nothing to do.
        var early = Machine(m => m with { EndDate = start - 3600 });
        var noRefresh = Options(x => x.Listing.RefreshWhenLessThan = TimeSpan.FromDays(1));
        Assert.Empty(ListingPlanner.Plan(early, Hold(0.40), noRefresh, new ManagementState(), null, Now, new ListingConstraints(start, false, null, false, null)).Mutations);

        // Due for a refresh: extended up to the window's start, not beyond.
        Assert.Equal(start, Assert.Single(ListingPlanner.Plan(early, Hold(0.40), o, new ManagementState(), null, Now, new ListingConstraints(start, false, null, false, null)).Mutations).Listing!.EndDate);

        // Minutes before the start the cap still holds (it holds in every state until the window is active).
        var soon = Now.AddMinutes(5).ToUnixTimeSeconds();
        Assert.Equal(soon, Assert.Single(ListingPlanner.Plan(Machine(), Hold(0.40), o, new ManagementState(), null, Now, new ListingConstraints(soon, false, null, false, null)).Mutations).Listing!.EndDate);

        // Seconds before the start an end date would be in the past when Vast applies it: left alone, and never
        // extended by the rolling refresh (the window unlists at its start instead).
        var imminent = Now.AddSeconds(30).ToUnixTimeSeconds();
        var dueForRefresh = Machine(m => m with { EndDate = imminent - 600 });
        var plan = ListingPlanner.Plan(dueForRefresh, Hold(0.40), o, new ManagementState(), null, Now, new ListingConstraints(imminent, false, null, false, null));
        Assert.Empty(plan.Mutations);
        Assert.Equal(("keep", "maintenance_cap"), plan.Items.Where(i => i.Field == "end date").Select(i => (i.Action, i.Reason)).Single());
        Assert.Empty(ListingPlanner.Plan(Machine(), Hold(0.40), o, new ManagementState(), null, Now, new ListingConstraints(imminent, false, null, false, null)).Mutations);
    }

    [Fact]
    public void An_unlist_constraint_unlists_a_listed_machine_once_and_removes_the_default_job_whatever_the_mode()
    {
        var withJob = Machine(m => m with { BidImage = "vastai/idle:1", BidGpuCost = 0.07 });
        var unlist = new ListingConstraints(null, true, "fault guard: gpu_lost", false, null);
        var plan = ListingPlanner.Plan(withJob, Change(0.44), Options(), new ManagementState(), null, Now, unlist);
        Assert.Equal([VastEndpoint.Unlist, VastEndpoint.RemoveDefaultJob], plan.Mutations.Select(m => m.Endpoint));
        Assert.Equal("fault guard: gpu_lost", plan.Mutations[0].UnlistReason);
        Assert.DoesNotContain(plan.Mutations, m => m.Endpoint == VastEndpoint.CreateAsks);  // no price change while held

        var already = Machine(m => m with { Listed = false });
        var held = ListingPlanner.Plan(already, Change(0.44), Options(), new ManagementState { UnlistedByAgentReason = "fault guard" }, null, Now, unlist);
        Assert.Empty(held.Mutations);
        Assert.Equal(("hold", "suspended"), (held.Items.Single(i => i.Field == "listing").Action, held.Items.Single(i => i.Field == "listing").Reason));
    }

    [Fact]
    public void Guard_policy_defaultJob_removes_only_the_job_and_a_saved_job_is_put_back_when_the_mode_is_unmanaged()
    {
        var withJob = Machine(m => m with { BidImage = "host/own:3", BidGpuCost = 0.09 });
        var remove = ListingPlanner.Plan(withJob, Hold(0.40), Options(), new ManagementState(), null, Now, new ListingConstraints(null, false, null, true, null));
        Assert.Equal(VastEndpoint.RemoveDefaultJob, Assert.Single(remove.Mutations).Endpoint);

        var saved = new SavedDefaultJob("host/own:3", ["--gpus", "all"], 0.09);
        var restore = ListingPlanner.Plan(Machine(), Hold(0.40), Options(), new ManagementState(), null, Now, new ListingConstraints(null, false, null, false, saved));
        var put = Assert.Single(restore.Mutations);
        Assert.Equal((VastEndpoint.CreateBids, "host/own:3", 0.09), (put.Endpoint, put.DefaultJob!.Image!, put.DefaultJob.PriceGpu!.Value));
        Assert.Equal(["--gpus", "all"], put.DefaultJob.Args!);
    }
}
