using System.Globalization;
using System.Text.RegularExpressions;
using VastHostAgent.Kernel;

namespace VastHostAgent.Gpu;

/// <summary>One NVIDIA driver XID line from the kernel log: the GPU's PCI address as the driver names it, the XID code and the rest of the text.</summary>
/// <param name="PciAddress">Domain, bus and device in lower case (<c>0000:01:00</c>): the driver prints no function.</param>
/// <param name="Xid">The XID code.</param>
/// <param name="Message">The driver's text after the code (<c>pid=1234, name=python, GPU has fallen off the bus.</c>).</param>
public sealed record KernelXidRecord(string PciAddress, ulong Xid, string Message);

/// <summary>
/// Parses kernel log lines for NVIDIA XIDs (<c>NVRM: Xid (PCI:0000:01:00): 79, …</c>). Accepts a <c>/dev/kmsg</c>
/// record (<c>priority,sequence,microseconds,flags;message</c>, continuation lines ignored) and plain dmesg,
/// <c>dmesg -T</c> or syslog/journal lines carrying the same message. Every other line is not an XID.
/// </summary>
public static partial class KernelXidParser
{
    /// <summary>The largest XID code accepted (NVIDIA's catalogue stays below 200): keeps the <c>xid</c> label bounded.</summary>
    public const ulong MaxXid = 9999;

    public static bool TryParse(ReadOnlySpan<char> line, out KernelXidRecord? record)
    {
        record = null;
        var text = line.TrimEnd("\r\n");
        if (KmsgPrefix().Match(text.ToString()) is { Success: true } kmsg)
        {
            text = text[kmsg.Length..];
        }

        var at = text.IndexOf("NVRM: Xid (", StringComparison.Ordinal);
        if (at < 0)
        {
            return false;
        }

        var m = XidLine().Match(text[at..].ToString());
        if (!m.Success
            || !ulong.TryParse(m.Groups["xid"].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var xid)
            || xid > MaxXid)
        {
            return false;
        }

        var pci = Kernel.PciAddress.Device(m.Groups["pci"].Value);
        if (pci is null)
        {
            return false;
        }

        record = new KernelXidRecord(pci, xid, m.Groups["msg"].Value.Trim());
        return true;
    }

    [GeneratedRegex(@"^\d+,\d+,\d+,[^;]*;")]
    private static partial Regex KmsgPrefix();

    [GeneratedRegex(@"^NVRM: Xid \((?:PCI:)?(?<pci>[0-9A-Fa-f]{1,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}(?:\.[0-7])?)\): (?<xid>\d{1,9})(?:,(?<msg>.*))?$")]
    private static partial Regex XidLine();
}

/// <summary>XIDs read from the kernel log for one PCI address and code: what the kernel logged, without deduplication.</summary>
/// <param name="PciAddress">The address the driver named (<c>0000:01:00</c>).</param>
/// <param name="GpuIndex">NVML's index of the GPU at that address; -1 when NVML has never identified it.</param>
/// <param name="Uuid">Its UUID; empty when NVML has never identified it.</param>
/// <param name="Xid">The XID code.</param>
/// <param name="Count">Lines with this address and code since the agent started.</param>
/// <param name="LastSeen">When the last one was read.</param>
public readonly record struct KernelXidCount(string PciAddress, int GpuIndex, string Uuid, ulong Xid, ulong Count, DateTimeOffset LastSeen);

/// <summary>The kernel-log XID source as last seen: whether it reads, what it read, and the XIDs of both sources.</summary>
public sealed record KernelLogSample
{
    /// <summary>The kernel log is open and being read.</summary>
    public bool Up { get; init; }

    /// <summary>Why it is not (permission denied, missing), when <see cref="Up"/> is false.</summary>
    public string? Problem { get; init; }

    public required string Path { get; init; }

    /// <summary>XIDs read from the kernel log, per PCI address and code.</summary>
    public IReadOnlyList<KernelXidCount> KernelXids { get; init; } = [];

    /// <summary>The XID ledger (both sources, deduplicated) as of the last kernel-log XID.</summary>
    public IReadOnlyList<XidCount> Xids { get; init; } = [];
}

/// <summary>The kernel-log part of the <see cref="HostSnapshot"/>, and XIDs of both sources.</summary>
public static class KernelLogSnapshot
{
    extension(HostSnapshot snapshot)
    {
        /// <summary>The kernel-log XID source; null while it is off (gpu.enabled false or gpu.kmsgPath empty).</summary>
        public KernelLogSample? KernelLog => snapshot.Part<KernelLogSample>();

        /// <summary>The snapshot with <c>KernelLog</c> replaced.</summary>
        public HostSnapshot WithKernelLog(KernelLogSample? value) => snapshot.WithPart(value);

        /// <summary>
        /// Every XID of both sources (NVML events, kernel log), each event counted once. The GPU sample and the kernel-log
        /// sample each carry the ledger as of their last publish (the GPU sample freezes while NVML hangs): per GPU and
        /// code, the larger count and the later time is the newer.
        /// </summary>
        public IReadOnlyList<XidCount> AllXids
        {
            get
            {
                var gpu = snapshot.Gpu?.Xids ?? [];
                var kernel = snapshot.KernelLog?.Xids ?? [];
                if (kernel.Count == 0)
                {
                    return gpu;
                }

                var merged = new Dictionary<(string, string?, ulong), XidCount>();
                foreach (var x in gpu.Concat(kernel))
                {
                    var key = (x.Uuid, x.Uuid.Length == 0 ? x.PciAddress : null, x.Xid);
                    merged[key] = merged.TryGetValue(key, out var seen)
                        ? seen with { Count = Math.Max(seen.Count, x.Count), LastSeen = seen.LastSeen > x.LastSeen ? seen.LastSeen : x.LastSeen, PciAddress = seen.PciAddress ?? x.PciAddress }
                        : x;
                }

                return [.. merged.Values];
            }
        }
    }
}
