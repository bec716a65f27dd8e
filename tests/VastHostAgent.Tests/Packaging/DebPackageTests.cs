using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Packaging;

/// <summary>The .deb scripts/package.sh builds, checked by dpkg-deb and by Debian's lintian.</summary>
public sealed class DebPackageTests(ITestOutputHelper output)
{
    private static string Version => PackageBuild.Version;

    [Fact]
    public async Task The_deb_installs_to_standard_paths_keeps_the_config_as_a_conffile_and_passes_lintian_without_errors()
    {
        var (dist, log) = await PackageBuild.DistAsync();
        output.WriteLine(log);
        var deb = Path.Combine(dist, $"vast-host-agent_{Version}_amd64.deb");
        Assert.True(File.Exists(deb), deb);
        output.WriteLine($".deb: {new FileInfo(deb).Length:N0} bytes");

        var contents = (await Tools.RunAsync("dpkg-deb", "--contents", deb)).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(contents, line => Assert.Contains(" root/root ", line, StringComparison.Ordinal));
        string Entry(string path) => Assert.Single(contents, l => l.EndsWith(" ./" + path, StringComparison.Ordinal));
        Assert.StartsWith("-rwxr-xr-x", Entry("usr/bin/vast-host-agent"), StringComparison.Ordinal);
        Assert.StartsWith("-rw-r--r--", Entry("lib/systemd/system/vast-host-agent.service"), StringComparison.Ordinal);
        Assert.StartsWith("-rw-r--r--", Entry("lib/systemd/system/vast-host-agent-rig.service"), StringComparison.Ordinal);
        Assert.StartsWith("-rw-r--r--", Entry("etc/vast-host-agent/agent.json"), StringComparison.Ordinal);
        Entry("usr/share/doc/vast-host-agent/copyright");
        Entry("usr/share/doc/vast-host-agent/changelog.gz");
        Entry("usr/share/man/man1/vast-host-agent.1.gz");
        Entry("usr/share/vast-host-agent/prometheus/vast-host-agent.rules.yml");
        Assert.StartsWith("-rw-r--r--", Entry("usr/share/vast-host-agent/alertmanager/alertmanager.yml"), StringComparison.Ordinal);
        Assert.StartsWith("-rw-r--r--", Entry("usr/share/vast-host-agent/alertmanager/vast-host-agent.tmpl"), StringComparison.Ordinal);
        Assert.StartsWith("-rwxr-xr-x", Entry("usr/share/vast-host-agent/alertmanager/inline-secrets.sh"), StringComparison.Ordinal);
        Entry("usr/share/vast-host-agent/grafana/dashboards/vast-host-fleet.json");
        Entry("usr/share/vast-host-agent/grafana/dashboards/vast-host-rig.json");
        Entry("usr/share/vast-host-agent/grafana/dashboards/vast-host-agent-fleet.json");

        var info = (await Tools.RunAsync("dpkg-deb", "--field", deb, "Package", "Version", "Architecture", "Depends")).Stdout;
        Assert.Contains($"Version: {Version}", info, StringComparison.Ordinal);
        Assert.Contains("Architecture: amd64", info, StringComparison.Ordinal);
        Assert.Contains("adduser", info, StringComparison.Ordinal);

        // The control area: conffiles and the maintainer scripts that create the user and enable the unit.
        var control = TestEnvironment.NewTempDirectory("debctrl");
        Assert.Equal(0, (await Tools.RunAsync("dpkg-deb", "--control", deb, control)).ExitCode);
        Assert.Equal("/etc/vast-host-agent/agent.json\n", File.ReadAllText(Path.Combine(control, "conffiles")));
        var postinst = File.ReadAllText(Path.Combine(control, "postinst"));
        Assert.Contains("adduser --system", postinst, StringComparison.Ordinal);
        Assert.Contains("adduser --quiet vast-host-agent docker", postinst, StringComparison.Ordinal);
        // The unit follows agent.role: a rig runs vast-host-agent-rig.service (no credential), the others vast-host-agent.service.
        Assert.Contains("\"role\"", postinst, StringComparison.Ordinal);
        Assert.Contains("rig) unit=vast-host-agent-rig.service; other=vast-host-agent.service", postinst, StringComparison.Ordinal);
        Assert.Contains("*) unit=vast-host-agent.service; other=vast-host-agent-rig.service", postinst, StringComparison.Ordinal);
        Assert.Contains("deb-systemd-helper enable \"$unit\"", postinst, StringComparison.Ordinal);
        Assert.Contains("deb-systemd-helper disable \"$other\"", postinst, StringComparison.Ordinal);

        // The packaged binary and unit are the ones built and verified.
        var root = TestEnvironment.NewTempDirectory("debroot");
        Assert.Equal(0, (await Tools.RunAsync("dpkg-deb", "-x", deb, root)).ExitCode);
        Assert.Equal(await File.ReadAllBytesAsync(PackageBuild.PublishedBinary()), await File.ReadAllBytesAsync(Path.Combine(root, "usr", "bin", "vast-host-agent")));
        Assert.Equal(File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "packaging", "systemd", "vast-host-agent.service")),
            File.ReadAllText(Path.Combine(root, "lib", "systemd", "system", "vast-host-agent.service")));
        Assert.Equal(File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "packaging", "systemd", "vast-host-agent-rig.service")),
            File.ReadAllText(Path.Combine(root, "lib", "systemd", "system", "vast-host-agent-rig.service")));
        Assert.Equal(File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "packaging", "config", "agent.example.json")),
            File.ReadAllText(Path.Combine(root, "etc", "vast-host-agent", "agent.json")));

        // lintian (Debian's package checker): no errors and no warnings.
        var (exit, stdout, stderr) = await Tools.RunAsync("lintian", ["--tag-display-limit", "0", deb], null, null, TimeSpan.FromMinutes(5));
        output.WriteLine($"lintian exit {exit}:\n{stdout}{stderr}");
        Assert.Equal(0, exit);
        Assert.DoesNotMatch(@"(?m)^[EW]: ", stdout + stderr);
    }
}
