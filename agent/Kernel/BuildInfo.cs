using System.Reflection;

namespace VastHostAgent.Kernel;

/// <summary>Version and git revision baked in at build time (<c>-p:SourceRevisionId=...</c>).</summary>
public static class BuildInfo
{
    private static readonly string Informational =
        typeof(BuildInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";

    /// <summary>Semantic version, e.g. 0.1.0.</summary>
    public static string Version { get; } = Informational.Split('+')[0];

    /// <summary>Git revision the binary was built from, or "unknown".</summary>
    public static string Revision { get; } = Informational.Contains('+', StringComparison.Ordinal)
        ? Informational[(Informational.IndexOf('+', StringComparison.Ordinal) + 1)..]
        : "unknown";

    /// <summary>"0.1.0 (abc1234)".</summary>
    public static string Display => $"{Version} ({Revision})";
}
