using static VastHostAgent.Interop.Nvml;

namespace VastHostAgent.Gpu;

/// <summary>
/// Compute process lists, by whichever export the library has: <c>_v3</c>, else <c>_v2</c> (the same 24-byte
/// records), else the unversioned one (16-byte records). NVML's variable-length protocol: a list that grew
/// between calls answers INSUFFICIENT_SIZE with the count it needs, and is asked again with room for it.
/// </summary>
internal static unsafe class NvmlProcesses
{
    public static readonly NvmlRead<GpuReadingBuilder>[] Reads =
    [
        new(nameof(nvmlDeviceGetComputeRunningProcesses_v3), static (c, ref r) =>
        {
            if (c.Exports.ProcessesV3)
            {
                r.Processes = Read<ProcessInfo>(c, &nvmlDeviceGetComputeRunningProcesses_v3, &FromRecord);
            }
        }),
        new(nameof(nvmlDeviceGetComputeRunningProcesses_v2), static (c, ref r) =>
        {
            if (!c.Exports.ProcessesV3 && c.Exports.ProcessesV2)
            {
                r.Processes = Read<ProcessInfo>(c, &nvmlDeviceGetComputeRunningProcesses_v2, &FromRecord);
            }
        }),
        new(nameof(nvmlDeviceGetComputeRunningProcesses), static (c, ref r) =>
        {
            if (!c.Exports.ProcessesV3 && !c.Exports.ProcessesV2)
            {
                r.Processes = Read<ProcessInfoV1>(c, &nvmlDeviceGetComputeRunningProcesses, &FromRecordV1);
            }
        }),
    ];

    private static List<GpuProcess> Read<TInfo>(NvmlCall c, delegate*<nint, uint*, TInfo*, Return> list, delegate*<in TInfo, GpuProcess> convert)
        where TInfo : unmanaged
    {
        if (!c.Can)
        {
            return [];
        }

        var capacity = Math.Max(c.Device.LastProcessCount + 4, 8);
        for (var attempt = 0; attempt < 4; attempt++)
        {
            var count = (uint)capacity;
            var result = new List<GpuProcess>();
            var rc = Attempt(c.Handle, list, convert, capacity, &count, result);
            if (rc == Return.InsufficientSize)
            {
                // Processes appeared between calls: grow to what NVML asks for, with headroom, and retry.
                capacity = Math.Min((int)count + 8, 1024);
                continue;
            }

            if (!c.Ok(rc))
            {
                return [];
            }

            c.Device.LastProcessCount = result.Count;
            return result;
        }

        return [];
    }

    private static Return Attempt<TInfo>(
        nint handle, delegate*<nint, uint*, TInfo*, Return> list, delegate*<in TInfo, GpuProcess> convert, int capacity, uint* count, List<GpuProcess> result)
        where TInfo : unmanaged
    {
        var buffer = stackalloc TInfo[capacity];
        var rc = list(handle, count, buffer);
        if (rc == Return.Success)
        {
            for (var k = 0; k < *count && k < capacity; k++)
            {
                result.Add(convert(in buffer[k]));
            }
        }

        return rc;
    }

    private static GpuProcess FromRecord(in ProcessInfo p) => new((int)p.Pid, MemoryOrNull(p.UsedGpuMemory));

    private static GpuProcess FromRecordV1(in ProcessInfoV1 p) => new((int)p.Pid, MemoryOrNull(p.UsedGpuMemory));

    private static ulong? MemoryOrNull(ulong value) => value == ulong.MaxValue ? null : value; // NVML_VALUE_NOT_AVAILABLE
}
