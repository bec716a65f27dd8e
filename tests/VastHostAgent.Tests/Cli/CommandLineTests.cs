using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Cli;

/// <summary>The commands a host types: --version, --help, metrics, doctor; and a busy port.</summary>
public sealed class CommandLineTests
{
    [Fact]
    public async Task Version_prints_the_version()
    {
        var (exit, stdout, _) = await AgentProcess.RunToExitAsync(["--version"]);
        Assert.Equal(0, exit);
        Assert.Matches(@"^\d+\.\d+\.\d+", stdout.Trim());
    }

    [Fact]
    public async Task Help_lists_the_commands_and_examples()
    {
        var (exit, stdout, _) = await AgentProcess.RunToExitAsync(["--help"]);
        Assert.Equal(0, exit);
        foreach (var expected in new[] { "run", "metrics", "doctor", "--config", "Examples:", "vast-host-agent metrics", "Exit codes" })
        {
            Assert.Contains(expected, stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Help_on_a_command_with_required_options_shows_them_and_exits_0()
    {
        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(["maint", "schedule", "--help"]);
        Assert.True(exit == 0, $"exit {exit}\nstdout: {stdout}\nstderr: {stderr}");
        Assert.Contains("--at <TIME>", stdout, StringComparison.Ordinal);
        Assert.Contains("--duration <SPAN>", stdout, StringComparison.Ordinal);
        Assert.Equal("", stderr);

        // Without --help the missing options are still an error.
        var missing = await AgentProcess.RunToExitAsync(["maint", "schedule", "--at", "2030-01-01T00:00Z"]);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("Option '--duration' is required.", missing.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_samples_once_and_prints_a_lint_clean_exposition()
    {
        var dir = TestEnvironment.NewTempDirectory("cli-metrics");
        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(
            ["metrics"],
            new Dictionary<string, string?>
            {
                ["VASTHOST_GPU__NVMLLIBRARY"] = TestEnvironment.FakeNvml,
                ["VASTHOST_HOST__SYSFSROOT"] = dir,
                ["VASTHOST_DOCKER__ENABLED"] = "false",
                ["FAKE_NVML_GPUS"] = "4",
            });
        Assert.True(exit == 0, stderr);
        var m = Exposition.Parse(stdout);
        Assert.Equal(4, m.Value("vasthost_gpus", ("state", "nvml")));
        Assert.Equal(4, m.Named("vasthost_gpu_temperature_celsius").Count());
        Assert.Equal(0, (await Promtool.CheckMetricsAsync(stdout)).ExitCode);
    }

    [Fact]
    public async Task Doctor_reports_each_check_and_passes_with_working_NVML()
    {
        var dir = TestEnvironment.NewTempDirectory("doctor");
        var hwmon = new HwmonFixture(dir).Chip(0, "coretemp", ("temp1", 45000, "Package id 0"));
        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(
            ["doctor"],
            new Dictionary<string, string?>
            {
                ["VASTHOST_GPU__NVMLLIBRARY"] = TestEnvironment.FakeNvml,
                ["VASTHOST_HOST__SYSFSROOT"] = hwmon.Root,
                ["VASTHOST_HOST__DOCKERDATAROOT"] = dir,
                ["VASTHOST_METRICS__LISTENADDRESS"] = $"127.0.0.1:{AgentProcess.FreePort()}",
                ["VASTHOST_DOCKER__ENABLED"] = "false",
                ["FAKE_NVML_GPUS"] = "2",
            });
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("[ OK ] configuration", stdout, StringComparison.Ordinal);
        Assert.Contains("[ OK ] nvml           2 GPU(s), driver 550.54.15, CUDA 12.4", stdout, StringComparison.Ordinal);
        Assert.Contains("[ OK ] hwmon          1 temperature and 0 fan sensor(s) on 1 chip(s)", stdout, StringComparison.Ordinal);
        Assert.Contains("[ OK ] disk", stdout, StringComparison.Ordinal);
        Assert.Contains("[ OK ] metrics", stdout, StringComparison.Ordinal);
        Assert.Contains("0 failed", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Doctor_fails_with_a_hint_when_NVML_is_missing()
    {
        var dir = TestEnvironment.NewTempDirectory("doctor-fail");
        var (exit, stdout, _) = await AgentProcess.RunToExitAsync(
            ["doctor"],
            new Dictionary<string, string?>
            {
                ["VASTHOST_GPU__NVMLLIBRARY"] = "/nonexistent/libnvidia-ml.so.1",
                ["VASTHOST_DOCKER__ENDPOINT"] = "unix:///nonexistent/docker.sock",
                ["VASTHOST_HOST__SYSFSROOT"] = dir,
                ["VASTHOST_METRICS__LISTENADDRESS"] = $"127.0.0.1:{AgentProcess.FreePort()}",
            });
        Assert.Equal(1, exit);
        Assert.Contains("[FAIL] nvml", stdout, StringComparison.Ordinal);
        Assert.Contains("hint: install the NVIDIA driver", stdout, StringComparison.Ordinal);
        Assert.Contains("[WARN] hwmon", stdout, StringComparison.Ordinal);
        Assert.Contains("[FAIL] docker         cannot connect to unix:///nonexistent/docker.sock", stdout, StringComparison.Ordinal);
        Assert.Contains("hint: is dockerd running?", stdout, StringComparison.Ordinal);
        Assert.Contains("2 failed", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SIGTERM_stops_the_daemon_cleanly_with_exit_0()
    {
        var dir = TestEnvironment.NewTempDirectory("sigterm");
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = new FakeNvmlState(dir).Path, WorkDirectory = dir });
        await agent.WaitReadyAsync();
        Assert.Equal(0, await agent.StopAsync());
        Assert.Contains("vast-host-agent stopped", agent.StandardOutput, StringComparison.Ordinal);
    }
}
