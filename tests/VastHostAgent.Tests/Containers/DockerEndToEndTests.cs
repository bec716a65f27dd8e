using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Containers;

/// <summary>
/// The real agent against a real private dockerd and the fake NVML: which Vast instance runs in which
/// container on which GPUs, kept current by Docker's events.
/// </summary>
[Collection(DockerGroup.Name)]
public sealed class DockerEndToEndTests(DockerFixture fixture, ITestOutputHelper output)
{
    private readonly DockerDaemon _docker = fixture.Daemon;

    private static FakeNvmlState FourGpus(string dir) => new(dir, new Dictionary<string, string>
    {
        ["gpus"] = "4",
        ["gpu.0.uuid"] = "GPU-aaaaaaaa-0000-4000-8000-000000000000",
        ["gpu.1.uuid"] = "GPU-aaaaaaaa-0000-4000-8000-000000000001",
        ["gpu.2.uuid"] = "GPU-aaaaaaaa-0000-4000-8000-000000000002",
        ["gpu.3.uuid"] = "GPU-aaaaaaaa-0000-4000-8000-000000000003",
        ["gpu.0.util_gpu"] = "97",
        ["gpu.0.temp"] = "71",
    });

    private async Task<string> RunContainerAsync(string name, params string[] options) =>
        await _docker.DockerAsync(["run", "-d", "--name", name, .. options, DockerDaemon.Image, "sleep", "3600"]);

    private async Task RemoveAsync(params string[] names)
    {
        foreach (var name in names)
        {
            await _docker.TryDockerAsync("rm", "-f", name);
        }
    }

    [Fact]
    public async Task Instances_containers_GPUs_limits_and_GPU_memory_are_mapped()
    {
        var dir = TestEnvironment.NewTempDirectory("dk-map");
        var state = FourGpus(dir);
        await RunContainerAsync("C.1001", "-e", "NVIDIA_VISIBLE_DEVICES=0,1", "--memory", "64m", "--cpus", "0.5", "--label", "vast.tier=gold");
        await RunContainerAsync("C.1002", "-e", "NVIDIA_VISIBLE_DEVICES=GPU-aaaaaaaa-0000-4000-8000-000000000002");
        await RunContainerAsync("hostjob");
        await RunContainerAsync("C.1004", "-e", "NVIDIA_VISIBLE_DEVICES=MIG-1a2b3c4d-0000-5000-9000-000000000000");
        try
        {
            // A CUDA process inside C.1001 on GPU 0: NVML reports its host PID; the agent maps it via /proc.
            var pid = await _docker.PidOfAsync("C.1001");
            state.Set("gpu.0.processes", $"{pid}:1073741824,999999:4096");

            await using var agent = AgentProcess.Start(new AgentConfig
            {
                FakeNvmlState = state.Path,
                DockerEndpoint = _docker.Endpoint,
                DockerExportLabels = ["vast.tier"],
            });
            var m = await agent.ScrapeUntilAsync(
                e => e.Value("vasthost_docker_up") == 1
                     && e.Named("vasthost_container_gpu_memory_used_bytes").Any()
                     && e.Named("vasthost_container_memory_usage_bytes").Count() >= 4,
                "containers mapped");

            (string, string) c1001 = ("container", "C.1001");
            var info = Assert.Single(m.Where("vasthost_container_info", c1001));
            Assert.Equal("1001", info.Label("instance_id"));
            Assert.Equal("tiny:latest", info.Label("image"));
            Assert.Equal("gold", info.Label("label_vast_tier"));
            Assert.Equal("", Assert.Single(m.Where("vasthost_container_info", ("container", "hostjob"))).Label("instance_id"));
            Assert.Equal(1, m.Value("vasthost_container_state", c1001, ("state", "running")));
            Assert.Equal(64 * 1024 * 1024, m.Value("vasthost_container_memory_limit_bytes", c1001));
            Assert.Equal(0.5, m.Value("vasthost_container_cpu_limit_cores", c1001));
            Assert.True(m.Value("vasthost_container_memory_usage_bytes", c1001) > 0);
            Assert.NotNull(m.Value("vasthost_container_cpu_usage_seconds_total", c1001));
            Assert.NotNull(m.Value("vasthost_container_network_receive_bytes_total", c1001));
            Assert.Empty(m.Where("vasthost_container_memory_limit_bytes", ("container", "hostjob")));

            // GPU ↔ container ↔ instance
            var assignments = m.Named("vasthost_gpu_assignment").Select(s => (s.Label("gpu"), s.Label("container"), s.Label("instance_id"))).Order().ToList();
            Assert.Equal([("0", "C.1001", "1001"), ("1", "C.1001", "1001"), ("2", "C.1002", "1002")], assignments);
            Assert.Equal(2, m.Value("vasthost_container_gpus", c1001));
            Assert.Equal(0, m.Value("vasthost_container_gpus", ("container", "hostjob")));
            Assert.Equal(1, m.Value("vasthost_container_gpu_unresolved", ("container", "C.1004")));
            Assert.Equal(1073741824, m.Value("vasthost_container_gpu_memory_used_bytes", c1001, ("gpu", "0")));
            Assert.Equal(1, m.Value("vasthost_container_gpu_processes", c1001, ("gpu", "0")));
            Assert.Single(m.Named("vasthost_container_gpu_processes")); // PID 999999 is not a container process

            // The one-query join documented in docs/metrics.md: GPU 0 → instance 1001, 97 % util.
            var joined = m.Where("vasthost_gpu_assignment", ("uuid", "GPU-aaaaaaaa-0000-4000-8000-000000000000")).Single();
            Assert.Equal("1001", joined.Label("instance_id"));
            Assert.Equal(0.97, m.Value("vasthost_gpu_utilization_ratio", ("uuid", joined.Label("uuid"))));

            var lint = await Promtool.CheckMetricsAsync(m.Text);
            Assert.True(lint.ExitCode == 0, lint.Output);
            Metrics.MetricsDocumentationTests.AssertDocumented(m);
            Assert.Contains("Container C.1004: GPU assignment MIG-1a2b3c4d-0000-5000-9000-000000000000 matches no GPU", agent.StandardOutput, StringComparison.Ordinal);
        }
        finally
        {
            await RemoveAsync("C.1001", "C.1002", "hostjob", "C.1004");
        }
    }

    [Fact]
    public async Task Stop_kill_remove_and_start_are_reflected_from_events_without_waiting_for_a_resync()
    {
        var dir = TestEnvironment.NewTempDirectory("dk-events");
        var state = FourGpus(dir);
        await RunContainerAsync("C.2001", "-e", "NVIDIA_VISIBLE_DEVICES=3");
        await RunContainerAsync("C.2002");
        try
        {
            await using var agent = AgentProcess.Start(new AgentConfig
            {
                FakeNvmlState = state.Path,
                DockerEndpoint = _docker.Endpoint,
                DockerResyncInterval = "01:00:00", // only events can make these changes visible in time
            });
            await agent.ScrapeUntilAsync(e => e.Value("vasthost_container_state", ("container", "C.2001"), ("state", "running")) == 1, "C.2001 running");

            var clock = Stopwatch.StartNew();
            await _docker.DockerAsync("kill", "C.2001");
            var killed = await agent.ScrapeUntilAsync(e => e.Value("vasthost_container_state", ("container", "C.2001"), ("state", "exited")) == 1, "C.2001 exited", TimeSpan.FromSeconds(10));
            output.WriteLine($"docker kill returned → metric shows exited: {clock.ElapsedMilliseconds} ms");
            Assert.Equal(137, killed.Value("vasthost_container_exit_code", ("container", "C.2001")));
            Assert.Empty(killed.Where("vasthost_gpu_assignment", ("container", "C.2001")));
            Assert.Empty(killed.Where("vasthost_container_state", ("container", "C.2001"), ("state", "running")));

            await _docker.DockerAsync("stop", "-t", "0", "C.2002");
            await agent.ScrapeUntilAsync(e => e.Value("vasthost_container_state", ("container", "C.2002"), ("state", "exited")) == 1, "C.2002 stopped", TimeSpan.FromSeconds(10));

            await _docker.DockerAsync("rm", "C.2001");
            var removed = await agent.ScrapeUntilAsync(e => !e.Where("vasthost_container_info", ("container", "C.2001")).Any(), "C.2001 gone", TimeSpan.FromSeconds(10));
            Assert.Empty(removed.Where("vasthost_container_exit_code", ("container", "C.2001")));

            await RunContainerAsync("C.2003", "-e", "NVIDIA_VISIBLE_DEVICES=3");
            var started = await agent.ScrapeUntilAsync(e => e.Value("vasthost_gpu_assignment", ("container", "C.2003"), ("gpu", "3")) == 1, "C.2003 on GPU 3", TimeSpan.FromSeconds(10));
            Assert.Equal("2003", Assert.Single(started.Where("vasthost_container_info", ("container", "C.2003"))).Label("instance_id"));

            await _docker.DockerAsync("rename", "C.2003", "C.2004");
            await agent.ScrapeUntilAsync(e => e.Where("vasthost_container_info", ("container", "C.2004"), ("instance_id", "2004")).Any()
                && !e.Where("vasthost_container_info", ("container", "C.2003")).Any(), "rename", TimeSpan.FromSeconds(10));
        }
        finally
        {
            await RemoveAsync("C.2001", "C.2002", "C.2003", "C.2004");
        }
    }

    [Fact]
    public async Task An_OOM_killed_container_is_reported_as_such()
    {
        var dir = TestEnvironment.NewTempDirectory("dk-oom");
        var state = FourGpus(dir);
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, DockerEndpoint = _docker.Endpoint });
        await agent.ScrapeUntilAsync(e => e.Value("vasthost_docker_up") == 1, "docker up");
        try
        {
            // The shell keeps 100 MB of output in a variable under a 16 MiB limit without swap.
            var (exit, _) = await _docker.TryDockerAsync("run", "--name", "C.3001", "--memory", "16m", "--memory-swap", "16m",
                DockerDaemon.Image, "sh", "-c", "x=$(yes | head -c 100000000); echo survived");
            Assert.Equal(137, exit);

            var m = await agent.ScrapeUntilAsync(e => e.Value("vasthost_container_oom_killed", ("container", "C.3001")) == 1, "OOM reported", TimeSpan.FromSeconds(10));
            Assert.Equal(137, m.Value("vasthost_container_exit_code", ("container", "C.3001")));
            Assert.Equal(1, m.Value("vasthost_container_state", ("container", "C.3001"), ("state", "exited")));
        }
        finally
        {
            await RemoveAsync("C.3001");
        }
    }

    [Fact]
    public async Task Status_shows_GPUs_with_their_instances_from_the_daemon_and_as_JSON()
    {
        var dir = TestEnvironment.NewTempDirectory("dk-status");
        var state = FourGpus(dir);
        await RunContainerAsync("C.4001", "-e", "NVIDIA_VISIBLE_DEVICES=1,2", "--memory", "128m");
        try
        {
            await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, DockerEndpoint = _docker.Endpoint, WorkDirectory = dir });
            await agent.ScrapeUntilAsync(e => e.Where("vasthost_gpu_assignment", ("container", "C.4001")).Count() == 2
                && e.Named("vasthost_container_memory_usage_bytes").Any(), "mapped");
            var config = Path.Combine(dir, "agent.json");

            var (exit, text, stderr) = await AgentProcess.RunToExitAsync(["status", "--config", config], new Dictionary<string, string?> { ["FAKE_NVML_STATE"] = state.Path });
            Assert.True(exit == 0, stderr);
            Assert.Contains("running daemon", text, StringComparison.Ordinal);
            var gpuLines = text.Split('\n').Where(l => l.Contains("NVIDIA GeForce", StringComparison.Ordinal)).ToList();
            Assert.Equal(4, gpuLines.Count);
            Assert.EndsWith("4001", gpuLines[1].TrimEnd(), StringComparison.Ordinal);
            Assert.EndsWith("4001", gpuLines[2].TrimEnd(), StringComparison.Ordinal);
            Assert.EndsWith("-", gpuLines[3].TrimEnd(), StringComparison.Ordinal);
            var containerLine = text.Split('\n').Single(l => l.Contains("C.4001", StringComparison.Ordinal));
            Assert.Matches(@"^4001\s+C\.4001\s+running\s+\S+\s+1,2\s", containerLine);
            Assert.Contains("/0.1 GiB", containerLine, StringComparison.Ordinal);

            var json = await AgentProcess.RunToExitAsync(["status", "--json", "--config", config]);
            Assert.Equal(0, json.ExitCode);
            using var doc = JsonDocument.Parse(json.Stdout);
            var gpus = doc.RootElement.GetProperty("gpus");
            Assert.Equal(4, gpus.GetArrayLength());
            Assert.Equal(4001, gpus[1].GetProperty("instanceId").GetInt64());
            Assert.Equal(JsonValueKind.Null, gpus[0].GetProperty("instanceId").ValueKind);
            var container = doc.RootElement.GetProperty("containers").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "C.4001");
            Assert.Equal([1, 2], container.GetProperty("gpus").EnumerateArray().Select(g => g.GetInt32()));
            Assert.Equal(128 * 1024 * 1024, container.GetProperty("memoryLimitBytes").GetInt64());

            // Without the daemon: the command samples once by itself.
            await agent.StopAsync();
            var once = await AgentProcess.RunToExitAsync(["status", "--config", config], new Dictionary<string, string?> { ["FAKE_NVML_STATE"] = state.Path });
            Assert.Equal(0, once.ExitCode);
            Assert.Contains("sampled once", once.Stdout, StringComparison.Ordinal);
            Assert.Contains("C.4001", once.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await RemoveAsync("C.4001");
        }
    }

    [Fact]
    public async Task The_mapping_of_a_real_container_process_goes_through_its_proc_cgroup_file()
    {
        await RunContainerAsync("C.5001");
        try
        {
            var pid = await _docker.PidOfAsync("C.5001");
            var id = await _docker.DockerAsync("inspect", "-f", "{{.Id}}", "C.5001");
            var reader = new VastHostAgent.Containers.CgroupReader("/proc", "/sys/fs/cgroup");
            Assert.Equal(id, reader.ContainerIdOf(pid));
            Assert.Null(reader.ContainerIdOf(Environment.ProcessId));
            var usage = reader.Read(id, pid);
            Assert.NotNull(usage);
            Assert.True(usage!.MemoryUsageBytes > 0);
            Assert.True(usage.CpuSeconds >= 0);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"real container {id[..12]}: memory {usage.MemoryUsageBytes} B, cpu {usage.CpuSeconds} s"));
        }
        finally
        {
            await RemoveAsync("C.5001");
        }
    }
}
