using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;

namespace VastHostAgent.Gpu;

/// <summary>Publishes NVML readings into the snapshot. The collector fails while NVML is unusable.</summary>
internal sealed class GpuSource(IGpuTelemetry telemetry, IOptions<GpuOptions> gpu, IOptions<AgentOptions> agent) : ISnapshotSource
{
    public string Name => "gpu";

    public bool Enabled => gpu.Value.Enabled;

    public TimeSpan Interval => agent.Value.SampleInterval;

    public ValueTask<SourceResult> CollectAsync(CancellationToken cancellationToken)
    {
        var sample = telemetry.Sample();
        HostSnapshot Apply(HostSnapshot s) => s.WithGpu(sample);
        return ValueTask.FromResult(sample.NvmlUp ? SourceResult.Success(Apply) : SourceResult.Failure(sample.Problem ?? "NVML unavailable", Apply));
    }

    public HostSnapshot Clear(HostSnapshot snapshot) => snapshot.WithGpu(GpuSample.Unavailable("collector failed"));

    /// <summary>NVML has stopped answering (a wedged driver): every GPU is down with the reason "stale", its frozen readings gone.</summary>
    public HostSnapshot MarkStale(HostSnapshot snapshot, string problem) => snapshot.WithGpu(snapshot.Gpu is { NvmlUp: true } sample
        ? sample with { Problem = "NVML " + problem, Gpus = [.. sample.Gpus.Select(g => new GpuReading { Identity = g.Identity, Up = false, DownReason = "stale" })] }
        : GpuSample.Unavailable("NVML " + problem));
}
