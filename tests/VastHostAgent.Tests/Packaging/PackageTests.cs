using System.Text.RegularExpressions;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Packaging;

/// <summary>
/// scripts/package.sh for real: the .deb (checked by dpkg-deb and Debian's lintian) and the tarball,
/// whose install.sh installs the tarball's own binary.
/// </summary>
public sealed partial class PackageTests(ITestOutputHelper output)
{
    private static readonly string Version = VersionRegex().Match(File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "Directory.Build.props"))).Groups[1].Value;

    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static string? s_dist;

    /// <summary>The NativeAOT binary scripts/test.sh tests (AGENT_UNDER_TEST), else the last scripts/publish.sh output.</summary>
    private static string PublishedBinary()
    {
        var candidates = new[] { Environment.GetEnvironmentVariable("AGENT_UNDER_TEST"), Path.Combine(TestEnvironment.RepositoryRoot, "artifacts", "publish", "vast-host-agent") };
        return candidates.FirstOrDefault(c => !string.IsNullOrEmpty(c) && File.Exists(c))
            ?? throw new InvalidOperationException("no NativeAOT binary to package: run scripts/publish.sh (scripts/test.sh does) or set AGENT_UNDER_TEST");
    }

    /// <summary>Runs scripts/package.sh once for this test class.</summary>
    private async Task<string> DistAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (s_dist is null)
            {
                var dist = TestEnvironment.NewTempDirectory("dist");
                var (exit, stdout, stderr) = await Tools.RunAsync(Path.Combine(TestEnvironment.RepositoryRoot, "scripts", "package.sh"),
                    ["--binary", PublishedBinary(), "--out", dist], null, TestEnvironment.RepositoryRoot);
                Assert.True(exit == 0, stdout + stderr);
                output.WriteLine(stdout.Trim());
                s_dist = dist;
            }

            return s_dist;
        }
        finally
        {
            Gate.Release();
        }
    }

    [Fact]
    public async Task The_deb_installs_to_standard_paths_keeps_the_config_as_a_conffile_and_passes_lintian_without_errors()
    {
        var deb = Path.Combine(await DistAsync(), $"vast-host-agent_{Version}_amd64.deb");
        Assert.True(File.Exists(deb), deb);
        output.WriteLine($".deb: {new FileInfo(deb).Length:N0} bytes");

        var contents = (await Tools.RunAsync("dpkg-deb", "--contents", deb)).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(contents, line => Assert.Contains(" root/root ", line, StringComparison.Ordinal));
        string Entry(string path) => Assert.Single(contents, l => l.EndsWith(" ./" + path, StringComparison.Ordinal));
        Assert.StartsWith("-rwxr-xr-x", Entry("usr/bin/vast-host-agent"), StringComparison.Ordinal);
        Assert.StartsWith("-rw-r--r--", Entry("lib/systemd/system/vast-host-agent.service"), StringComparison.Ordinal);
        Assert.StartsWith("-rw-r--r--", Entry("etc/vast-host-agent/agent.json"), StringComparison.Ordinal);
        Entry("usr/share/doc/vast-host-agent/copyright");
        Entry("usr/share/doc/vast-host-agent/changelog.gz");
        Entry("usr/share/man/man1/vast-host-agent.1.gz");
        Entry("usr/share/vast-host-agent/prometheus/vast-host-agent.rules.yml");
        Entry("usr/share/vast-host-agent/grafana/dashboards/vast-host-fleet.json");
        Entry("usr/share/vast-host-agent/grafana/dashboards/vast-host-rig.json");

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
        Assert.Contains("deb-systemd-helper enable vast-host-agent.service", postinst, StringComparison.Ordinal);

        // The packaged binary and unit are the ones built and verified.
        var root = TestEnvironment.NewTempDirectory("debroot");
        Assert.Equal(0, (await Tools.RunAsync("dpkg-deb", "-x", deb, root)).ExitCode);
        Assert.Equal(await File.ReadAllBytesAsync(PublishedBinary()), await File.ReadAllBytesAsync(Path.Combine(root, "usr", "bin", "vast-host-agent")));
        Assert.Equal(File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "packaging", "systemd", "vast-host-agent.service")),
            File.ReadAllText(Path.Combine(root, "lib", "systemd", "system", "vast-host-agent.service")));
        Assert.Equal(File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "packaging", "config", "agent.example.json")),
            File.ReadAllText(Path.Combine(root, "etc", "vast-host-agent", "agent.json")));

        // lintian (Debian's package checker): no errors and no warnings.
        var (exit, stdout, stderr) = await Tools.RunAsync("lintian", ["--tag-display-limit", "0", deb], null, null, TimeSpan.FromMinutes(5));
        output.WriteLine($"lintian exit {exit}:\n{stdout}{stderr}");
        Assert.Equal(0, exit);
        Assert.DoesNotMatch(@"(?m)^[EW]: ", stdout + stderr);
    }

    [Fact]
    public async Task The_tarball_carries_everything_and_its_install_sh_installs_its_own_binary()
    {
        var tarball = Path.Combine(await DistAsync(), $"vast-host-agent-{Version}-linux-x64.tar.gz");
        Assert.True(File.Exists(tarball), tarball);
        output.WriteLine($"tarball: {new FileInfo(tarball).Length:N0} bytes");

        var extract = TestEnvironment.NewTempDirectory("tarball");
        Assert.Equal(0, (await Tools.RunAsync("tar", "-xzf", tarball, "-C", extract)).ExitCode);
        var top = Path.Combine(extract, $"vast-host-agent-{Version}-linux-x64");
        foreach (var file in new[]
                 {
                     "install.sh", "bin/vast-host-agent", "packaging/systemd/vast-host-agent.service", "packaging/config/agent.example.json",
                     "packaging/prometheus/vast-host-agent.rules.yml", "packaging/prometheus/scrape-config.example.yml",
                     "packaging/grafana/dashboards/vast-host-fleet.json", "packaging/grafana/dashboards/vast-host-rig.json", "README.md", "LICENSE",
                 })
        {
            Assert.True(File.Exists(Path.Combine(top, file)), file);
        }

        // install.sh from the tarball (no checkout, no SDK): installs bin/vast-host-agent.
        var rig = InstallScriptTests.NewRig();
        var (exit, stdout, stderr) = await rig.RunAsync(Path.Combine(top, "install.sh"));
        Assert.True(exit == 0, stdout + stderr);
        Assert.Equal(await File.ReadAllBytesAsync(PublishedBinary()), await File.ReadAllBytesAsync(rig.P("/usr/local/bin/vast-host-agent")));
        Assert.Contains($"vast-host-agent {Version}", stdout, StringComparison.Ordinal);
    }

    [GeneratedRegex("<Version>([^<]+)</Version>")]
    private static partial Regex VersionRegex();
}
