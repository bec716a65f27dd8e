using VastHostAgent.Host;
using VastHostAgent.Kernel;

namespace VastHostAgent.Metrics;

/// <summary>Board sensors (hwmon) and the space on Docker's data root.</summary>
internal sealed class HostSeries : ISnapshotSeries
{
    private readonly TrackedGauge _hwmonTemp;
    private readonly TrackedGauge _hwmonFan;
    private readonly TrackedGauge _diskTotal;
    private readonly TrackedGauge _diskFree;
    private readonly TrackedGauge _diskAvailable;

    public HostSeries(SeriesFactory f)
    {
        _hwmonTemp = f.Gauge("vasthost_hwmon_temperature_celsius", "Board sensor temperature from hwmon.", "chip", "sensor");
        _hwmonFan = f.Gauge("vasthost_hwmon_fan_rpm", "Board fan speed from hwmon, in revolutions per minute.", "chip", "sensor");
        _diskTotal = f.Gauge("vasthost_disk_total_bytes", "Size of the filesystem holding Docker's data root.", "path");
        _diskFree = f.Gauge("vasthost_disk_free_bytes", "Free space on the filesystem holding Docker's data root.", "path");
        _diskAvailable = f.Gauge("vasthost_disk_available_bytes", "Space available to unprivileged users on the filesystem holding Docker's data root.", "path");
    }

    public void Apply(HostSnapshot snapshot)
    {
        foreach (var s in snapshot.Sensors ?? [])
        {
            (s.Kind == SensorKind.Temperature ? _hwmonTemp : _hwmonFan).Set(s.Value, s.Chip, s.Sensor);
        }

        if (snapshot.Disk is { } disk)
        {
            _diskTotal.Set(disk.TotalBytes, disk.Path);
            _diskFree.Set(disk.FreeBytes, disk.Path);
            _diskAvailable.Set(disk.AvailableBytes, disk.Path);
        }
    }
}
