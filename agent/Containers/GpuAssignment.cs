using System.Globalization;
using System.Text.RegularExpressions;
using VastHostAgent.Gpu;

namespace VastHostAgent.Containers;

/// <summary>
/// Which GPUs a container may use, from the three ways Docker hands NVIDIA GPUs to a container:
/// <c>HostConfig.DeviceRequests</c> (<c>--gpus</c>), <c>NVIDIA_VISIBLE_DEVICES</c> in its environment
/// (<c>--runtime=nvidia</c>), and <c>/dev/nvidiaN</c> device mappings. Tokens are resolved to GPU UUIDs
/// through the NVML inventory; anything that does not resolve is reported, never guessed.
/// </summary>
public static partial class GpuAssignment
{
    private const string VisibleDevices = "NVIDIA_VISIBLE_DEVICES";

    /// <summary>Reads the request from what inspect returned.</summary>
    public static ContainerGpuRequest Parse(
        IEnumerable<(string? Driver, long Count, IReadOnlyList<string>? DeviceIds, IReadOnlyList<IReadOnlyList<string>>? Capabilities)>? deviceRequests,
        IEnumerable<string>? environment,
        IEnumerable<string>? devicePathsOnHost)
    {
        var all = false;
        var devices = new List<string>();
        var minors = new List<int>();
        var sources = new List<string>();

        foreach (var (driver, count, ids, capabilities) in deviceRequests ?? [])
        {
            var isGpu = string.Equals(driver, "nvidia", StringComparison.OrdinalIgnoreCase)
                || (capabilities?.Any(set => set.Contains("gpu", StringComparer.OrdinalIgnoreCase)) ?? false);
            if (!isGpu)
            {
                continue;
            }

            AddSource(sources, "device_requests");
            if (ids is { Count: > 0 })
            {
                devices.AddRange(ids.Select(i => i.Trim()).Where(i => i.Length > 0));
            }
            else if (count < 0)
            {
                all = true;
            }
            else if (count > 0)
            {
                // Docker turns a count into the first N NVML indices (moby daemon/nvidia_linux.go countToDevices).
                devices.AddRange(Enumerable.Range(0, (int)Math.Min(count, 1024)).Select(i => i.ToString(CultureInfo.InvariantCulture)));
            }
        }

        var env = environment?.LastOrDefault(e => e.StartsWith(VisibleDevices + "=", StringComparison.Ordinal));
        if (env is not null)
        {
            var value = env[(VisibleDevices.Length + 1)..].Trim();
            // "void", empty: runc behaviour, no GPU. "none": driver libraries but no GPU.
            if (value.Equals("all", StringComparison.OrdinalIgnoreCase))
            {
                all = true;
                AddSource(sources, "env");
            }
            else if (value.Length > 0 && !value.Equals("none", StringComparison.OrdinalIgnoreCase) && !value.Equals("void", StringComparison.OrdinalIgnoreCase))
            {
                devices.AddRange(value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
                AddSource(sources, "env");
            }
        }

        foreach (var path in devicePathsOnHost ?? [])
        {
            var match = NvidiaDevice().Match(path);
            if (match.Success)
            {
                minors.Add(int.Parse(match.Groups[1].ValueSpan, CultureInfo.InvariantCulture));
                AddSource(sources, "devices");
            }
        }

        return new ContainerGpuRequest(all, [.. devices.Distinct(StringComparer.OrdinalIgnoreCase)], [.. minors.Distinct()], sources);
    }

    /// <summary>Resolves a request against the GPUs NVML knows. Returns the GPUs and the tokens that matched none.</summary>
    public static (IReadOnlyList<GpuIdentity> Gpus, IReadOnlyList<string> Unresolved) Resolve(ContainerGpuRequest request, IReadOnlyList<GpuIdentity> inventory)
    {
        if (request.IsEmpty)
        {
            return ([], []);
        }

        if (request.All)
        {
            return ([.. inventory.OrderBy(g => g.Index)], []);
        }

        var found = new List<GpuIdentity>();
        var unresolved = new List<string>();
        foreach (var token in request.Devices)
        {
            GpuIdentity? gpu = null;
            if (int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            {
                gpu = inventory.FirstOrDefault(g => g.Index == index);
            }
            else if (token.StartsWith("GPU-", StringComparison.OrdinalIgnoreCase))
            {
                gpu = inventory.FirstOrDefault(g => string.Equals(g.Uuid, token, StringComparison.OrdinalIgnoreCase));
            }

            // MIG devices ("MIG-…", "0:1") and anything else are reported as unresolved.
            if (gpu is null)
            {
                unresolved.Add(token);
            }
            else
            {
                found.Add(gpu);
            }
        }

        foreach (var minor in request.DeviceMinors)
        {
            var gpu = inventory.FirstOrDefault(g => g.MinorNumber == minor);
            if (gpu is null)
            {
                unresolved.Add($"/dev/nvidia{minor}");
            }
            else
            {
                found.Add(gpu);
            }
        }

        return ([.. found.DistinctBy(g => g.Uuid).OrderBy(g => g.Index)], unresolved);
    }

    private static void AddSource(List<string> sources, string source)
    {
        if (!sources.Contains(source))
        {
            sources.Add(source);
        }
    }

    [GeneratedRegex(@"^/dev/nvidia(\d+)$")]
    private static partial Regex NvidiaDevice();
}
