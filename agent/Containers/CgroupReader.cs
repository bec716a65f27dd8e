using System.Globalization;
using System.Text.RegularExpressions;

namespace VastHostAgent.Containers;

/// <summary>Reads a container's CPU, memory and network use from the kernel (no Docker API call).</summary>
public interface IContainerResourceReader
{
    /// <summary>Reads the cgroup and network counters of the container whose init process is <paramref name="pid"/>; null when it is gone.</summary>
    ContainerUsage? Read(string containerId, int pid);
}

/// <summary>Maps a host PID to the Docker container it runs in.</summary>
public interface IProcessContainerResolver
{
    /// <summary>The 64-hex container id of the process's cgroup, or null (host process, or the process has exited).</summary>
    string? ContainerIdOf(int pid);
}

/// <summary>
/// Reads <c>{procRoot}/&lt;pid&gt;/cgroup</c> to find the container's cgroup, then its counters under
/// <c>cgroupRoot</c> (normally /sys/fs/cgroup), for both layouts: cgroup v1 (<c>N:memory:/docker/&lt;id&gt;</c>, one hierarchy
/// per controller) and cgroup v2 (<c>0::/system.slice/docker-&lt;id&gt;.scope</c>, one unified hierarchy).
/// Cheaper than Docker's stats API: a handful of small file reads per container, no HTTP, no JSON.
/// </summary>
public sealed partial class CgroupReader(string procRoot, string cgroupRoot) : IContainerResourceReader, IProcessContainerResolver
{
    private const ulong UnlimitedThreshold = 1UL << 60; // v1 reports "no limit" as ~2^63 rounded to the page size

    private readonly string _cgroupRoot = cgroupRoot;

    public ContainerUsage? Read(string containerId, int pid)
    {
        var lines = ReadLines(Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "cgroup"));
        if (lines is null)
        {
            return null;
        }

        var (v1, v2) = ParseCgroupFile(lines);
        double? cpuSeconds;
        ulong? usage, limit, inactive;
        if (v1.ContainsKey("memory") || v1.Keys.Any(k => k.Contains("cpuacct", StringComparison.Ordinal)))
        {
            var memoryDir = Find(v1, "memory");
            var cpuDir = Find(v1, "cpuacct");
            cpuSeconds = ReadUInt(cpuDir, "cpuacct.usage") / 1e9;
            usage = ReadUInt(memoryDir, "memory.usage_in_bytes");
            limit = ReadUInt(memoryDir, "memory.limit_in_bytes");
            inactive = ReadStat(memoryDir, "memory.stat", "total_inactive_file");
        }
        else if (v2 is not null)
        {
            var dir = Path.Combine(_cgroupRoot, v2.TrimStart('/'));
            cpuSeconds = ReadStat(dir, "cpu.stat", "usage_usec") / 1e6;
            usage = ReadUInt(dir, "memory.current");
            limit = ReadUInt(dir, "memory.max"); // "max" does not parse: unlimited
            inactive = ReadStat(dir, "memory.stat", "inactive_file");
        }
        else
        {
            return null;
        }

        if (limit >= UnlimitedThreshold)
        {
            limit = null;
        }

        ulong? workingSet = usage is { } u ? u - Math.Min(u, inactive ?? 0) : null;
        var (rx, tx) = ReadNetwork(pid);
        return new ContainerUsage(containerId, cpuSeconds, null, usage, workingSet, limit, rx, tx);
    }

    public string? ContainerIdOf(int pid)
    {
        var lines = ReadLines(Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "cgroup"));
        if (lines is null)
        {
            return null;
        }

        foreach (var line in lines)
        {
            var match = ContainerIdPattern().Match(line);
            if (match.Success)
            {
                return match.Groups["id"].Value;
            }
        }

        return null;
    }

    /// <summary>Splits /proc/&lt;pid&gt;/cgroup into v1 controller paths and the v2 path.</summary>
    internal static (Dictionary<string, string> V1, string? V2) ParseCgroupFile(IEnumerable<string> lines)
    {
        var v1 = new Dictionary<string, string>(StringComparer.Ordinal);
        string? v2 = null;
        foreach (var line in lines)
        {
            var first = line.IndexOf(':', StringComparison.Ordinal);
            var second = first < 0 ? -1 : line.IndexOf(':', first + 1);
            if (second < 0)
            {
                continue;
            }

            var controllers = line[(first + 1)..second];
            var path = line[(second + 1)..];
            if (controllers.Length == 0)
            {
                v2 = path;
                continue;
            }

            v1[controllers] = path;
        }

        return (v1, v2);
    }

    private string? Find(Dictionary<string, string> v1, string controller)
    {
        foreach (var (controllers, path) in v1)
        {
            if (!controllers.Split(',').Contains(controller, StringComparer.Ordinal))
            {
                continue;
            }

            // The hierarchy is mounted under its controller list ("cpu,cpuacct") with per-controller symlinks,
            // or separately per controller.
            foreach (var mount in new[] { controllers, controller }.Concat(controllers.Split(',')).Distinct(StringComparer.Ordinal))
            {
                var dir = Path.Combine(_cgroupRoot, mount, path.TrimStart('/'));
                if (Directory.Exists(dir))
                {
                    return dir;
                }
            }
        }

        return null;
    }

    private (ulong? Rx, ulong? Tx) ReadNetwork(int pid)
    {
        var lines = ReadLines(Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "net", "dev"));
        if (lines is null)
        {
            return (null, null);
        }

        ulong rx = 0, tx = 0;
        foreach (var line in lines)
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                continue; // header lines
            }

            var name = line[..colon].Trim();
            if (name == "lo")
            {
                continue;
            }

            var fields = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 9
                && ulong.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var r)
                && ulong.TryParse(fields[8], NumberStyles.None, CultureInfo.InvariantCulture, out var t))
            {
                rx += r;
                tx += t;
            }
        }

        return (rx, tx);
    }

    private static ulong? ReadUInt(string? dir, string file)
    {
        if (dir is null)
        {
            return null;
        }

        var text = ReadText(Path.Combine(dir, file));
        return text is not null && ulong.TryParse(text.AsSpan().Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;
    }

    private static ulong? ReadStat(string? dir, string file, string key)
    {
        if (dir is null)
        {
            return null;
        }

        var lines = ReadLines(Path.Combine(dir, file));
        foreach (var line in lines ?? [])
        {
            if (line.StartsWith(key, StringComparison.Ordinal) && line.Length > key.Length && line[key.Length] == ' '
                && ulong.TryParse(line.AsSpan(key.Length + 1).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v))
            {
                return v;
            }
        }

        return null;
    }

    private static string? ReadText(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string[]? ReadLines(string path)
    {
        try
        {
            return File.ReadAllLines(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // the process exited between listing and reading: normal
        }
    }

    // Docker's cgroup names: v1 and v2 cgroupfs "/docker/<id>", v2 systemd "/system.slice/docker-<id>.scope".
    [GeneratedRegex(@"(?:/docker/|/docker-)(?<id>[0-9a-f]{64})(?:\.scope)?(?:/|$)")]
    private static partial Regex ContainerIdPattern();
}
