using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using VastHostAgent.Interop;

namespace VastHostAgent.Tests.Gpu;

/// <summary>
/// The managed mirrors of NVML's structs must match nvml.h byte for byte (sizes and offsets from
/// gpu-telemetry.md §3.3, compiled against the header on x86_64 Linux): a mismatch corrupts memory.
/// </summary>
public sealed class NvmlLayoutTests
{
    [Fact]
    public void Memory_v1_is_24_bytes_total_free_used()
    {
        Assert.Equal(24, Unsafe.SizeOf<Nvml.Memory>());
        Assert.Equal(0, Offset<Nvml.Memory>(nameof(Nvml.Memory.Total)));
        Assert.Equal(8, Offset<Nvml.Memory>(nameof(Nvml.Memory.Free)));
        Assert.Equal(16, Offset<Nvml.Memory>(nameof(Nvml.Memory.Used)));
    }

    [Fact]
    public void Memory_v2_is_40_bytes_with_version_0x02000028()
    {
        Assert.Equal(40, Unsafe.SizeOf<Nvml.MemoryV2>());
        Assert.Equal(0x02000028u, Nvml.MemoryV2Version);
        Assert.Equal(Nvml.MemoryV2Version, (uint)Unsafe.SizeOf<Nvml.MemoryV2>() | (2u << 24));
        Assert.Equal(0, Offset<Nvml.MemoryV2>(nameof(Nvml.MemoryV2.Version)));
        Assert.Equal(8, Offset<Nvml.MemoryV2>(nameof(Nvml.MemoryV2.Total)));
        Assert.Equal(16, Offset<Nvml.MemoryV2>(nameof(Nvml.MemoryV2.Reserved)));
        Assert.Equal(24, Offset<Nvml.MemoryV2>(nameof(Nvml.MemoryV2.Free)));
        Assert.Equal(32, Offset<Nvml.MemoryV2>(nameof(Nvml.MemoryV2.Used)));
    }

    [Fact]
    public void Utilization_is_8_bytes()
    {
        Assert.Equal(8, Unsafe.SizeOf<Nvml.Utilization>());
        Assert.Equal(4, Offset<Nvml.Utilization>(nameof(Nvml.Utilization.Memory)));
    }

    [Fact]
    public void PciInfo_is_68_bytes_with_busId_at_36()
    {
        Assert.Equal(68, Unsafe.SizeOf<Nvml.PciInfo>());
        Assert.Equal(0, Offset<Nvml.PciInfo>(nameof(Nvml.PciInfo.BusIdLegacy)));
        Assert.Equal(16, Offset<Nvml.PciInfo>(nameof(Nvml.PciInfo.Domain)));
        Assert.Equal(20, Offset<Nvml.PciInfo>(nameof(Nvml.PciInfo.Bus)));
        Assert.Equal(24, Offset<Nvml.PciInfo>(nameof(Nvml.PciInfo.Device)));
        Assert.Equal(28, Offset<Nvml.PciInfo>(nameof(Nvml.PciInfo.PciDeviceId)));
        Assert.Equal(32, Offset<Nvml.PciInfo>(nameof(Nvml.PciInfo.PciSubSystemId)));
        Assert.Equal(36, Offset<Nvml.PciInfo>(nameof(Nvml.PciInfo.BusId)));
    }

    [Fact]
    public void ProcessInfo_v1_is_16_bytes_and_v2_v3_records_are_24()
    {
        Assert.Equal(16, Unsafe.SizeOf<Nvml.ProcessInfoV1>());
        Assert.Equal(8, Offset<Nvml.ProcessInfoV1>(nameof(Nvml.ProcessInfoV1.UsedGpuMemory)));
        Assert.Equal(24, Unsafe.SizeOf<Nvml.ProcessInfo>());
        Assert.Equal(0, Offset<Nvml.ProcessInfo>(nameof(Nvml.ProcessInfo.Pid)));
        Assert.Equal(8, Offset<Nvml.ProcessInfo>(nameof(Nvml.ProcessInfo.UsedGpuMemory)));
        Assert.Equal(16, Offset<Nvml.ProcessInfo>(nameof(Nvml.ProcessInfo.GpuInstanceId)));
        Assert.Equal(20, Offset<Nvml.ProcessInfo>(nameof(Nvml.ProcessInfo.ComputeInstanceId)));
    }

    [Fact]
    public void EventData_is_32_bytes()
    {
        Assert.Equal(32, Unsafe.SizeOf<Nvml.EventData>());
        Assert.Equal(0, Offset<Nvml.EventData>(nameof(Nvml.EventData.Device)));
        Assert.Equal(8, Offset<Nvml.EventData>(nameof(Nvml.EventData.EventType)));
        Assert.Equal(16, Offset<Nvml.EventData>(nameof(Nvml.EventData.Data)));
        Assert.Equal(24, Offset<Nvml.EventData>(nameof(Nvml.EventData.GpuInstanceId)));
        Assert.Equal(28, Offset<Nvml.EventData>(nameof(Nvml.EventData.ComputeInstanceId)));
    }

    [Fact]
    public void FieldValue_is_40_bytes_with_value_union_at_32()
    {
        Assert.Equal(40, Unsafe.SizeOf<Nvml.FieldValue>());
        Assert.Equal(0, Offset<Nvml.FieldValue>(nameof(Nvml.FieldValue.FieldId)));
        Assert.Equal(4, Offset<Nvml.FieldValue>(nameof(Nvml.FieldValue.ScopeId)));
        Assert.Equal(8, Offset<Nvml.FieldValue>(nameof(Nvml.FieldValue.Timestamp)));
        Assert.Equal(16, Offset<Nvml.FieldValue>(nameof(Nvml.FieldValue.LatencyUsec)));
        Assert.Equal(24, Offset<Nvml.FieldValue>(nameof(Nvml.FieldValue.ValueType)));
        Assert.Equal(28, Offset<Nvml.FieldValue>(nameof(Nvml.FieldValue.NvmlReturn)));
        Assert.Equal(32, Offset<Nvml.FieldValue>(nameof(Nvml.FieldValue.Value)));
    }

    [Fact]
    public void GpmSupport_is_8_bytes_with_version_1()
    {
        Assert.Equal(8, Unsafe.SizeOf<Nvml.GpmSupport>());
        Assert.Equal(0, Offset<Nvml.GpmSupport>(nameof(Nvml.GpmSupport.Version)));
        Assert.Equal(4, Offset<Nvml.GpmSupport>(nameof(Nvml.GpmSupport.IsSupportedDevice)));
        Assert.Equal(1u, Nvml.GpmSupportVersion);
    }

    [Fact]
    public void GpmMetric_is_40_bytes_with_value_at_8_and_metricInfo_at_16()
    {
        Assert.Equal(40, Unsafe.SizeOf<Nvml.GpmMetric>());
        var m = default(Nvml.GpmMetric);
        Assert.Equal(0, FieldOffset(ref m, ref Unsafe.As<Nvml.GpmMetricId, byte>(ref m.MetricId)));
        Assert.Equal(4, FieldOffset(ref m, ref Unsafe.As<Nvml.Return, byte>(ref m.NvmlReturn)));
        Assert.Equal(8, FieldOffset(ref m, ref Unsafe.As<double, byte>(ref m.Value)));
        Assert.Equal(16, FieldOffset(ref m, ref Unsafe.As<nint, byte>(ref m.ShortName)));
        Assert.Equal(24, FieldOffset(ref m, ref Unsafe.As<nint, byte>(ref m.LongName)));
        Assert.Equal(32, FieldOffset(ref m, ref Unsafe.As<nint, byte>(ref m.Unit)));
    }

    [Fact]
    public void GpmMetricsGet_is_13344_bytes_with_333_metrics_at_24()
    {
        Assert.Equal(333, Nvml.GpmMetricMax);
        Assert.Equal(1u, Nvml.GpmMetricsGetVersion);
        Assert.Equal(13_344, Unsafe.SizeOf<Nvml.GpmMetricsGet>());
        Assert.Equal(333 * 40, Unsafe.SizeOf<Nvml.GpmMetricArray>());
        var g = new Nvml.GpmMetricsGet();
        Assert.Equal(0, FieldOffset(ref g, ref Unsafe.As<uint, byte>(ref g.Version)));
        Assert.Equal(4, FieldOffset(ref g, ref Unsafe.As<uint, byte>(ref g.NumMetrics)));
        Assert.Equal(8, FieldOffset(ref g, ref Unsafe.As<nint, byte>(ref g.Sample1)));
        Assert.Equal(16, FieldOffset(ref g, ref Unsafe.As<nint, byte>(ref g.Sample2)));
        Assert.Equal(24, FieldOffset(ref g, ref Unsafe.As<Nvml.GpmMetric, byte>(ref g.Metrics[0])));
        Assert.Equal(24 + (332 * 40), FieldOffset(ref g, ref Unsafe.As<Nvml.GpmMetric, byte>(ref g.Metrics[332])));
    }

    [Fact]
    public void Gpm_metric_ids_match_nvml_h()
    {
        Assert.Equal(1u, (uint)Nvml.GpmMetricId.GraphicsUtil);
        Assert.Equal(2u, (uint)Nvml.GpmMetricId.SmUtil);
        Assert.Equal(3u, (uint)Nvml.GpmMetricId.SmOccupancy);
        Assert.Equal(5u, (uint)Nvml.GpmMetricId.AnyTensorUtil);
        Assert.Equal(7u, (uint)Nvml.GpmMetricId.HmmaTensorUtil);
        Assert.Equal(10u, (uint)Nvml.GpmMetricId.DramBwUtil);
        Assert.Equal(20u, (uint)Nvml.GpmMetricId.PcieTxPerSec);
        Assert.Equal(21u, (uint)Nvml.GpmMetricId.PcieRxPerSec);
        Assert.Equal(60u, (uint)Nvml.GpmMetricId.NvlinkTotalRxPerSec);
        Assert.Equal(61u, (uint)Nvml.GpmMetricId.NvlinkTotalTxPerSec);
    }

    [Fact]
    public void Statvfs_matches_glibc_x86_64_112_bytes()
    {
        Assert.Equal(112, Unsafe.SizeOf<Libc.StatVfs>());
        Assert.Equal(8, Offset<Libc.StatVfs>(nameof(Libc.StatVfs.FragmentSize)));
        Assert.Equal(16, Offset<Libc.StatVfs>(nameof(Libc.StatVfs.Blocks)));
        Assert.Equal(32, Offset<Libc.StatVfs>(nameof(Libc.StatVfs.BlocksAvailable)));
    }

    [Fact]
    public void Return_codes_match_nvml_h()
    {
        Assert.Equal(3, (int)Nvml.Return.NotSupported);
        Assert.Equal(15, (int)Nvml.Return.GpuIsLost);
        Assert.Equal(16, (int)Nvml.Return.ResetRequired);
        Assert.Equal(18, (int)Nvml.Return.LibRmVersionMismatch);
        Assert.Equal(25, (int)Nvml.Return.ArgumentVersionMismatch);
        Assert.Equal(999, (int)Nvml.Return.Unknown);
        Assert.Equal(2, (int)Nvml.TemperatureThreshold.MemoryMax);
        Assert.Equal(3, (int)Nvml.TemperatureThreshold.GpuMax);
    }

    private static int Offset<T>(string field) where T : struct => (int)Marshal.OffsetOf<T>(field);

    /// <summary>The byte offset of a field within <paramref name="value"/> (also for inline arrays, which Marshal does not lay out).</summary>
    private static int FieldOffset<T>(ref T value, ref byte field) where T : struct =>
        (int)Unsafe.ByteOffset(ref Unsafe.As<T, byte>(ref value), ref field);
}
