namespace VastHostAgent.Gpu;

/// <summary>Where an XID was seen.</summary>
public enum XidSource
{
    /// <summary>An NVML XID critical-error event.</summary>
    Nvml = 0,

    /// <summary>An <c>NVRM: Xid</c> line in the kernel log.</summary>
    KernelLog = 1,
}

/// <summary>
/// The XIDs of both sources, per GPU and code, since the agent started. The driver reports one XID both as an NVML
/// event and as a kernel log line: a sighting from one source within <see cref="DuplicateWindow"/> of an unmatched
/// sighting of the same GPU and code from the other counts once (sightings pair one to one, so two XIDs reported by
/// both sources count twice). A GPU is keyed by its UUID, or by its PCI address while NVML has never identified it.
/// Lives for the process, so counts survive NVML re-initialisation. Thread-safe.
/// </summary>
public sealed class XidLedger(TimeProvider time)
{
    /// <summary>How far apart the two sources' reports of one XID may be.</summary>
    public static readonly TimeSpan DuplicateWindow = TimeSpan.FromSeconds(10);

    private readonly Lock _lock = new();
    private readonly Dictionary<(string Key, ulong Xid), Entry> _entries = [];

    /// <summary>
    /// Records one sighting, now. <paramref name="uuid"/> empty or null: a GPU known only by <paramref name="pciAddress"/>.
    /// True when it counted; false when it was the other source's report of an XID already counted.
    /// </summary>
    public bool Record(XidSource source, string? uuid, int gpuIndex, string? pciAddress, ulong xid)
    {
        var now = time.GetUtcNow();
        var key = string.IsNullOrEmpty(uuid) ? "pci:" + pciAddress : uuid;
        lock (_lock)
        {
            if (!_entries.TryGetValue((key, xid), out var entry))
            {
                entry = new Entry(uuid ?? "", string.IsNullOrEmpty(uuid) ? -1 : gpuIndex);
                _entries[(key, xid)] = entry;
            }

            entry.PciAddress ??= pciAddress;
            if (now > entry.LastSeen)
            {
                entry.LastSeen = now;
            }

            var other = entry.Unmatched[1 - (int)source];
            while (other.Count > 0 && now - other.Peek() > DuplicateWindow)
            {
                other.Dequeue();
            }

            if (other.Count > 0)
            {
                other.Dequeue();
                return false;
            }

            var own = entry.Unmatched[(int)source];
            while (own.Count > 0 && now - own.Peek() > DuplicateWindow)
            {
                own.Dequeue();
            }

            own.Enqueue(now);
            entry.Count++;
            return true;
        }
    }

    /// <summary>Every GPU and code seen so far.</summary>
    public IReadOnlyList<XidCount> Snapshot()
    {
        lock (_lock)
        {
            return [.. _entries.Select(e => new XidCount(e.Value.Uuid, e.Value.GpuIndex, e.Key.Xid, e.Value.Count, e.Value.LastSeen) { PciAddress = e.Value.PciAddress })];
        }
    }

    private sealed class Entry(string uuid, int gpuIndex)
    {
        public string Uuid { get; } = uuid;
        public int GpuIndex { get; } = gpuIndex;
        public string? PciAddress { get; set; }
        public ulong Count { get; set; }
        public DateTimeOffset LastSeen { get; set; }
        public Queue<DateTimeOffset>[] Unmatched { get; } = [new(), new()];
    }
}
