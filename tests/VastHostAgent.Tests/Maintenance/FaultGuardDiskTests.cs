using VastEmulator;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Maintenance;

/// <summary>
/// The fault guard in the real agent, driven by a real, small filesystem filling up under the Docker data root.
/// </summary>
public sealed class FaultGuardDiskTests : MaintenanceProcessTestBase
{
    [Fact]
    public async Task Docker_disk_filling_up_on_a_real_filesystem_triggers_a_cleanup_first_then_unlists_until_space_is_freed()
    {
        var dir = TestEnvironment.NewTempDirectory("guard-disk");
        var mount = Path.Combine(dir, "docker-data");
        Directory.CreateDirectory(mount);
        var mounted = await RunAsync("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mount);
        Assert.True(mounted.ExitCode == 0, $"this test needs to mount a 4 MiB tmpfs (root, as for the private dockerd): {mounted.Output}");
        try
        {
            var config = Config(dir, dockerDataRoot: mount, disk: true, extra: [("VASTHOST_FAULTGUARD__ENABLED", "true"), ("VASTHOST_FAULTGUARD__HOLDFOR", "00:00:03"), ("VASTHOST_FAULTGUARD__CLEARFOR", "00:00:03")]);
            await using var agent = AgentProcess.Start(config);
            await Poll.UntilAsync(() => Applied(Endpoints.CreateBids) == 1, TimeSpan.FromSeconds(30), "in sync");

            var filler = Path.Combine(mount, "layers.bin");
            await File.WriteAllBytesAsync(filler, new byte[(4 * 1024 * 1024) - (64 * 1024)]);
            await Poll.UntilAsync(() => Applied(Endpoints.Cleanup) == 1, TimeSpan.FromSeconds(15), "a cleanup of expired storage contracts");
            Assert.True(Listed);
            await agent.ScrapeUntilAsync(e => e.Value("vasthost_guard_condition_active", ("condition", "disk_low")) == 1, "disk_low after the cleanup did not help");
            await Poll.UntilAsync(() => !Listed, TimeSpan.FromSeconds(15), "the machine to be unlisted");
            Assert.Equal(1, Sent(Endpoints.Cleanup));

            File.Delete(filler);
            await Poll.UntilAsync(() => Listed, TimeSpan.FromSeconds(30), "the machine to be relisted");
            Assert.Equal(1, Sent(Endpoints.Unlist));
            Assert.Equal(1, Sent(Endpoints.Cleanup));
        }
        finally
        {
            await RunAsync("umount", "-l", mount);
        }
    }
}
