namespace VastHostAgent.Host;

/// <summary>Kind of an hwmon reading.</summary>
public enum SensorKind
{
    Temperature,
    Fan,
}

/// <summary>One hwmon reading: °C for temperatures, RPM for fans.</summary>
public readonly record struct HwmonReading(string Chip, string Sensor, SensorKind Kind, double Value);

/// <summary>Space on the filesystem holding <see cref="Path"/> (the configured Docker data root).</summary>
/// <param name="Path">The configured path (the label value).</param>
/// <param name="MeasuredPath">The path statvfs ran on: the configured one, or its nearest existing parent.</param>
/// <param name="TotalBytes">Size of the filesystem.</param>
/// <param name="FreeBytes">Free space, including blocks reserved for root.</param>
/// <param name="AvailableBytes">Space available to unprivileged users.</param>
public sealed record DiskSpace(string Path, string MeasuredPath, ulong TotalBytes, ulong FreeBytes, ulong AvailableBytes);
