using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;

namespace VastHostAgent.Host;

/// <summary>Publishes hwmon temperatures and fan speeds.</summary>
internal sealed class HwmonSource(IHwmonReader reader, IOptions<HostSensorOptions> host, IOptions<AgentOptions> agent) : ISnapshotSource
{
    public string Name => "hwmon";

    public bool Enabled => host.Value.Hwmon;

    public TimeSpan Interval => agent.Value.SampleInterval;

    public ValueTask<SourceResult> CollectAsync(CancellationToken cancellationToken)
    {
        var readings = reader.Read();
        return ValueTask.FromResult(SourceResult.Success(s => s.WithSensors(readings)));
    }

    public HostSnapshot Clear(HostSnapshot snapshot) => snapshot.WithSensors(null);
}

/// <summary>Publishes space on the filesystem holding Docker's data root.</summary>
internal sealed class DiskSource(IDiskSpaceReader reader, IOptions<HostSensorOptions> host, IOptions<AgentOptions> agent, ILogger<DiskSource> logger) : ISnapshotSource
{
    private bool _loggedFallback;

    public string Name => "disk";

    public bool Enabled => host.Value.Disk;

    public TimeSpan Interval => agent.Value.SampleInterval;

    public ValueTask<SourceResult> CollectAsync(CancellationToken cancellationToken)
    {
        var space = reader.Read(host.Value.DockerDataRoot);
        if (space.MeasuredPath != space.Path && !_loggedFallback)
        {
            HostLog.DiskPathMissing(logger, space.Path, space.MeasuredPath);
            _loggedFallback = true;
        }

        return ValueTask.FromResult(SourceResult.Success(s => s.WithDisk(space)));
    }

    public HostSnapshot Clear(HostSnapshot snapshot) => snapshot.WithDisk(null);
}
