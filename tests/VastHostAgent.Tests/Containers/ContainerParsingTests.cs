using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Containers;

/// <summary>GPU assignment forms, instance names, Docker times, and cgroup layouts from fixture trees.</summary>
public sealed class ContainerParsingTests
{
    private static readonly GpuIdentity[] Inventory =
    [
        new(0, "GPU-aaaa0000-0000-4000-8000-000000000000", "NVIDIA RTX 4090", "00000000:01:00.0", 0, null, null),
        new(1, "GPU-aaaa0000-0000-4000-8000-000000000001", "NVIDIA RTX 4090", "00000000:02:00.0", 1, null, null),
        new(2, "GPU-aaaa0000-0000-4000-8000-000000000002", "NVIDIA RTX 4090", "00000000:41:00.0", 3, null, null),
    ];

    private static (int[] Indices, string[] Unresolved) Resolve(ContainerGpuRequest request)
    {
        var (gpus, unresolved) = GpuAssignment.Resolve(request, Inventory);
        return ([.. gpus.Select(g => g.Index)], [.. unresolved]);
    }

    private static ContainerGpuRequest Env(string value) => GpuAssignment.Parse(null, ["PATH=/bin", $"NVIDIA_VISIBLE_DEVICES={value}"], null);

    [Theory]
    [InlineData("0,2", new[] { 0, 2 }, new string[0])]
    [InlineData("all", new[] { 0, 1, 2 }, new string[0])]
    [InlineData("ALL", new[] { 0, 1, 2 }, new string[0])]
    [InlineData("none", new int[0], new string[0])]
    [InlineData("void", new int[0], new string[0])]
    [InlineData("", new int[0], new string[0])]
    [InlineData("GPU-aaaa0000-0000-4000-8000-000000000001", new[] { 1 }, new string[0])]
    [InlineData("gpu-AAAA0000-0000-4000-8000-000000000002, 0", new[] { 0, 2 }, new string[0])]
    [InlineData("1,7", new[] { 1 }, new[] { "7" })]
    [InlineData("MIG-1a2b3c4d-0000-5000-9000-000000000000", new int[0], new[] { "MIG-1a2b3c4d-0000-5000-9000-000000000000" })]
    [InlineData("0:1", new int[0], new[] { "0:1" })]
    [InlineData("GPU-ffffffff-0000-4000-8000-000000000009", new int[0], new[] { "GPU-ffffffff-0000-4000-8000-000000000009" })]
    public void NVIDIA_VISIBLE_DEVICES_forms_resolve_to_GPUs_or_are_reported(string value, int[] expected, string[] unresolved)
    {
        var (indices, missing) = Resolve(Env(value));
        Assert.Equal(expected, indices);
        Assert.Equal(unresolved, missing);
    }

    [Fact]
    public void No_variable_means_no_GPU()
    {
        Assert.True(GpuAssignment.Parse(null, ["PATH=/bin"], null).IsEmpty);
        Assert.True(GpuAssignment.Parse(null, null, null).IsEmpty);
    }

    [Fact]
    public void Device_requests_with_ids_count_all_and_capabilities_resolve()
    {
        (string?, long, IReadOnlyList<string>?, IReadOnlyList<IReadOnlyList<string>>?) ids = ("nvidia", 0, ["2", "GPU-aaaa0000-0000-4000-8000-000000000000"], [["gpu"]]);
        Assert.Equal([0, 2], Resolve(GpuAssignment.Parse([ids], null, null)).Indices);

        (string?, long, IReadOnlyList<string>?, IReadOnlyList<IReadOnlyList<string>>?) all = ("", -1, null, [["gpu", "utility"]]);
        var request = GpuAssignment.Parse([all], null, null);
        Assert.True(request.All);
        Assert.Equal(["device_requests"], request.Sources);
        Assert.Equal([0, 1, 2], Resolve(request).Indices);

        // --gpus 2: Docker hands the first two NVML indices to the container.
        (string?, long, IReadOnlyList<string>?, IReadOnlyList<IReadOnlyList<string>>?) two = ("nvidia", 2, null, null);
        Assert.Equal([0, 1], Resolve(GpuAssignment.Parse([two], null, null)).Indices);

        // A request for another kind of device is not a GPU.
        (string?, long, IReadOnlyList<string>?, IReadOnlyList<IReadOnlyList<string>>?) other = ("rdma", -1, null, [["rdma"]]);
        Assert.True(GpuAssignment.Parse([other], null, null).IsEmpty);
    }

    [Fact]
    public void Device_mappings_of_dev_nvidiaN_resolve_by_minor_number_and_mechanisms_combine()
    {
        var request = GpuAssignment.Parse(null, ["NVIDIA_VISIBLE_DEVICES=0"], ["/dev/nvidia3", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia9"]);
        Assert.Equal(["env", "devices"], request.Sources);
        var (indices, unresolved) = Resolve(request);
        Assert.Equal([0, 2], indices); // minor 3 is GPU index 2
        Assert.Equal(["/dev/nvidia9"], unresolved);
    }

    [Theory]
    [InlineData("C.12345", 12345L)]
    [InlineData("/C.7", 7L)]
    [InlineData("C.12a", null)]
    [InlineData("C.", null)]
    [InlineData("my-C.12", null)]
    [InlineData("vastai-default-job", null)]
    public void Vast_instance_ids_come_only_from_C_dot_digits_names(string name, long? expected) =>
        Assert.Equal(expected, VastNames.InstanceId(name));

    [Theory]
    [InlineData("2026-11-27T15:20:01.123456789Z", "2026-11-27T15:20:01.1234567+00:00")]
    [InlineData("2026-11-27T15:20:01Z", "2026-11-27T15:20:01+00:00")]
    [InlineData("2026-11-27T17:20:01.5+02:00", "2026-11-27T15:20:01.5+00:00")]
    public void Docker_times_with_nanoseconds_parse(string text, string expected) =>
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), DockerInventoryService.ParseDockerTime(text));

    [Theory]
    [InlineData("0001-01-01T00:00:00Z")]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("garbage")]
    public void Docker_zero_times_mean_never(string? text) => Assert.Null(DockerInventoryService.ParseDockerTime(text));

    private const string Id = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";

    [Fact]
    public void Cgroup_v1_layout_gives_cpu_memory_working_set_limit_and_network()
    {
        var root = TestEnvironment.NewTempDirectory("cg1");
        var proc = Path.Combine(root, "proc");
        var cgroup = Path.Combine(root, "cgroup");
        Write(proc, "4242/cgroup", $"12:memory:/docker/{Id}\n4:cpu,cpuacct:/docker/{Id}\n1:name=systemd:/docker/{Id}\n0::/\n");
        Write(proc, "4242/net/dev", """
            Inter-|   Receive                                                |  Transmit
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
                lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
              eth0: 5000000    4000    0    0    0     0          0         0   250000    2000    0    0    0     0       0          0
            """);
        Write(cgroup, $"cpu,cpuacct/docker/{Id}/cpuacct.usage", "12500000000\n");
        Write(cgroup, $"memory/docker/{Id}/memory.usage_in_bytes", "1048576000\n");
        Write(cgroup, $"memory/docker/{Id}/memory.limit_in_bytes", "4294967296\n");
        Write(cgroup, $"memory/docker/{Id}/memory.stat", "cache 500\ntotal_inactive_file 48576000\ntotal_rss 100\n");

        var reader = new CgroupReader(proc, cgroup);
        var usage = reader.Read(Id, 4242);
        Assert.Equal(new ContainerUsage(Id, 12.5, null, 1048576000, 1000000000, 4294967296, 5000000, 250000), usage);
        Assert.Equal(Id, reader.ContainerIdOf(4242));
    }

    [Fact]
    public void Cgroup_v1_without_a_limit_reports_none()
    {
        var root = TestEnvironment.NewTempDirectory("cg1u");
        var proc = Path.Combine(root, "proc");
        var cgroup = Path.Combine(root, "cgroup");
        Write(proc, "7/cgroup", $"3:cpuacct:/docker/{Id}\n2:memory:/docker/{Id}\n");
        Write(cgroup, $"cpuacct/docker/{Id}/cpuacct.usage", "1000000000\n");
        Write(cgroup, $"memory/docker/{Id}/memory.usage_in_bytes", "4096\n");
        Write(cgroup, $"memory/docker/{Id}/memory.limit_in_bytes", "9223372036854771712\n");
        var usage = new CgroupReader(proc, cgroup).Read(Id, 7)!;
        Assert.Null(usage.MemoryLimitBytes);
        Assert.Equal(1.0, usage.CpuSeconds);
        Assert.Equal(4096UL, usage.MemoryWorkingSetBytes);
        Assert.Null(usage.NetworkReceiveBytes); // no net/dev: absent, not 0
    }

    [Fact]
    public void Cgroup_v2_systemd_layout_gives_cpu_memory_and_limit()
    {
        var root = TestEnvironment.NewTempDirectory("cg2");
        var proc = Path.Combine(root, "proc");
        var cgroup = Path.Combine(root, "cgroup");
        Write(proc, "900/cgroup", $"0::/system.slice/docker-{Id}.scope\n");
        Write(cgroup, $"system.slice/docker-{Id}.scope/cpu.stat", "usage_usec 7250000\nuser_usec 7000000\nsystem_usec 250000\n");
        Write(cgroup, $"system.slice/docker-{Id}.scope/memory.current", "209715200\n");
        Write(cgroup, $"system.slice/docker-{Id}.scope/memory.max", "max\n");
        Write(cgroup, $"system.slice/docker-{Id}.scope/memory.stat", "anon 1\nfile 2\ninactive_file 9715200\n");

        var reader = new CgroupReader(proc, cgroup);
        var usage = reader.Read(Id, 900)!;
        Assert.Equal(7.25, usage.CpuSeconds);
        Assert.Equal(209715200UL, usage.MemoryUsageBytes);
        Assert.Equal(200000000UL, usage.MemoryWorkingSetBytes);
        Assert.Null(usage.MemoryLimitBytes);
        Assert.Equal(Id, reader.ContainerIdOf(900));
    }

    [Fact]
    public void Cgroup_v2_cgroupfs_layout_and_a_limit()
    {
        var root = TestEnvironment.NewTempDirectory("cg2b");
        var proc = Path.Combine(root, "proc");
        var cgroup = Path.Combine(root, "cgroup");
        Write(proc, "901/cgroup", $"0::/docker/{Id}\n");
        Write(cgroup, $"docker/{Id}/cpu.stat", "usage_usec 1\n");
        Write(cgroup, $"docker/{Id}/memory.current", "100\n");
        Write(cgroup, $"docker/{Id}/memory.max", "536870912\n");
        var usage = new CgroupReader(proc, cgroup).Read(Id, 901)!;
        Assert.Equal(536870912UL, usage.MemoryLimitBytes);
        Assert.Equal(Id, new CgroupReader(proc, cgroup).ContainerIdOf(901));
    }

    [Theory]
    [InlineData("0::/user.slice/user-1000.slice/session-3.scope")]
    [InlineData("12:memory:/\n4:cpu,cpuacct:/")]
    [InlineData("0::/kubepods/besteffort/pod12345678-1234-1234-1234-123456789012/abcdef")]
    public void Host_processes_belong_to_no_container(string cgroupFile)
    {
        var root = TestEnvironment.NewTempDirectory("cghost");
        Write(Path.Combine(root, "proc"), "55/cgroup", cgroupFile + "\n");
        Assert.Null(new CgroupReader(Path.Combine(root, "proc"), root).ContainerIdOf(55));
    }

    [Fact]
    public void A_process_that_exited_maps_to_nothing_and_reads_nothing()
    {
        var root = TestEnvironment.NewTempDirectory("cggone");
        var reader = new CgroupReader(Path.Combine(root, "proc"), root);
        Assert.Null(reader.ContainerIdOf(123456));
        Assert.Null(reader.Read(Id, 123456));
    }

    private static void Write(string root, string relative, string content)
    {
        var path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }
}
