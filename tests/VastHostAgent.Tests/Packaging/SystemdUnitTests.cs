using System.Globalization;
using System.Text.RegularExpressions;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Packaging;

/// <summary>The systemd unit, checked offline by systemd itself: <c>systemd-analyze verify</c> and <c>security</c>.</summary>
public sealed partial class SystemdUnitTests(ITestOutputHelper output)
{
    private static readonly string Unit = Path.Combine(TestEnvironment.RepositoryRoot, "packaging", "systemd", "vast-host-agent.service");
    private static readonly string RigUnit = Path.Combine(TestEnvironment.RepositoryRoot, "packaging", "systemd", "vast-host-agent-rig.service");

    /// <summary>A root with systemd's own units and executables at the unit's ExecStart and ExecReload paths.</summary>
    private static string UnitRoot(string unitText, string unitName = "vast-host-agent.service")
    {
        var root = TestEnvironment.NewTempDirectory("unitroot");
        Directory.CreateDirectory(Path.Combine(root, "usr", "bin"));
        File.Copy("/bin/true", Path.Combine(root, "usr", "bin", "vast-host-agent"));
        Directory.CreateDirectory(Path.Combine(root, "bin"));
        File.Copy("/bin/kill", Path.Combine(root, "bin", "kill"));
        Directory.CreateDirectory(Path.Combine(root, "etc", "systemd", "system"));
        File.WriteAllText(Path.Combine(root, "etc", "systemd", "system", unitName), unitText);
        CopyDirectory("/lib/systemd/system", Path.Combine(root, "lib", "systemd", "system"));
        return root;
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from))
        {
            var info = new FileInfo(file);
            if (info.LinkTarget is { } target)
            {
                File.CreateSymbolicLink(Path.Combine(to, info.Name), target);
            }
            else
            {
                File.Copy(file, Path.Combine(to, info.Name));
            }
        }

        foreach (var dir in Directory.EnumerateDirectories(from))
        {
            if (new DirectoryInfo(dir).LinkTarget is null)
            {
                CopyDirectory(dir, Path.Combine(to, Path.GetFileName(dir)));
            }
        }
    }

    [Fact]
    public async Task The_unit_passes_systemd_analyze_verify_with_empty_stderr()
    {
        var root = UnitRoot(File.ReadAllText(Unit));
        var (exit, stdout, stderr) = await Tools.RunAsync("systemd-analyze", "verify", $"--root={root}", "vast-host-agent.service");
        Assert.True(exit == 0 && stderr.Length == 0 && stdout.Length == 0, $"exit {exit}\n{stdout}\n{stderr}");

        // The check is real: an unknown key only warns (exit 0) and shows on stderr.
        var broken = UnitRoot(File.ReadAllText(Unit).Replace("NoNewPrivileges=yes", "NoNewPrivileges=yes\nProtectEverything=yes", StringComparison.Ordinal));
        var bad = await Tools.RunAsync("systemd-analyze", "verify", $"--root={broken}", "vast-host-agent.service");
        Assert.Contains("Unknown key 'ProtectEverything'", bad.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_unit_is_a_notify_service_with_a_watchdog_a_credential_and_an_exposure_score_of_at_most_2()
    {
        var text = File.ReadAllText(Unit);
        foreach (var line in new[] { "Type=notify", "WatchdogSec=60", "Restart=on-failure", "StartLimitBurst=5", "User=vast-host-agent", "StateDirectory=vast-host-agent",
                     "LoadCredential=vast-api-key:/etc/vast-host-agent/credentials/vast-api-key", "ProtectSystem=strict", "NoNewPrivileges=yes", "CapabilityBoundingSet=",
                     "ExecReload=/bin/kill -HUP $MAINPID" })
        {
            Assert.Contains("\n" + line + "\n", text, StringComparison.Ordinal);
        }

        var root = UnitRoot(text);
        var (exit, stdout, stderr) = await Tools.RunAsync("systemd-analyze", "security", "--offline=true", $"--root={root}", "vast-host-agent.service");
        var match = Exposure().Match(stdout + stderr);
        Assert.True(match.Success, $"exit {exit}\n{stdout}\n{stderr}");
        var score = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        output.WriteLine($"systemd-analyze security exposure: {score} ({match.Groups[2].Value})");
        Assert.InRange(score, 0, 2.0);
    }

    [Fact]
    public async Task The_rig_unit_is_the_same_unit_without_any_credential_and_passes_verify_and_security()
    {
        var rig = File.ReadAllText(RigUnit);
        Assert.DoesNotContain("Credential", rig, StringComparison.Ordinal);

        // Everything but the comments, the description and the credential is the same as the main unit's.
        static string[] Settings(string text) => text.Split('\n')
            .Where(l => !l.StartsWith('#') && !l.StartsWith("Description=", StringComparison.Ordinal) && !l.StartsWith("LoadCredential=", StringComparison.Ordinal))
            .ToArray();
        Assert.Equal(Settings(File.ReadAllText(Unit)), Settings(rig));

        var root = UnitRoot(rig, "vast-host-agent-rig.service");
        var (exit, stdout, stderr) = await Tools.RunAsync("systemd-analyze", "verify", $"--root={root}", "vast-host-agent-rig.service");
        Assert.True(exit == 0 && stderr.Length == 0 && stdout.Length == 0, $"exit {exit}\n{stdout}\n{stderr}");

        var security = await Tools.RunAsync("systemd-analyze", "security", "--offline=true", $"--root={root}", "vast-host-agent-rig.service");
        var match = RigExposure().Match(security.Stdout + security.Stderr);
        Assert.True(match.Success, $"exit {security.ExitCode}\n{security.Stdout}\n{security.Stderr}");
        var score = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        output.WriteLine($"rig unit exposure: {score} ({match.Groups[2].Value})");
        Assert.InRange(score, 0, 2.0);
    }

    [GeneratedRegex(@"Overall exposure level for vast-host-agent-rig\.service: ([0-9.]+) (\w+)")]
    private static partial Regex RigExposure();

    [GeneratedRegex(@"Overall exposure level for vast-host-agent\.service: ([0-9.]+) (\w+)")]
    private static partial Regex Exposure();
}
