using System.Globalization;
using VastEmulator;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.Host;
using VastHostAgent.Kernel;
using VastHostAgent.Maintenance;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Maintenance;

/// <summary>
/// The fault guard: the pure decision (hold, clear, damping, each condition) and, against the emulator on a
/// fake clock, what it does to the listing: unlist after the hold, relist after the clear, never during a
/// window, never a machine the host unlisted, nothing repeated by flapping input, nothing sent in dry-run.
/// </summary>
public sealed class FaultGuardTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.Parse("2026-11-30T08:00:00Z", CultureInfo.InvariantCulture);

    private static readonly FaultGuardOptions Options = new() { Enabled = true, HoldFor = TimeSpan.FromMinutes(5), ClearFor = TimeSpan.FromMinutes(30) };

    private static GpuReading Gpu(int index, bool up = true, ulong? eccUncorrected = 0) => new()
    {
        Identity = new GpuIdentity(index, $"GPU-{index:D4}", "NVIDIA GeForce RTX 4090", $"00000000:{index + 1:X2}:00.0", index, null, "8.9"),
        Up = up,
        DownReason = up ? null : "GPU_IS_LOST",
        EccVolatileUncorrected = up ? eccUncorrected : null,
    };

    private static HostSnapshot Healthy(int gpus = 2) => HostSnapshot.Empty
        .WithGpu(new GpuSample { NvmlUp = true, Gpus = [.. Enumerable.Range(0, gpus).Select(i => Gpu(i))] })
        .WithDocker(new DockerState { Up = true })
        .WithDisk(new DiskSpace("/var/lib/docker", "/var/lib/docker", 1_000_000_000_000, 500_000_000_000, 500_000_000_000));

    private static HostSnapshot GpuLost(HostSnapshot s) => s.WithGpu(s.Gpu! with { Gpus = [Gpu(0), Gpu(1, up: false)] });

    /// <summary>Runs the guard over a timeline of (minute, snapshot) and returns each verdict.</summary>
    private static List<(int Minute, GuardVerdict Verdict)> Run(IEnumerable<(int Minute, HostSnapshot Snapshot)> timeline, FaultGuardOptions? o = null, bool inMaintenance = false)
    {
        var state = new FaultGuardState();
        var verdicts = new List<(int, GuardVerdict)>();
        foreach (var (minute, snapshot) in timeline)
        {
            var verdict = FaultGuard.Evaluate(state, snapshot, o ?? Options, T0.AddMinutes(minute), inMaintenance);
            state = verdict.State;
            verdicts.Add((minute, verdict));
        }

        return verdicts;
    }

    [Fact]
    public void A_lost_GPU_trips_the_guard_only_after_the_hold_time_and_it_clears_only_after_the_clear_time()
    {
        var timeline = Enumerable.Range(0, 80).Select(m => (m, m is >= 10 and < 20 ? GpuLost(Healthy()) : Healthy()));
        var verdicts = Run(timeline);
        var trip = Assert.Single(verdicts, v => v.Verdict.Tripped is not null);
        Assert.Equal(15, trip.Minute);                                            // seen at 10, held 5 minutes
        Assert.Contains("gpu_lost: GPU 1 GPU_IS_LOST", trip.Verdict.Tripped, StringComparison.Ordinal);
        Assert.Equal(50, Assert.Single(verdicts, v => v.Verdict.Cleared).Minute);  // clear from 20, for 30 minutes
        Assert.All(verdicts.Where(v => v.Minute is >= 15 and < 50), v => Assert.True(v.Verdict.State.Tripped));
    }

    [Fact]
    public void Flapping_input_trips_once_holds_while_it_flaps_and_a_repeat_trip_within_a_day_doubles_the_clear_time()
    {
        // Lost for 6 minutes, then flapping every minute for an hour, then healthy.
        var timeline = Enumerable.Range(0, 240).Select(m => (m, m < 6 || (m < 66 && m % 2 == 0) ? GpuLost(Healthy()) : Healthy())).ToList();
        var verdicts = Run(timeline);
        Assert.Single(verdicts, v => v.Verdict.Tripped is not null);
        var cleared = Assert.Single(verdicts, v => v.Verdict.Cleared);
        Assert.Equal(65 + 30, cleared.Minute);   // the last lost reading at 64; clear from 65

        // A second fault the same day: the guard waits twice as long before restoring.
        var state = cleared.Verdict.State;
        for (var m = 100; m <= 106; m++)
        {
            state = FaultGuard.Evaluate(state, GpuLost(Healthy()), Options, T0.AddMinutes(m), false).State;
        }

        Assert.True(state.Tripped);
        var clearedAt = -1;
        for (var m = 107; m < 300 && clearedAt < 0; m++)
        {
            var v = FaultGuard.Evaluate(state, Healthy(), Options, T0.AddMinutes(m), false);
            state = v.State;
            clearedAt = v.Cleared ? m : -1;
        }

        Assert.Equal(107 + 60, clearedAt);
    }

    [Fact]
    public void Each_condition_is_detected_and_each_can_be_switched_off()
    {
        var now = T0;
        GuardVerdict Once(HostSnapshot s, FaultGuardOptions? o = null, FaultGuardState? state = null) => FaultGuard.Evaluate(state ?? new FaultGuardState(), s, o ?? Options, now, false);

        Assert.Equal("NVML_ERROR_DRIVER_NOT_LOADED", Once(Healthy().WithGpu(GpuSample.Unavailable("NVML_ERROR_DRIVER_NOT_LOADED"))).Active[FaultGuard.NvmlUnavailable]);
        Assert.Empty(Once(Healthy().WithGpu(GpuSample.Unavailable("x")), new FaultGuardOptions { Enabled = true, NvmlUnavailable = false }).Active);
        Assert.Equal("cannot connect", Once(Healthy().WithDocker(new DockerState { Up = false, Problem = "cannot connect" })).Active[FaultGuard.DockerDown]);
        Assert.Empty(Once(GpuLost(Healthy()), new FaultGuardOptions { Enabled = true, GpuLost = false }).Active);

        var xid = Healthy().WithGpu(Healthy().Gpu! with { Xids = [new XidCount("GPU-0001", 1, 79, 1, now.AddMinutes(-1))] });
        Assert.Equal("XID 79 on GPU 1", Once(xid).Active[FaultGuard.CriticalXid]);
        var harmless = Healthy().WithGpu(Healthy().Gpu! with { Xids = [new XidCount("GPU-0001", 1, 13, 40, now.AddMinutes(-1))] });
        Assert.Empty(Once(harmless).Active);   // XID 13 (application error) is not in criticalXids
        var old = Healthy().WithGpu(Healthy().Gpu! with { Xids = [new XidCount("GPU-0001", 1, 79, 1, now.AddHours(-2))] });
        Assert.Empty(Once(old).Active);

        // Uncorrectable ECC: a count that rises, not one that is merely non-zero.
        var seen = Once(Healthy().WithGpu(new GpuSample { NvmlUp = true, Gpus = [Gpu(0, eccUncorrected: 3)] })).State;
        Assert.Empty(Once(Healthy().WithGpu(new GpuSample { NvmlUp = true, Gpus = [Gpu(0, eccUncorrected: 3)] }), state: seen).Active);
        Assert.Contains("GPU-0000", Once(Healthy().WithGpu(new GpuSample { NvmlUp = true, Gpus = [Gpu(0, eccUncorrected: 4)] }), state: seen).Active[FaultGuard.EccUncorrectable], StringComparison.Ordinal);
    }

    [Fact]
    public void A_nearly_full_Docker_disk_first_asks_for_a_cleanup_and_counts_as_a_fault_only_if_space_stays_low()
    {
        var full = Healthy().WithDisk(new DiskSpace("/var/lib/docker", "/var/lib/docker", 1_000_000_000_000, 20_000_000_000, 10_000_000_000));
        var first = FaultGuard.Evaluate(new FaultGuardState(), full, Options, T0, false);
        Assert.True(first.RequestCleanup);
        Assert.Empty(first.Active);

        // Still low within the hold: no second cleanup, not yet a fault.
        var second = FaultGuard.Evaluate(first.State, full, Options, T0.AddMinutes(2), false);
        Assert.False(second.RequestCleanup);
        Assert.Empty(second.Active);

        // Still low after the hold: a fault (and it must then hold again before the guard trips).
        var third = FaultGuard.Evaluate(second.State, full, Options, T0.AddMinutes(5), false);
        Assert.Contains("10.0 GB free of 1000.0 GB on /var/lib/docker after a cleanup", third.Active[FaultGuard.DiskLow], StringComparison.Ordinal);
        Assert.Null(third.Tripped);
        Assert.NotNull(FaultGuard.Evaluate(third.State, full, Options, T0.AddMinutes(10), false).Tripped);

        // The cleanup freed space: nothing happens, and the next low-space episode cleans up first again.
        var freed = FaultGuard.Evaluate(second.State, Healthy(), Options, T0.AddMinutes(3), false);
        Assert.Empty(freed.Active);
        Assert.True(FaultGuard.Evaluate(freed.State, full, Options, T0.AddMinutes(60), false).RequestCleanup);
    }

    [Fact]
    public void The_guard_never_trips_during_maintenance()
    {
        var verdicts = Run(Enumerable.Range(0, 60).Select(m => (m, GpuLost(Healthy()))), inMaintenance: true);
        Assert.DoesNotContain(verdicts, v => v.Verdict.State.Tripped);
        Assert.All(verdicts, v => Assert.True(v.Verdict.Active.ContainsKey(FaultGuard.GpuLost)));
    }

    // ------------------------------------------------------------------ against the emulator

    private static readonly Dictionary<string, string?> Guarded = new()
    {
        ["faultGuard:enabled"] = "true",
        ["faultGuard:holdFor"] = "00:05:00",
        ["faultGuard:clearFor"] = "00:30:00",
    };

    private static Dictionary<string, string?> With(params (string Key, string? Value)[] extra)
    {
        var all = new Dictionary<string, string?>(Guarded);
        foreach (var (k, v) in extra)
        {
            all[k] = v;
        }

        return all;
    }

    private static async Task RunMinutesAsync(MaintenanceRig rig, int from, int to, Func<int, HostSnapshot> snapshot, bool dryRun = false)
    {
        for (var m = from; m < to; m++)
        {
            rig.Publish(_ => snapshot(m));
            await rig.ReconcileAtAsync(MaintenanceRig.DefaultStart.AddMinutes(m), dryRun);
        }
    }

    [Fact]
    public async Task A_lost_GPU_unlists_the_machine_after_the_hold_and_it_is_relisted_with_its_default_job_after_the_clear()
    {
        await using var rig = await MaintenanceRig.StartAsync(Guarded);
        await RunMinutesAsync(rig, 0, 10, _ => Healthy());
        Assert.True(rig.Listed);
        var baseline = rig.Emulator.State.Requests.Count(r => r.Mutation);

        await RunMinutesAsync(rig, 10, 14, _ => GpuLost(Healthy()));
        Assert.True(rig.Listed);                                       // within the hold time
        await RunMinutesAsync(rig, 14, 20, _ => GpuLost(Healthy()));
        Assert.False(rig.Listed);
        Assert.Null(rig.DefaultJob);
        var m = Exposition.Parse(await rig.Host.MetricsAsync());
        Assert.Equal(1, m.Value("vasthost_guard_degraded"));
        Assert.Equal(1, m.Value("vasthost_guard_condition_active", ("condition", "gpu_lost")));
        Assert.Equal(1, m.Value("vasthost_guard_trips_total"));
        Metrics.MetricsDocumentationTests.AssertDocumented(m);
        Assert.Contains(rig.Journal(), e => e.Kind == "fault guard" && e.Action == "trip" && e.Explanation!.Contains("GPU 1 GPU_IS_LOST", StringComparison.Ordinal));

        await RunMinutesAsync(rig, 20, 49, _ => Healthy());
        Assert.False(rig.Listed);                                      // clear, but not yet for 30 minutes
        await RunMinutesAsync(rig, 49, 60, _ => Healthy());
        Assert.True(rig.Listed);
        Assert.Equal(MaintenanceRig.JobImage, rig.DefaultJob);
        Assert.Equal(0, Exposition.Parse(await rig.Host.MetricsAsync()).Value("vasthost_guard_degraded"));

        var mutations = rig.Emulator.State.Requests.Where(r => r.Mutation).Skip(baseline).Select(r => r.Endpoint).ToList();
        Assert.Equal([Endpoints.Unlist, Endpoints.RemoveDefjob, Endpoints.CreateAsks, Endpoints.CreateBids], mutations);
    }

    [Fact]
    public async Task Flapping_hardware_for_hours_causes_one_unlist_and_one_relist()
    {
        await using var rig = await MaintenanceRig.StartAsync(Guarded);
        await RunMinutesAsync(rig, 0, 5, _ => Healthy());
        var rng = new Random(7);
        var flapping = Enumerable.Range(0, 180).Select(_ => rng.NextDouble() < 0.5).ToArray();
        await RunMinutesAsync(rig, 5, 15, _ => GpuLost(Healthy()));
        await RunMinutesAsync(rig, 15, 195, m => flapping[m - 15] ? GpuLost(Healthy()) : Healthy());
        await RunMinutesAsync(rig, 195, 300, _ => Healthy());
        Assert.Equal(1, rig.Applied(Endpoints.Unlist));
        Assert.Equal(1, rig.Applied(Endpoints.CreateAsks));
        Assert.True(rig.Listed);
    }

    [Fact]
    public async Task The_guard_never_unlists_during_a_window_and_never_relists_a_machine_the_host_unlisted()
    {
        var start = MaintenanceRig.DefaultStart.AddMinutes(60);
        await using var rig = await MaintenanceRig.StartAsync(With(
            ("maintenance:unlistDuring", "false"),
            ("maintenance:windows:0:id", "w"),
            ("maintenance:windows:0:start", start.ToString("o", CultureInfo.InvariantCulture)),
            ("maintenance:windows:0:duration", "01:00:00"),
            ("maintenance:windows:0:category", "gpu")));

        // A GPU is pulled during the window (that is what the window is for): the guard does not act.
        await RunMinutesAsync(rig, 0, 60, _ => Healthy());
        await RunMinutesAsync(rig, 60, 115, _ => GpuLost(Healthy()));
        Assert.Equal(WindowState.Active, rig.Window("w").State);
        Assert.Equal(0, Exposition.Parse(await rig.Host.MetricsAsync()).Value("vasthost_guard_degraded"));
        await RunMinutesAsync(rig, 115, 125, _ => Healthy());
        Assert.Equal(WindowState.Done, rig.Window("w").State);
        Assert.Equal(0, rig.Applied(Endpoints.Unlist));

        // The host unlists by hand; then a GPU is lost and comes back: the guard neither unlists nor relists.
        await rig.Host.Client.UnlistMachineAsync(rig.MachineId, default);
        var before = rig.Emulator.State.Requests.Count(r => r.Mutation);
        await RunMinutesAsync(rig, 125, 140, _ => GpuLost(Healthy()));
        Assert.Equal(1, Exposition.Parse(await rig.Host.MetricsAsync()).Value("vasthost_guard_degraded"));
        await RunMinutesAsync(rig, 140, 200, _ => Healthy());
        Assert.Equal(0, Exposition.Parse(await rig.Host.MetricsAsync()).Value("vasthost_guard_degraded"));
        Assert.False(rig.Listed);
        Assert.DoesNotContain(rig.Emulator.State.Requests.Where(r => r.Mutation).Skip(before), r => r.Endpoint is Endpoints.Unlist or Endpoints.CreateAsks);
    }

    [Fact]
    public async Task Policy_defaultJob_only_takes_the_hosts_own_job_off_and_puts_the_same_job_back()
    {
        await using var rig = await MaintenanceRig.StartAsync(With(("faultGuard:policy", "defaultJob"), ("management:defaultJob:mode", "unmanaged"), ("management:defaultJob:image", "")));
        await rig.Host.Client.SetDefaultJobAsync(new VastHostAgent.Vast.CreateBidsRequest(rig.MachineId, 0.06, null, null, "host/own-job:5", ["--threads", "4"]), default);
        await RunMinutesAsync(rig, 0, 20, m => m < 5 ? Healthy() : Healthy().WithDocker(new DockerState { Up = false, Problem = "dockerd not running" }));
        Assert.True(rig.Listed);
        Assert.Null(rig.DefaultJob);
        Assert.Contains(rig.Journal(), e => e.Kind == "fault guard" && e.Reason == "remove_default_job" && e.Explanation!.Contains("docker_down: dockerd not running", StringComparison.Ordinal));

        await RunMinutesAsync(rig, 20, 60, _ => Healthy());
        Assert.Equal("host/own-job:5", rig.DefaultJob);
        Assert.Equal(0.06, rig.Machine["bid_gpu_cost"]!.GetValue<double>());
        Assert.Equal(0, rig.Applied(Endpoints.Unlist));
        Assert.Equal(2, rig.Applied(Endpoints.CreateBids));   // the host's own, and the agent's restore
    }

    [Fact]
    public async Task A_nearly_full_disk_asks_Vast_to_clean_up_first_and_unlists_only_if_space_stays_low()
    {
        await using var rig = await MaintenanceRig.StartAsync(Guarded);
        var full = Healthy().WithDisk(new DiskSpace("/var/lib/docker", "/var/lib/docker", 1_000_000_000_000, 20_000_000_000, 10_000_000_000));
        await RunMinutesAsync(rig, 0, 4, _ => full);
        Assert.Equal(1, rig.Applied(Endpoints.Cleanup));
        Assert.True(rig.Listed);
        await RunMinutesAsync(rig, 4, 15, _ => full);
        Assert.Equal(1, rig.Requests(Endpoints.Cleanup));
        Assert.False(rig.Listed);
        Assert.Equal(1, Exposition.Parse(await rig.Host.MetricsAsync()).Value("vasthost_guard_condition_active", ("condition", "disk_low")));
    }

    [Fact]
    public async Task In_dry_run_the_guard_decides_and_journals_but_sends_nothing()
    {
        await using var rig = await MaintenanceRig.StartAsync(With(("management:dryRun", "true")));
        await RunMinutesAsync(rig, 0, 20, m => m < 5 ? Healthy() : GpuLost(Healthy()), dryRun: true);
        Assert.DoesNotContain(rig.Emulator.State.Requests, r => r.Mutation);
        Assert.True(rig.Listed);
        var journal = rig.Journal();
        Assert.Contains(journal, e => e.Kind == "fault guard" && e.Action == "trip" && e.DryRun);
        Assert.Contains(journal, e => e.Kind == "mutation" && e.Result == "dry_run" && e.Explanation!.StartsWith("unlist: fault guard", StringComparison.Ordinal));
    }
}
