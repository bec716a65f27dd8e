using VastHostAgent.Host;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Host;

/// <summary>hwmon and disk readers against fixture trees.</summary>
public sealed class HostReaderTests
{
    [Fact]
    public void Hwmon_reads_temperatures_in_celsius_and_fans_in_rpm_with_driver_labels()
    {
        var dir = TestEnvironment.NewTempDirectory("hwmon");
        var fixture = new HwmonFixture(dir)
            .Chip(0, "acpitz", ("temp1", 27800, null))
            .Chip(1, "nct6798", ("temp1", 38000, "SYSTIN"), ("temp2", -2000, "AUXTIN"), ("fan2", 950, "CPU_FAN"));
        var readings = new HwmonReader(fixture.Root).Read();

        Assert.Contains(new HwmonReading("acpitz", "temp1", SensorKind.Temperature, 27.8), readings);
        Assert.Contains(new HwmonReading("nct6798", "SYSTIN", SensorKind.Temperature, 38), readings);
        Assert.Contains(new HwmonReading("nct6798", "AUXTIN", SensorKind.Temperature, -2), readings);
        Assert.Contains(new HwmonReading("nct6798", "CPU_FAN", SensorKind.Fan, 950), readings);
        Assert.Equal(4, readings.Count);
    }

    [Fact]
    public void Two_chips_with_one_driver_name_get_ordinals_and_repeated_labels_stay_distinct()
    {
        var dir = TestEnvironment.NewTempDirectory("hwmon2");
        var fixture = new HwmonFixture(dir)
            .Chip(2, "coretemp", ("temp1", 50000, "Package id 0"), ("temp2", 49000, "Core 0"))
            .Chip(10, "coretemp", ("temp1", 60000, "Package id 1"), ("temp2", 59000, "Core 0"))
            .Chip(3, "drivetemp", ("temp1", 35000, "Core 0"), ("temp2", 36000, "Core 0"));
        var readings = new HwmonReader(fixture.Root).Read();

        Assert.Contains(new HwmonReading("coretemp_0", "Package id 0", SensorKind.Temperature, 50), readings);
        Assert.Contains(new HwmonReading("coretemp_1", "Package id 1", SensorKind.Temperature, 60), readings);
        Assert.Contains(new HwmonReading("coretemp_1", "Core 0", SensorKind.Temperature, 59), readings);
        Assert.Contains(new HwmonReading("drivetemp", "Core 0 (temp2)", SensorKind.Temperature, 36), readings);
        Assert.Equal(readings.Count, readings.Select(r => (r.Chip, r.Sensor, r.Kind)).Distinct().Count());
    }

    [Fact]
    public void Unreadable_or_garbage_inputs_are_skipped_not_fatal()
    {
        var dir = TestEnvironment.NewTempDirectory("hwmon3");
        var fixture = new HwmonFixture(dir).Chip(0, "nvme", ("temp1", 41000, "Composite"));
        var chipDir = Path.Combine(fixture.Root, "class", "hwmon", "hwmon0");
        File.WriteAllText(Path.Combine(chipDir, "temp2_input"), "not-a-number\n");
        Directory.CreateDirectory(Path.Combine(chipDir, "temp3_input")); // reading a directory fails with IOException
        var readings = new HwmonReader(fixture.Root).Read();
        Assert.Equal([new HwmonReading("nvme", "Composite", SensorKind.Temperature, 41)], readings);
    }

    [Fact]
    public void No_hwmon_directory_means_no_sensors()
    {
        Assert.Empty(new HwmonReader(TestEnvironment.NewTempDirectory("nohwmon")).Read());
    }

    [Fact]
    public void Disk_space_of_a_missing_path_is_measured_on_its_nearest_existing_parent()
    {
        var dir = TestEnvironment.NewTempDirectory("disk");
        var reader = new StatVfsDiskSpaceReader();
        var existing = reader.Read(dir);
        Assert.Equal(dir, existing.MeasuredPath);
        Assert.True(existing.TotalBytes > 0);
        Assert.InRange(existing.AvailableBytes, 0UL, existing.FreeBytes);
        Assert.InRange(existing.FreeBytes, 0UL, existing.TotalBytes);

        var missing = reader.Read(Path.Combine(dir, "docker", "data"));
        Assert.Equal(dir, missing.MeasuredPath);
        Assert.Equal(Path.Combine(dir, "docker", "data"), missing.Path);
        Assert.Equal(existing.TotalBytes, missing.TotalBytes);
    }
}
