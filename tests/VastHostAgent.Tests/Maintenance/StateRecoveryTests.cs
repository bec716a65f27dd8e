using System.Globalization;
using VastEmulator;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.Host;
using VastHostAgent.Kernel;
using VastHostAgent.Maintenance;
using VastHostAgent.Management;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Maintenance;

/// <summary>
/// Restarts with each state file emptied, <c>{}</c>, truncated or random (defects 12.2, 12.3, 12.4). The rig:
/// the fault guard has unlisted the machine for a lost GPU, and a window scheduled from the command line is on
/// Vast. After the damage and a restart, the agent must set the file aside and say so, change nothing on Vast in
/// the cycle that re-establishes the state, never relist while the GPU is still lost, keep the window and carry it
/// out, and once everything is clear restore the listing exactly once.
/// </summary>
public sealed class StateRecoveryTests
{
    private static readonly DateTimeOffset T0 = MaintenanceRig.DefaultStart;
    private static readonly DateTimeOffset WindowStart = T0.AddMinutes(90);

    private static readonly Dictionary<string, string?> Guarded = new()
    {
        ["faultGuard:enabled"] = "true",
        ["faultGuard:holdFor"] = "00:05:00",
        ["faultGuard:clearFor"] = "00:30:00",
    };

    public static TheoryData<string, string> Damage()
    {
        var data = new TheoryData<string, string>();
        foreach (var file in new[] { ManagementStateStore.FileName, MaintenanceStore.FileName, FaultGuardStore.FileName })
        {
            foreach (var how in new[] { "empty", "{}", "truncated", "random" })
            {
                data.Add(file, how);
            }
        }

        return data;
    }

    private static GpuReading Gpu(int index, bool up) => new()
    {
        Identity = new GpuIdentity(index, $"GPU-{index:D4}", "NVIDIA GeForce RTX 4090", $"00000000:{index + 1:X2}:00.0", index, null, "8.9"),
        Up = up,
        DownReason = up ? null : "GPU_IS_LOST",
        EccVolatileUncorrected = up ? 0 : null,
    };

    private static HostSnapshot Rig(bool gpuLost) => HostSnapshot.Empty
        .WithGpu(new GpuSample { NvmlUp = true, Gpus = [Gpu(0, true), Gpu(1, !gpuLost)] })
        .WithDocker(new DockerState { Up = true })
        .WithDisk(new DiskSpace("/var/lib/docker", "/var/lib/docker", 1_000_000_000_000, 500_000_000_000, 500_000_000_000));

    private static async Task<ReconcileReport> At(MaintenanceRig rig, int minute, bool gpuLost)
    {
        rig.Publish(_ => Rig(gpuLost));
        return await rig.ReconcileAtAsync(T0.AddMinutes(minute));
    }

    private static void DamageFile(string path, string how)
    {
        var text = File.ReadAllText(path);
        switch (how)
        {
            case "empty":
                File.WriteAllText(path, "");
                break;
            case "{}":
                File.WriteAllText(path, "{}");
                break;
            case "truncated":
                File.WriteAllText(path, text[..(text.Length / 2)]);
                break;
            default:
                var bytes = new byte[Math.Max(64, text.Length)];
                new Random(12).NextBytes(bytes);
                File.WriteAllBytes(path, bytes);
                break;
        }
    }

    [Theory]
    [MemberData(nameof(Damage))]
    public async Task A_damaged_state_file_is_set_aside_and_the_agent_re_establishes_it_from_Vast_without_relisting_a_faulty_rig(string file, string how)
    {
        await using var rig = await MaintenanceRig.StartAsync(Guarded);
        for (var m = 0; m < 10; m++)
        {
            await At(rig, m, gpuLost: false);
        }

        for (var m = 10; m < 20; m++)
        {
            await At(rig, m, gpuLost: true);
        }

        Assert.False(rig.Listed);                                                        // the guard unlisted it
        new MaintenanceStore(rig.StateDirectory).Update(b => b with
        {
            Windows = [new MaintenanceWindow { Id = "swap", Source = WindowSource.Cli, Start = WindowStart, Duration = TimeSpan.FromHours(1), Category = "gpu" }],
        });
        var report = await At(rig, 20, gpuLost: true);
        Assert.True(rig.Window("swap").State == WindowState.Scheduled, MaintenanceWindowTests.Explain(rig, "swap", report));
        Assert.Equal(1, rig.VastWindows);

        // The damage, then a restart.
        var path = Path.Combine(rig.StateDirectory, file);
        DamageFile(path, how);
        await rig.RestartAsync();

        // Before the agent's next reconcile, `maint list` / status already say what happened.
        var status = MaintenanceStatus.Read(rig.Host.Services, rig.Now);
        Assert.Contains(status.StateProblems, p => p.StartsWith(file + " was unusable", StringComparison.Ordinal));
        var setAside = Assert.Single(Directory.GetFiles(rig.StateDirectory, file + ".corrupt-*"));

        // The recovery cycle: re-established from this read, nothing changed on Vast.
        var before = rig.Emulator.State.Requests.Count(r => r.Mutation);
        var recovery = await At(rig, 21, gpuLost: true);
        Assert.Contains(recovery.Recovered, r => r.StartsWith(file, StringComparison.Ordinal) && r.Contains(Path.GetFileName(setAside), StringComparison.Ordinal));
        Assert.Equal(before, rig.Emulator.State.Requests.Count(r => r.Mutation));
        Assert.Contains(rig.Journal(), e => e.Kind == "state" && e.Action == "recover" && e.Explanation!.StartsWith(file, StringComparison.Ordinal));
        var metrics = Exposition.Parse(await rig.Host.MetricsAsync());
        Assert.Equal(1, metrics.Value("vasthost_state_file_recoveries_total", ("file", file)));
        Assert.Equal(0, metrics.Value("vasthost_state_file_recovering", ("file", file)));
        Assert.Empty(MaintenanceStatus.Read(rig.Host.Services, rig.Now).StateProblems);
        Assert.Single(Directory.GetFiles(rig.StateDirectory, "*.corrupt-*"));

        // The GPU is still lost: never relisted; the window stays on Vast and in the book (taken back from Vast
        // when the book was lost), and nothing is sent twice.
        for (var m = 22; m < 60; m++)
        {
            await At(rig, m, gpuLost: true);
            Assert.False(rig.Listed, $"relisted at minute {m} while the GPU is still lost");
        }

        var window = Assert.Single(rig.Book.Windows, w => w.Start == WindowStart);
        Assert.Equal(WindowState.Scheduled, window.State);
        Assert.Equal(1, rig.VastWindows);

        // Healthy again from minute 60: clear for 30 minutes at 90, but the window runs 90-150; listed after it.
        for (var m = 60; m < 160; m++)
        {
            await At(rig, m, gpuLost: false);
            if (m < 150)
            {
                Assert.False(rig.Listed, $"listed at minute {m}, before the window ended");
            }
        }

        Assert.True(rig.Listed);
        Assert.Equal(WindowState.Done, rig.Book.Windows.Single(w => w.Start == WindowStart).State);
        Assert.Equal(1, rig.Applied(Endpoints.Dnotify));
        Assert.Equal(0, rig.Requests(Endpoints.CancelMaint));
        Assert.Equal(1, rig.Applied(Endpoints.Unlist));
        Assert.Equal(1, rig.Applied(Endpoints.CreateAsks));                             // the one relist
        Assert.Equal(MaintenanceRig.JobImage, rig.DefaultJob);
    }

    [Fact]
    public async Task A_damaged_file_found_by_a_command_is_still_recovered_by_the_daemon()
    {
        // `maint list` (another process) finds the book damaged and sets it aside; the daemon's next reconcile
        // still knows, from the marker in the new file, that it must take the windows back from Vast.
        await using var rig = await MaintenanceRig.StartAsync(Guarded);
        new MaintenanceStore(rig.StateDirectory).Update(b => b with
        {
            Windows = [new MaintenanceWindow { Id = "swap", Source = WindowSource.Cli, Start = WindowStart, Duration = TimeSpan.FromHours(1), Category = "gpu" }],
        });
        await At(rig, 0, gpuLost: false);
        Assert.Equal(WindowState.Scheduled, rig.Window("swap").State);
        File.WriteAllText(Path.Combine(rig.StateDirectory, MaintenanceStore.FileName), "{\"windows\":[{\"id\":");

        var listed = MaintenanceStatus.Read(rig.Host.Services, rig.Now);   // as `maint list` does
        Assert.Single(listed.StateProblems);
        Assert.Empty(listed.Windows);

        var report = await At(rig, 1, gpuLost: false);
        Assert.Single(report.Recovered);
        var taken = Assert.Single(rig.Book.Windows);
        Assert.Equal((WindowStart, WindowState.Scheduled, true, WindowSource.Vast), (taken.Start, taken.State, taken.ScheduledOnVast, taken.Source));
        await At(rig, 95, gpuLost: false);
        Assert.Equal(WindowState.Active, rig.Book.Windows.Single().State);
        Assert.Equal(1, rig.Applied(Endpoints.Dnotify));
    }

    [Fact]
    public async Task Plan_never_resolves_a_recovery_and_says_no_change_would_be_made()
    {
        await using var rig = await MaintenanceRig.StartAsync(Guarded);
        await At(rig, 0, gpuLost: false);
        File.WriteAllText(Path.Combine(rig.StateDirectory, ManagementStateStore.FileName), "{}");
        var plan = await rig.PlanAsync();
        Assert.Single(plan.Recovered);
        Assert.NotNull(new ManagementStateStore(rig.StateDirectory).Read().Recovery);   // left for the daemon
        var report = await At(rig, 1, gpuLost: false);
        Assert.Single(report.Recovered);
        Assert.Null(new ManagementStateStore(rig.StateDirectory).Read().Recovery);
        _ = CultureInfo.InvariantCulture;
    }
}
