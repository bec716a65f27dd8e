using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using VastEmulator;
using VastHostAgent.Management;
using VastHostAgent.Tests.Support;
using VastHostAgent.Tests.Vast;
using VastHostAgent.Vast;

namespace VastHostAgent.Tests.Management;

/// <summary>
/// Reconciling the listing against the emulator: convergence, zero mutations in sync, dry-run, the fleet
/// excluded from peers, faults that must never duplicate a mutation, restarts, the budget. The emulator's
/// request log is the evidence.
/// </summary>
public sealed class ReconcilerTests : IAsyncLifetime
{
    private const double Scale = 0.02;
    private RunningEmulator _emulator = null!;
    private string _stateDir = null!;

    private int MachineId => _emulator.State.OwnMachineIds[0];

    public async Task InitializeAsync()
    {
        _emulator = await EmulatorApp.StartAsync(new EmulatorOptions
        {
            RateLimitScale = Scale,
            OfferCount = 1500,
            MachineHostnames = ["rig-01", "rig-02"],
            DuplicateOfferFraction = 0.1,
        });
        _stateDir = TestEnvironment.NewTempDirectory("mgmt");
    }

    public async Task DisposeAsync() => await _emulator.DisposeAsync();

    private VastTestClient Host(Dictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?>
        {
            ["vast:machineId"] = MachineId.ToString(CultureInfo.InvariantCulture),
            ["vast:spacingScale"] = Scale.ToString(CultureInfo.InvariantCulture),
            ["vast:defaultSpacingSeconds"] = "1",
            ["vast:requestTimeout"] = "00:00:02",
            ["agent:stateDirectory"] = _stateDir,
            ["management:enabled"] = "true",
            ["management:dryRun"] = "false",
            ["management:pricing:strategy"] = "market",
            ["management:pricing:floor"] = "0.10",
            ["management:pricing:ceiling"] = "2.0",
            ["management:pricing:cooldown"] = "00:00:00",
            ["management:pricing:maxChangePerStep"] = "1.0",
            ["management:pricing:market:minPeers"] = "3",
        };
        foreach (var (k, v) in settings ?? [])
        {
            all[k] = v;
        }

        return VastTestClient.Create(all, _emulator.BaseUrl, _emulator.ApiKey);
    }

    private static Reconciler ReconcilerOf(VastTestClient host) => host.Services.GetRequiredService<Reconciler>();

    private IReadOnlyList<RequestLogEntry> Mutations() => [.. _emulator.State.Requests.Where(r => r.Mutation)];

    [Fact]
    public async Task The_listing_converges_on_the_market_and_stays_in_sync_with_zero_mutations_over_many_cycles()
    {
        await using var host = Host();
        var first = await ReconcilerOf(host).RunAsync(apply: true, dryRun: false, default);
        var applied = Assert.Single(first.Results);
        Assert.Equal(MutationResult.Applied, applied.Result);
        Assert.Equal(VastEndpoint.CreateAsks, applied.Mutation.Endpoint);
        var market = ReconcilerOf(host).Market!;
        var expected = Math.Round(PricingEngine.Percentile(market.PeerPrices, 50), 4);
        var listed = (await host.Client.GetMachineAsync(MachineId, default)).ListedGpuCost;
        Assert.Equal(expected, listed);

        for (var i = 0; i < 15; i++)
        {
            var report = await ReconcilerOf(host).RunAsync(apply: true, dryRun: false, default);
            Assert.Empty(report.Plan!.Mutations);
        }

        Assert.Single(Mutations());
        Assert.True(market.PeerPrices.Count >= 3);
    }

    [Fact]
    public async Task Peers_exclude_this_machine_and_every_other_machine_of_the_same_host()
    {
        await using var host = Host();
        await ReconcilerOf(host).RunAsync(apply: false, dryRun: true, default);
        var market = ReconcilerOf(host).Market!;
        var ownOffers = _emulator.State.OffersJson().Select(o => o!.AsObject())
            .Where(o => (int)o["host_id"]! == _emulator.State.PrimaryUserId && (string)o["gpu_name"]! == "RTX 4090"
                        && (int)o["num_gpus"]! >= 8 && (bool)o["rentable"]!)
            .ToList();
        Assert.NotEmpty(ownOffers);                           // rig-01 and rig-02 both offer 8 GPUs
        Assert.True(market.OwnExcluded >= ownOffers.Count, $"excluded {market.OwnExcluded} of {ownOffers.Count} own offers");
        Assert.Equal("learned from this machine's offers", market.HostShareSource);
        Assert.InRange(market.HostShare, 0.74, 0.76);
    }

    [Fact]
    public async Task Dry_run_decides_and_journals_but_never_mutates()
    {
        await using var host = Host(new() { ["management:dryRun"] = "true", ["management:listing:storagePrice"] = "0.09" });
        for (var i = 0; i < 3; i++)
        {
            var report = await ReconcilerOf(host).RunAsync(apply: true, dryRun: true, default);
            Assert.All(report.Results, r => Assert.Equal(MutationResult.DryRun, r.Result));
            Assert.NotEmpty(report.Results);
        }

        Assert.Empty(Mutations());
        var journal = host.Services.GetRequiredService<DecisionJournal>().Tail(100);
        Assert.All(journal, e => Assert.True(e.DryRun));
        Assert.Contains(journal, e => e.Kind == "storage price" && e.Action == "change" && e.Result == "dry_run");
        Assert.Contains(journal, e => e.Kind == "gpu price" && e.Inputs!.Peers >= 3 && e.Inputs.P50 is not null);
        Assert.Contains("vasthost_management_dry_run 1", await host.MetricsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_lost_answer_after_a_successful_change_is_never_resent_the_next_cycle_sees_it_done()
    {
        await using var host = Host(new() { ["management:pricing:strategy"] = "fixed", ["management:pricing:fixedPrice"] = "0.555" });
        _emulator.State.AddFault(new FaultSpec(Endpoints.CreateAsks, DelayMs: 3000, PassThrough: true));

        var first = await ReconcilerOf(host).RunAsync(apply: true, dryRun: false, default);
        Assert.Equal(MutationResult.OutcomeUnknown, Assert.Single(first.Results).Result);
        await Poll.UntilAsync(() => _emulator.State.Requests.Any(r => r.Endpoint == Endpoints.CreateAsks && r.Applied), TimeSpan.FromSeconds(10), "the delayed create_asks to land");

        var second = await ReconcilerOf(host).RunAsync(apply: true, dryRun: false, default);
        Assert.Empty(second.Plan!.Mutations);
        Assert.Equal(0.555, second.Plan.Machine.ListedGpuCost);
        Assert.Single(Mutations());
    }

    [Fact]
    public async Task A_429_storm_and_an_open_circuit_delay_the_reconcile_but_never_duplicate_a_mutation()
    {
        await using var host = Host(new() { ["management:pricing:strategy"] = "fixed", ["management:pricing:fixedPrice"] = "0.45", ["vast:circuitBreakerFailures"] = "2", ["vast:readRetries"] = "0" });
        _emulator.State.AddFault(new FaultSpec(Endpoints.CreateAsks, 429, Count: 3));
        for (var i = 0; i < 3; i++)
        {
            var report = await ReconcilerOf(host).RunAsync(apply: true, dryRun: false, default);
            Assert.Equal(MutationResult.RateLimited, Assert.Single(report.Results).Result);
            Assert.NotNull(report.BackOff);
        }

        Assert.Equal(3, Mutations().Count);   // one attempt per cycle, each refused with nothing applied
        Assert.DoesNotContain(Mutations(), r => r.Applied);
    }

    [Fact]
    public async Task An_open_circuit_stops_the_reconcile_before_any_mutation()
    {
        await using var host = Host(new() { ["management:pricing:strategy"] = "fixed", ["management:pricing:fixedPrice"] = "0.45", ["vast:circuitBreakerFailures"] = "2", ["vast:readRetries"] = "0" });
        _emulator.State.AddFault(new FaultSpec(Endpoints.ShowMachine, 503, Count: 2));
        Assert.Contains("HTTP 503", (await ReconcilerOf(host).RunAsync(apply: true, dryRun: false, default)).Problem, StringComparison.Ordinal);
        Assert.Contains("HTTP 503", (await ReconcilerOf(host).RunAsync(apply: true, dryRun: false, default)).Problem, StringComparison.Ordinal);
        var blocked = await ReconcilerOf(host).RunAsync(apply: true, dryRun: false, default);
        Assert.Contains("circuit breaker is open", blocked.Problem, StringComparison.Ordinal);
        Assert.Empty(Mutations());
        Assert.Equal(2, _emulator.State.Requests.Count(r => r.Endpoint == Endpoints.ShowMachine)); // the third was never sent
    }

    [Fact]
    public async Task A_restart_between_decide_and_apply_re_reads_instead_of_resending()
    {
        await using (var before = Host(new() { ["management:pricing:strategy"] = "fixed", ["management:pricing:fixedPrice"] = "0.50" }))
        {
            await ReconcilerOf(before).RunAsync(apply: true, dryRun: false, default);
        }

        Assert.Single(Mutations());
        // The process died after sending a change and before hearing back: the write-ahead note remains.
        var store = new ManagementStateStore(_stateDir);
        store.Update(s => s with { Pending = new PendingMutation(DateTimeOffset.UtcNow, "create_asks", "create_asks: price 0.5") });

        await using var after = Host(new() { ["management:pricing:strategy"] = "fixed", ["management:pricing:fixedPrice"] = "0.50" });
        var report = await ReconcilerOf(after).RunAsync(apply: true, dryRun: false, default);
        Assert.Empty(report.Plan!.Mutations);
        Assert.Single(Mutations());
        Assert.Null(new ManagementStateStore(_stateDir).Load().Pending);
        Assert.Contains(after.Services.GetRequiredService<DecisionJournal>().Tail(50),
            e => e.Reason == "outcome_unknown" && e.Endpoint == "create_asks" && e.Explanation!.Contains("the agent stopped before the answer", StringComparison.Ordinal));
        Assert.NotNull(new ManagementStateStore(_stateDir).Load().Unknown); // quarantined until a later read shows what Vast did
        // What was applied, and when, survived the restart: the cooldown still counts from the first change.
        Assert.NotNull(new ManagementStateStore(_stateDir).Load().LastPriceChangeAt);
        Assert.Equal(0.50, new ManagementStateStore(_stateDir).Load().LastApplied!.PriceGpu);
    }

    [Fact]
    public async Task An_unlist_Vast_applied_while_the_agent_was_gone_is_still_the_agents_own_and_is_undone_once_its_reason_is_gone()
    {
        await using var host = Host(new() { ["management:pricing:strategy"] = "off" });
        // The agent died with the fault guard's unlist in flight and Vast applied it; the fault has cleared since.
        await host.Client.UnlistMachineAsync(MachineId, default);
        new ManagementStateStore(_stateDir).Update(s => s with { Pending = new PendingMutation(DateTimeOffset.UtcNow.AddHours(-1), "unlist", "unlist: fault guard: gpu_lost: GPU 1 lost") });

        var report = await ReconcilerOf(host).RunAsync(apply: true, dryRun: false, default);
        Assert.Equal(VastEndpoint.CreateAsks, Assert.Single(report.Plan!.Mutations).Endpoint);   // relisted, not left off the market
        Assert.True((await host.Client.GetMachineAsync(MachineId, default)).Listed);
        Assert.Single(Mutations(), r => r.Endpoint == Endpoints.Unlist);
        Assert.Null(new ManagementStateStore(_stateDir).Load().UnlistedByAgentReason);
    }

    [Fact]
    public async Task A_change_the_host_made_by_hand_to_an_unmanaged_field_is_kept()
    {
        await using var host = Host(new() { ["management:pricing:strategy"] = "fixed", ["management:pricing:fixedPrice"] = "0.48" });
        await ReconcilerOf(host).RunAsync(apply: true, dryRun: false, default);
        var machine = await host.Client.GetMachineAsync(MachineId, default);

        // The host changes the storage price in the web console.
        await host.Client.ListMachineAsync(new CreateAsksRequest
        {
            Machine = MachineId,
            PriceGpu = machine.ListedGpuCost,
            PriceDisk = 0.33,
            PriceInetu = machine.ListedInetUpCost,
            PriceInetd = machine.ListedInetDownCost,
            PriceMinBid = machine.MinBidPrice,
            MinChunk = (int)(machine.ListedMinGpuCount ?? 1),
            EndDate = machine.EndDate,
            CreditDiscountMax = machine.CreditDiscountMax,
            VolSize = (long?)machine.VolumeTotalSize,
            VolPrice = machine.ListedVolumeCost,
        }, default);
        var before = Mutations().Count;

        var report = await ReconcilerOf(host).RunAsync(apply: true, dryRun: false, default);
        Assert.Empty(report.Plan!.Mutations);
        Assert.Equal(before, Mutations().Count);
        Assert.Equal(0.33, (await host.Client.GetMachineAsync(MachineId, default)).ListedStorageCost);
    }

    [Fact]
    public async Task The_mutation_budget_caps_changes_per_hour()
    {
        await using var host = Host(new()
        {
            ["management:mutationBudgetPerHour"] = "1",
            ["management:pricing:strategy"] = "fixed",
            ["management:pricing:fixedPrice"] = "0.41",
            ["management:defaultJob:mode"] = "present",
            ["management:defaultJob:image"] = "vastai/idle:latest",
        });
        var report = await ReconcilerOf(host).RunAsync(apply: true, dryRun: false, default);
        Assert.Equal([MutationResult.Applied, MutationResult.SkippedBudget], report.Results.Select(r => r.Result));
        Assert.Single(Mutations());
        Assert.Contains("vasthost_management_mutations_total{endpoint=\"create_bids\",result=\"skipped_budget\"} 1", await host.MetricsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Too_few_peers_and_no_metrics_hold_the_price()
    {
        await using var host = Host(new() { ["management:pricing:market:minPeers"] = "10000", ["management:pricing:market:useMetricsFallback"] = "false" });
        var listed = (await host.Client.GetMachineAsync(MachineId, default)).ListedGpuCost;
        var report = await ReconcilerOf(host).RunAsync(apply: true, dryRun: false, default);
        Assert.Equal("too_few_peers", report.Plan!.Price.Reason);
        Assert.Empty(report.Plan.Mutations);
        Assert.Equal(listed, report.Plan.Machine.ListedGpuCost);
        Assert.Empty(Mutations());
    }

    [Fact]
    public async Task The_journal_rotates_at_its_size_cap_and_keeps_three_old_files()
    {
        var dir = TestEnvironment.NewTempDirectory("journal");
        var journal = new DecisionJournal(dir, 16 * 1024);
        var entry = new JournalEntry { Time = DateTimeOffset.UtcNow, Kind = "gpu price", Action = "hold", Reason = "in_sync", DryRun = false, Explanation = new string('x', 900) };
        for (var i = 0; i < 200; i++)
        {
            journal.Write([entry]);
        }

        Assert.True(new FileInfo(journal.Path).Length <= 16 * 1024);
        Assert.True(File.Exists(journal.Path + ".1"));
        Assert.True(File.Exists(journal.Path + ".3"));
        Assert.False(File.Exists(journal.Path + ".4"));
        Assert.Equal("in_sync", journal.Tail(1).Single().Reason);
        await Task.CompletedTask;
    }
}
