using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static VastHostAgent.Interop.Nvml;

namespace VastHostAgent.Gpu;

/// <summary>
/// Profiling figures through NVML GPM (Hopper and newer), read in the sampler's cycle: each GPU that supports GPM keeps
/// two NVML samples; every cycle takes one and computes the metrics between it and the previous cycle's, so each figure
/// covers one sampling interval. A GPU's first cycle has no figures; a GPU or driver without GPM never has any (absent,
/// not 0). One sampler owns one instance (not for concurrent use): the 13 KB <c>nvmlGpmMetricsGet_t</c> is allocated once,
/// at the first GPU with GPM, and reused for every GPU and cycle. Samples are freed by <see cref="Release"/> when a
/// GPU goes down and before NVML shuts down.
/// </summary>
internal sealed unsafe class NvmlGpm
{
    private const double MiB = 1024 * 1024;

    /// <summary>The metrics asked for, in this order (DCGM's field for each in <see cref="Store"/>).</summary>
    private static readonly GpmMetricId[] Asked =
    [
        GpmMetricId.GraphicsUtil, GpmMetricId.AnyTensorUtil, GpmMetricId.DramBwUtil, GpmMetricId.PcieTxPerSec,
        GpmMetricId.PcieRxPerSec, GpmMetricId.NvlinkTotalTxPerSec, GpmMetricId.NvlinkTotalRxPerSec,
    ];

    private GpmMetricsGet[]? _buffer;

    /// <summary>Samples one GPU and fills the builder's profiling figures when a previous sample exists.</summary>
    public void Read(NvmlCallPolicy policy, NvmlExports exports, NvmlDevice d, ref GpuReadingBuilder r)
    {
        if (!exports.Gpm || d.Down is not null)
        {
            return;
        }

        ref var gpm = ref d.Gpm;
        if (gpm.Support == GpmAvailability.Unknown)
        {
            var support = new GpmSupport { Version = GpmSupportVersion };
            var rc = nvmlGpmQueryDeviceSupport(d.Handle, &support);
            if (rc == Return.Success)
            {
                gpm.Support = support.IsSupportedDevice != 0 ? GpmAvailability.Supported : GpmAvailability.Unsupported;
            }
            else
            {
                _ = policy.Call(d, nameof(nvmlGpmQueryDeviceSupport), rc);
                if (rc is Return.NotSupported or Return.FunctionNotFound)
                {
                    gpm.Support = GpmAvailability.Unsupported; // other failures: asked again next cycle
                }
            }
        }

        if (gpm.Support != GpmAvailability.Supported
            || !Allocate(policy, d, ref gpm.Current) || !Allocate(policy, d, ref gpm.Previous))
        {
            return;
        }

        var got = nvmlGpmSampleGet(d.Handle, gpm.Current);
        if (!policy.Call(d, nameof(nvmlGpmSampleGet), got))
        {
            gpm.HasPrevious = false;
            if (got == Return.NotSupported)
            {
                gpm.Support = GpmAvailability.Unsupported;
                Release(policy, d);
            }

            return;
        }

        if (gpm.HasPrevious)
        {
            Compute(policy, d, gpm.Previous, gpm.Current, ref r);
        }

        (gpm.Previous, gpm.Current) = (gpm.Current, gpm.Previous);
        gpm.HasPrevious = true;
    }

    /// <summary>Frees the GPU's samples (GPU down, re-initialisation, shutdown); the next cycle starts afresh.</summary>
    public static void Release(NvmlCallPolicy policy, NvmlDevice d)
    {
        ref var gpm = ref d.Gpm;
        Free(policy, ref gpm.Previous);
        Free(policy, ref gpm.Current);
        gpm.HasPrevious = false;

        static void Free(NvmlCallPolicy policy, ref nint sample)
        {
            if (sample != 0)
            {
                // A lost GPU is already down: the failure is only counted.
                _ = policy.Check(null, nameof(nvmlGpmSampleFree), nvmlGpmSampleFree(sample));
                sample = 0;
            }
        }
    }

    private static bool Allocate(NvmlCallPolicy policy, NvmlDevice d, ref nint sample)
    {
        if (sample != 0)
        {
            return true;
        }

        nint allocated;
        if (!policy.Check(d, nameof(nvmlGpmSampleAlloc), nvmlGpmSampleAlloc(&allocated)))
        {
            return false;
        }

        sample = allocated;
        return true;
    }

    private void Compute(NvmlCallPolicy policy, NvmlDevice d, nint previous, nint current, ref GpuReadingBuilder r)
    {
        _buffer ??= GC.AllocateArray<GpmMetricsGet>(1, pinned: true);
        var get = (GpmMetricsGet*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_buffer));
        get->Version = GpmMetricsGetVersion;
        get->NumMetrics = (uint)Asked.Length;
        get->Sample1 = previous;
        get->Sample2 = current;
        for (var i = 0; i < Asked.Length; i++)
        {
            get->Metrics[i] = new GpmMetric { MetricId = Asked[i], NvmlReturn = Return.Unknown };
        }

        if (!policy.Check(d, nameof(nvmlGpmMetricsGet), nvmlGpmMetricsGet(get)))
        {
            return;
        }

        for (var i = 0; i < Asked.Length; i++)
        {
            ref readonly var metric = ref get->Metrics[i];
            if (metric.NvmlReturn == Return.Success && metric.MetricId == Asked[i] && double.IsFinite(metric.Value) && metric.Value >= 0)
            {
                Store(metric.MetricId, metric.Value, ref r);
            }
        }
    }

    /// <summary>DCGM's units: the utilisation percentages as ratios, the MiB/s rates in bytes per second.</summary>
    private static void Store(GpmMetricId id, double value, ref GpuReadingBuilder r)
    {
        switch (id)
        {
            case GpmMetricId.GraphicsUtil: r.GrActive = value / 100; break;      // DCGM_FI_PROF_GR_ENGINE_ACTIVE
            case GpmMetricId.AnyTensorUtil: r.TensorActive = value / 100; break; // DCGM_FI_PROF_PIPE_TENSOR_ACTIVE
            case GpmMetricId.DramBwUtil: r.DramActive = value / 100; break;      // DCGM_FI_PROF_DRAM_ACTIVE
            case GpmMetricId.PcieTxPerSec: r.PcieTx = value * MiB; break;        // DCGM_FI_PROF_PCIE_TX_BYTES
            case GpmMetricId.PcieRxPerSec: r.PcieRx = value * MiB; break;        // DCGM_FI_PROF_PCIE_RX_BYTES
            case GpmMetricId.NvlinkTotalTxPerSec: r.NvlinkTx = value * MiB; break; // DCGM_FI_PROF_NVLINK_TX_BYTES
            case GpmMetricId.NvlinkTotalRxPerSec: r.NvlinkRx = value * MiB; break; // DCGM_FI_PROF_NVLINK_RX_BYTES
            default: break;
        }
    }
}
