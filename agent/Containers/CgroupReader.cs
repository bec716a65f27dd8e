using System.Collections.Concurrent;
using System.Globalization;
using System.Text.RegularExpressions;
using VastHostAgent.Kernel;

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

    // Where each container's files are, found once per container process (reading /proc/<pid>/cgroup and
    // probing the hierarchy's mount points at every sample costs more than reading the counters).
    private readonly ConcurrentDictionary<string, CgroupPaths> _paths = new(StringComparer.Ordinal);

    private sealed record CgroupPaths(int Pid, bool V1, string? CpuDir, string? MemoryDir, string NetDev);

    public ContainerUsage? Read(string containerId, int pid)
    {
        if (!_paths.TryGetValue(containerId, out var paths) || paths.Pid != pid)
        {
            paths = Resolve(pid);
            if (paths is null)
            {
                return null;
            }

            if (_paths.Count >= 4096)
            {
                _paths.Clear(); // containers come and go: never grows without bound
            }

            _paths[containerId] = paths;
        }

        double? cpuSeconds;
        ulong? usage, limit, inactive;
        if (paths.V1)
        {
            cpuSeconds = ReadUInt(paths.CpuDir, "cpuacct.usage") / 1e9;
            usage = ReadUInt(paths.MemoryDir, "memory.usage_in_bytes");
            limit = ReadUInt(paths.MemoryDir, "memory.limit_in_bytes");
            inactive = ReadStat(paths.MemoryDir, "memory.stat", "total_inactive_file");
        }
        else
        {
            cpuSeconds = ReadStat(paths.CpuDir, "cpu.stat", "usage_usec") / 1e6;
            usage = ReadUInt(paths.MemoryDir, "memory.current");
            limit = ReadUInt(paths.MemoryDir, "memory.max"); // "max" does not parse: unlimited
            inactive = ReadStat(paths.MemoryDir, "memory.stat", "inactive_file");
        }

        if (cpuSeconds is null && usage is null && !File.Exists(Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "cgroup")))
        {
            _paths.TryRemove(containerId, out _);
            return null; // the process is gone
        }

        if (limit >= UnlimitedThreshold)
        {
            limit = null;
        }

        ulong? workingSet = usage is { } u ? u - Math.Min(u, inactive ?? 0) : null;
        var (rx, tx) = ReadNetwork(paths.NetDev);
        return new ContainerUsage(containerId, cpuSeconds, null, usage, workingSet, limit, rx, tx);
    }

    private CgroupPaths? Resolve(int pid)
    {
        var lines = ReadLines(Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "cgroup"));
        if (lines is null)
        {
            return null;
        }

        var (v1, v2) = ParseCgroupFile(lines);
        var netDev = Path.Combine(procRoot, pid.ToString(CultureInfo.InvariantCulture), "net", "dev");
        if (v1.ContainsKey("memory") || v1.Keys.Any(k => k.Contains("cpuacct", StringComparison.Ordinal)))
        {
            return new CgroupPaths(pid, true, Find(v1, "cpuacct"), Find(v1, "memory"), netDev);
        }

        if (v2 is not null)
        {
            var dir = Path.Combine(_cgroupRoot, v2.TrimStart('/'));
            return new CgroupPaths(pid, false, dir, dir, netDev);
        }

        return null;
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

    private static (ulong? Rx, ulong? Tx) ReadNetwork(string netDev)
    {
        var buffer = Buffer;
        var length = SmallFile.Read(netDev, buffer);
        if (length < 0)
        {
            return (null, null);
        }

        ulong rx = 0, tx = 0;
        foreach (var range in buffer.AsSpan(0, length).Split((byte)'\n'))
        {
            var line = buffer.AsSpan(0, length)[range];
            var colon = line.IndexOf((byte)':');
            if (colon < 0)
            {
                continue; // header lines
            }

            if (line[..colon].Trim((byte)' ').SequenceEqual("lo"u8))
            {
                continue;
            }

            // Fields after the colon: receive bytes is the 1st, transmit bytes the 9th.
            var fields = line[(colon + 1)..];
            int index = 0;
            ulong r = 0, t = 0;
            var ok = 0;
            foreach (var f in fields.Split((byte)' '))
            {
                var field = fields[f];
                if (field.IsEmpty)
                {
                    continue;
                }

                if (index == 0 && ulong.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out r))
                {
                    ok++;
                }
                else if (index == 8 && ulong.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out t))
                {
                    ok++;
                    break;
                }

                index++;
            }

            if (ok == 2)
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

        var buffer = Buffer;
        var length = SmallFile.Read(Path.Combine(dir, file), buffer);
        return length >= 0 && ulong.TryParse(buffer.AsSpan(0, length).Trim("\n "u8), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;
    }

    private static ulong? ReadStat(string? dir, string file, string key)
    {
        if (dir is null)
        {
            return null;
        }

        return SmallFile.ReadValue(Path.Combine(dir, file), key, Buffer);
    }

    // One buffer per thread: cgroup and /proc files of one container are a few hundred bytes to a few kB.
    [ThreadStatic]
    private static byte[]? s_buffer;

    private static byte[] Buffer => s_buffer ??= new byte[16 * 1024];

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
