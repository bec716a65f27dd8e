using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Packaging;

/// <summary>The tarball scripts/package.sh builds: it carries everything, and its install.sh installs its own binary.</summary>
public sealed class TarballPackageTests(ITestOutputHelper output)
{
    private static string Version => PackageBuild.Version;

    [Fact]
    public async Task The_tarball_carries_everything_and_its_install_sh_installs_its_own_binary()
    {
        var (dist, log) = await PackageBuild.DistAsync();
        output.WriteLine(log);
        var tarball = Path.Combine(dist, $"vast-host-agent-{Version}-linux-x64.tar.gz");
        Assert.True(File.Exists(tarball), tarball);
        output.WriteLine($"tarball: {new FileInfo(tarball).Length:N0} bytes");

        var extract = TestEnvironment.NewTempDirectory("tarball");
        Assert.Equal(0, (await Tools.RunAsync("tar", "-xzf", tarball, "-C", extract)).ExitCode);
        var top = Path.Combine(extract, $"vast-host-agent-{Version}-linux-x64");
        foreach (var file in new[]
                 {
                     "install.sh", "bin/vast-host-agent", "packaging/systemd/vast-host-agent.service", "packaging/systemd/vast-host-agent-rig.service", "packaging/config/agent.example.json",
                     "packaging/prometheus/vast-host-agent.rules.yml", "packaging/prometheus/scrape-config.example.yml",
                     "packaging/alertmanager/alertmanager.yml", "packaging/alertmanager/vast-host-agent.tmpl", "packaging/alertmanager/inline-secrets.sh", "packaging/alertmanager/README.md",
                     "packaging/grafana/dashboards/vast-host-fleet.json", "packaging/grafana/dashboards/vast-host-agent-fleet.json", "packaging/grafana/dashboards/vast-host-rig.json", "README.md", "LICENSE",
                 })
        {
            Assert.True(File.Exists(Path.Combine(top, file)), file);
        }

        // install.sh from the tarball (no checkout, no SDK): installs bin/vast-host-agent.
        var rig = InstallScriptTests.NewRig();
        var (exit, stdout, stderr) = await rig.RunAsync(Path.Combine(top, "install.sh"));
        Assert.True(exit == 0, stdout + stderr);
        Assert.Equal(await File.ReadAllBytesAsync(PackageBuild.PublishedBinary()), await File.ReadAllBytesAsync(rig.P("/usr/local/bin/vast-host-agent")));
        Assert.Contains($"vast-host-agent {Version}", stdout, StringComparison.Ordinal);
    }
}
