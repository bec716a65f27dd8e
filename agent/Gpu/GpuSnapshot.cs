using VastHostAgent.Kernel;

namespace VastHostAgent.Gpu;

/// <summary>This feature's part of the <see cref="HostSnapshot"/>, by name.</summary>
public static class GpuSnapshot
{
    extension(HostSnapshot snapshot)
    {
        /// <summary>NVML readings; null while gpu.enabled is false or before the first sample.</summary>
        public GpuSample? Gpu => snapshot.Part<GpuSample>();

        /// <summary>The snapshot with <c>Gpu</c> replaced.</summary>
        public HostSnapshot WithGpu(GpuSample? value) => snapshot.WithPart(value);
    }
}
