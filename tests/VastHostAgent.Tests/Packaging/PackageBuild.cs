using System.Text.RegularExpressions;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Packaging;

/// <summary>
/// scripts/package.sh for real, run once for <see cref="DebPackageTests"/> and <see cref="TarballPackageTests"/>
/// (they check its two artifacts in parallel). Without its own lintian report: the .deb test runs lintian.
/// </summary>
internal static partial class PackageBuild
{
    public static readonly string Version = VersionRegex().Match(File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "Directory.Build.props"))).Groups[1].Value;

    private static readonly Lazy<Task<(string Directory, string Log)>> Dist = new(BuildAsync);

    /// <summary>The NativeAOT binary scripts/test.sh tests (AGENT_UNDER_TEST), else the last scripts/publish.sh output.</summary>
    public static string PublishedBinary()
    {
        var candidates = new[] { Environment.GetEnvironmentVariable("AGENT_UNDER_TEST"), Path.Combine(TestEnvironment.RepositoryRoot, "artifacts", "publish", "vast-host-agent") };
        return candidates.FirstOrDefault(c => !string.IsNullOrEmpty(c) && File.Exists(c))
            ?? throw new InvalidOperationException("no NativeAOT binary to package: run scripts/publish.sh (scripts/test.sh does) or set AGENT_UNDER_TEST");
    }

    /// <summary>The output directory of the one scripts/package.sh run, and what it printed.</summary>
    public static Task<(string Directory, string Log)> DistAsync() => Dist.Value;

    private static async Task<(string Directory, string Log)> BuildAsync()
    {
        var dist = TestEnvironment.NewTempDirectory("dist");
        var (exit, stdout, stderr) = await Tools.RunAsync(Path.Combine(TestEnvironment.RepositoryRoot, "scripts", "package.sh"),
            ["--binary", PublishedBinary(), "--out", dist, "--no-lintian"], null, TestEnvironment.RepositoryRoot);
        Assert.True(exit == 0, stdout + stderr);
        return (dist, stdout.Trim());
    }

    [GeneratedRegex("<Version>([^<]+)</Version>")]
    private static partial Regex VersionRegex();
}
