using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Containers;

/// <summary>Docker going away and coming back, or never being there: GPU metrics keep flowing.</summary>
public sealed class DockerOutageTests
{
    [Fact]
    public async Task A_dockerd_restart_takes_docker_up_to_0_and_back_with_a_correct_inventory_while_GPU_metrics_are_served()
    {
        await using var docker = await DockerDaemon.StartAsync();
        var dir = TestEnvironment.NewTempDirectory("dk-restart");
        var state = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "2" });
        await docker.DockerAsync("run", "-d", "--stop-timeout", "1", "--name", "C.6001", "-e", "NVIDIA_VISIBLE_DEVICES=0", DockerDaemon.Image, "sleep", "3600");
        await docker.DockerAsync("run", "-d", "--stop-timeout", "1", "--name", "C.6002", "--restart", "always", "-e", "NVIDIA_VISIBLE_DEVICES=1", DockerDaemon.Image, "sleep", "3600");

        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, DockerEndpoint = docker.Endpoint });
        await agent.ScrapeUntilAsync(e => e.Named("vasthost_gpu_assignment").Count() == 2, "both assigned");

        await docker.StopProcessAsync();
        var down = await agent.ScrapeUntilAsync(e => e.Value("vasthost_docker_up") == 0, "docker down", TimeSpan.FromSeconds(20));
        Assert.Empty(down.Named("vasthost_container_info"));
        Assert.Empty(down.Named("vasthost_gpu_assignment"));
        Assert.Equal(2, down.Value("vasthost_gpus", ("state", "nvml")));
        Assert.NotNull(down.Value("vasthost_gpu_temperature_celsius", ("gpu", "0")));
        Assert.Equal(0, down.Value("vasthost_collector_up", ("collector", "docker")));

        // While Docker is down, GPU readings still change.
        state.Set("gpu.0.temp", "77");
        await agent.ScrapeUntilAsync(e => e.Value("vasthost_gpu_temperature_celsius", ("gpu", "0")) == 77, "GPU metrics during the outage");

        await docker.StartProcessAsync();
        // After the restart: C.6001 stopped with the daemon, C.6002 came back under its restart policy.
        var up = await agent.ScrapeUntilAsync(
            e => e.Value("vasthost_docker_up") == 1
                 && e.Value("vasthost_container_state", ("container", "C.6001"), ("state", "exited")) == 1
                 && e.Value("vasthost_container_state", ("container", "C.6002"), ("state", "running")) == 1,
            "inventory after restart", TimeSpan.FromSeconds(60));
        var assigned = Assert.Single(up.Named("vasthost_gpu_assignment"));
        Assert.Equal("C.6002", assigned.Label("container"));
        Assert.Equal("1", assigned.Label("gpu"));
        Assert.Equal(1, up.Value("vasthost_collector_up", ("collector", "docker")));
        Assert.Contains("Docker unavailable", agent.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_Docker_GPU_metrics_are_served_and_docker_up_is_0()
    {
        var dir = TestEnvironment.NewTempDirectory("dk-none");
        var state = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "3" });
        await using var agent = AgentProcess.Start(new AgentConfig
        {
            FakeNvmlState = state.Path,
            DockerEndpoint = $"unix://{dir}/no-docker.sock",
        });
        var m = await agent.ScrapeUntilAsync(e => e.Named("vasthost_docker_up").Any() && e.Value("vasthost_collector_up", ("collector", "docker")) == 0, "docker down");
        Assert.Equal(0, m.Value("vasthost_docker_up"));
        Assert.Equal(3, m.Value("vasthost_gpus", ("state", "nvml")));
        Assert.Equal(3, m.Named("vasthost_gpu_utilization_ratio").Count());
        Assert.Empty(m.Named("vasthost_container_info"));
        Assert.Equal(0, (await Promtool.CheckMetricsAsync(m.Text)).ExitCode);
        var health = await (await agent.GetAsync("healthz")).Content.ReadAsStringAsync();
        Assert.Contains("docker: failing", health, StringComparison.Ordinal);
        Assert.Contains("gpu: ok", health, StringComparison.Ordinal);
    }
}
