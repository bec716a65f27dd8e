using System.Globalization;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.GpuCount;
using VastHostAgent.Host;
using VastHostAgent.Kernel;
using VastHostAgent.Maintenance;

namespace VastHostAgent.Tests.Maintenance;

/// <summary>The fault guard and the GPU-count truth: a GPU passed through to a VM is never lost; a missing GPU trips <c>gpu_missing</c>.</summary>
public sealed class FaultGuardGpuCountTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.Parse("2026-11-30T08:00:00Z", CultureInfo.InvariantCulture);

    private static readonly FaultGuardOptions Options = new() { Enabled = true, HoldFor = TimeSpan.FromMinutes(5), ClearFor = TimeSpan.FromMinutes(30) };

    private static GpuReading Gpu(int index, bool up = true) => new()
    {
        Identity = new GpuIdentity(index, $"GPU-{index:D4}", "NVIDIA GeForce RTX 4090", $"00000000:{index + 1:X2}:00.0", index, null, "8.9"),
        Up = up,
        DownReason = up ? null : "GPU_IS_LOST",
    };

    /// <summary>Four GPUs; those in <paramref name="vfio"/> (indices) are bound to vfio-pci and NVML holds them lost; <paramref name="missing"/> as the scan found them.</summary>
    private static HostSnapshot Rig(int[] vfio, params MissingGpu[] missing) => HostSnapshot.Empty
        .WithGpu(new GpuSample { NvmlUp = true, Gpus = [.. Enumerable.Range(0, 4).Select(i => Gpu(i, up: !vfio.Contains(i)))] })
        .WithGpuCount(new GpuCountSample
        {
            Expected = 4,
            ExpectedSource = "Vast",
            Nvml = 4 - vfio.Length,
            PciScanned = true,
            Passthrough = [.. vfio.Select(i => string.Create(CultureInfo.InvariantCulture, $"0000:{i + 1:x2}:00.0"))],
            Missing = missing,
        })
        .WithDocker(new DockerState { Up = true })
        .WithDisk(new DiskSpace("/var/lib/docker", "/var/lib/docker", 1_000_000_000_000, 500_000_000_000, 500_000_000_000));

    private static List<(int Minute, GuardVerdict Verdict)> Run(IEnumerable<(int Minute, HostSnapshot Snapshot)> timeline, FaultGuardOptions? o = null)
    {
        var state = new FaultGuardState();
        var verdicts = new List<(int, GuardVerdict)>();
        foreach (var (minute, snapshot) in timeline)
        {
            var verdict = FaultGuard.Evaluate(state, snapshot, o ?? Options, T0.AddMinutes(minute), inMaintenance: false);
            state = verdict.State;
            verdicts.Add((minute, verdict));
        }

        return verdicts;
    }

    [Fact]
    public void Gpus_passed_through_to_a_VM_rental_are_never_lost_for_hours()
    {
        var verdicts = Run(Enumerable.Range(0, 240).Select(m => (m, Rig(m >= 10 ? [2, 3] : []))));
        Assert.All(verdicts, v => Assert.Empty(v.Verdict.Active));
        Assert.DoesNotContain(verdicts, v => v.Verdict.Tripped is not null);
        Assert.Empty(RigObservations.FromSnapshot(Rig([2, 3])).LostGpus);
    }

    [Fact]
    public void A_lost_gpu_that_is_not_passed_through_is_still_lost()
    {
        var snapshot = Rig([3]);
        snapshot = snapshot.WithGpu(snapshot.Gpu! with { Gpus = [Gpu(0), Gpu(1, up: false), Gpu(2), Gpu(3, up: false)] });
        Assert.Equal(["GPU 1 GPU_IS_LOST"], RigObservations.FromSnapshot(snapshot).LostGpus);
    }

    [Fact]
    public void A_missing_gpu_trips_gpu_missing_after_the_hold_time_and_clears_after_the_clear_time()
    {
        var gone = Rig([], new MissingGpu("0000:02:00.0", MissingReason.Gone));
        var verdicts = Run(Enumerable.Range(0, 80).Select(m => (m, m is >= 10 and < 20 ? gone : Rig([]))));
        var trip = Assert.Single(verdicts, v => v.Verdict.Tripped is not null);
        Assert.Equal(15, trip.Minute);
        Assert.Equal("gpu_missing: 0000:02:00.0 gone", trip.Verdict.Tripped);
        Assert.Equal(50, Assert.Single(verdicts, v => v.Verdict.Cleared).Minute); // clear from 20, 30 minutes
    }

    [Fact]
    public void Gpu_missing_can_be_turned_off()
    {
        var noDriver = Rig([], new MissingGpu("0000:04:00.0", MissingReason.NoDriver));
        var verdicts = Run(Enumerable.Range(0, 30).Select(m => (m, noDriver)), new FaultGuardOptions { Enabled = true, GpuMissing = false });
        Assert.All(verdicts, v => Assert.Empty(v.Verdict.Active));
    }

    [Fact]
    public void A_controllers_observation_with_missing_gpus_trips_the_same_condition()
    {
        var rig = new RigObservation { MissingGpus = ["1 GPU(s) missing on the rig (vasthost_gpus{state=\"missing\"})"] };
        var state = new FaultGuardState();
        var first = FaultGuard.Evaluate(state, rig, Options, T0, inMaintenance: false);
        var held = FaultGuard.Evaluate(first.State, rig, Options, T0.AddMinutes(5), inMaintenance: false);
        Assert.Contains(FaultGuard.GpuMissing, first.Active.Keys);
        Assert.StartsWith("gpu_missing: 1 GPU(s) missing", held.Tripped, StringComparison.Ordinal);
    }
}
