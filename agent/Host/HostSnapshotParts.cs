using VastHostAgent.Kernel;

namespace VastHostAgent.Host;

/// <summary>This feature's part of the <see cref="HostSnapshot"/>, by name.</summary>
public static class HostSnapshotParts
{
    extension(HostSnapshot snapshot)
    {
        /// <summary>Board sensors from hwmon.</summary>
        public IReadOnlyList<HwmonReading>? Sensors => snapshot.Part<IReadOnlyList<HwmonReading>>();

        /// <summary>The snapshot with <c>Sensors</c> replaced.</summary>
        public HostSnapshot WithSensors(IReadOnlyList<HwmonReading>? value) => snapshot.WithPart(value);

        /// <summary>Space on the file system of Docker's data root.</summary>
        public DiskSpace? Disk => snapshot.Part<DiskSpace>();

        /// <summary>The snapshot with <c>Disk</c> replaced.</summary>
        public HostSnapshot WithDisk(DiskSpace? value) => snapshot.WithPart(value);
    }
}
