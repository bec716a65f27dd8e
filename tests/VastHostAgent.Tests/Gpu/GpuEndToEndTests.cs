using System.Globalization;
using System.Net;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Gpu;

/// <summary>
/// The real agent process, the fake libnvidia-ml.so.1 loaded through the real P/Invoke path, and a
/// fixture hwmon tree: what a host sees on /metrics when GPUs behave, misbehave and disappear.
/// </summary>
public sealed class GpuEndToEndTests
{
    private const string Gpu0 = "GPU-11111111-2222-4333-8444-000000000000";
    private const string Gpu1 = "GPU-11111111-2222-4333-8444-000000000001";
    private const string Gpu2 = "GPU-11111111-2222-4333-8444-000000000002";

    private static FakeNvmlState ThreeGpus(string dir) => new(dir, new Dictionary<string, string>
    {
        ["gpus"] = "3",
        ["driver_version"] = "570.133.07",
        ["cuda_version"] = "12080",
        ["gpu.0.uuid"] = Gpu0,
        ["gpu.1.uuid"] = Gpu1,
        ["gpu.2.uuid"] = Gpu2,
        ["gpu.0.name"] = "NVIDIA H100 80GB HBM3",
        ["gpu.0.mem_total"] = "85520809984",
        ["gpu.0.mem_used"] = "42760404992",
        ["gpu.0.mem_reserved"] = "567279616",
        ["gpu.0.util_gpu"] = "97",
        ["gpu.0.util_mem"] = "61",
        ["gpu.0.temp"] = "71",
        ["gpu.0.mem_temp"] = "83",
        ["gpu.0.power_mw"] = "612345",
        ["gpu.0.power_limit_mw"] = "700000",
        ["gpu.0.energy_mj"] = "123456789",
        ["gpu.0.fan_speeds"] = "",
        ["gpu.0.clock_event_reasons"] = "0x44",
        ["gpu.0.pstate"] = "0",
        ["gpu.0.pcie_gen"] = "5",
        ["gpu.0.pcie_width"] = "8",
        ["gpu.0.pcie_gen_max"] = "5",
        ["gpu.0.pcie_width_max"] = "16",
        ["gpu.0.pcie_replay"] = "7",
        ["gpu.0.ecc_mode"] = "1",
        ["gpu.0.ecc_vol_uncorr"] = "2",
        ["gpu.0.ecc_agg_corr"] = "40",
        ["gpu.0.remap_corr"] = "3",
        ["gpu.0.remap_pending"] = "1",
        ["gpu.0.temp_mem_max"] = "95",
        ["gpu.1.fan_speeds"] = "45,55",
        ["gpu.1.unsupported"] = "nvmlDeviceGetPowerUsage,nvmlDeviceGetTemperature",
        ["gpu.2.pci_bus_id"] = "00000000:81:00.0",
    });

    [Fact]
    public async Task Scrape_reports_what_NVML_and_hwmon_report_and_passes_promtool_lint()
    {
        var dir = TestEnvironment.NewTempDirectory("e2e");
        var state = ThreeGpus(dir);
        var hwmon = new HwmonFixture(dir)
            .Chip(0, "coretemp", ("temp1", 52000, "Package id 0"), ("temp2", 48000, "Core 0"))
            .Chip(1, "nct6798", ("temp1", 38500, "SYSTIN"), ("fan1", 1180, null), ("fan2", 0, "CPU_FAN"));
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, SysfsRoot = hwmon.Root });
        var m = await agent.WaitReadyAsync();

        Assert.Equal(1, m.Value("vasthost_nvml_up"));
        Assert.Equal(3, m.Value("vasthost_gpus", ("state", "nvml")));
        var info = Assert.Single(m.Where("vasthost_gpu_info", ("uuid", Gpu0)));
        Assert.Equal("0", info.Label("gpu"));
        Assert.Equal("NVIDIA H100 80GB HBM3", info.Label("name"));
        Assert.Equal("570.133.07", info.Label("driver_version"));
        Assert.Equal("12.8", info.Label("cuda_version"));
        Assert.Equal("00000000:81:00.0", Assert.Single(m.Where("vasthost_gpu_info", ("uuid", Gpu2))).Label("pci_bus_id"));

        (string, string) g0 = ("uuid", Gpu0);
        Assert.Equal(0.97, m.Value("vasthost_gpu_utilization_ratio", g0));
        Assert.Equal(0.61, m.Value("vasthost_gpu_memory_controller_utilization_ratio", g0));
        Assert.Equal(85520809984, m.Value("vasthost_gpu_memory_total_bytes", g0));
        Assert.Equal(42760404992, m.Value("vasthost_gpu_memory_used_bytes", g0));
        Assert.Equal(567279616, m.Value("vasthost_gpu_memory_reserved_bytes", g0));
        Assert.Equal(85520809984 - 42760404992 - 567279616, m.Value("vasthost_gpu_memory_free_bytes", g0));
        Assert.Equal(71, m.Value("vasthost_gpu_temperature_celsius", g0));
        Assert.Equal(83, m.Value("vasthost_gpu_memory_temperature_celsius", g0));
        Assert.Equal(95, m.Value("vasthost_gpu_temperature_threshold_celsius", g0, ("threshold", "memory_max")));
        Assert.Equal(612.345, m.Value("vasthost_gpu_power_usage_watts", g0));
        Assert.Equal(700, m.Value("vasthost_gpu_power_limit_watts", g0));
        Assert.Equal(123456.789, m.Value("vasthost_gpu_energy_consumed_joules_total", g0));
        Assert.Equal(0, m.Value("vasthost_gpu_performance_state", g0));
        // 0x44 = SwPowerCap | HwThermalSlowdown
        Assert.Equal(1, m.Value("vasthost_gpu_clock_event_active", g0, ("reason", "sw_power_cap")));
        Assert.Equal(1, m.Value("vasthost_gpu_clock_event_active", g0, ("reason", "hw_thermal_slowdown")));
        Assert.Equal(0, m.Value("vasthost_gpu_clock_event_active", g0, ("reason", "gpu_idle")));
        Assert.Equal(9, m.Where("vasthost_gpu_clock_event_active", g0).Count());
        Assert.Equal(8, m.Value("vasthost_gpu_pcie_link_width", g0));
        Assert.Equal(16, m.Value("vasthost_gpu_pcie_link_width_max", g0));
        Assert.Equal(5, m.Value("vasthost_gpu_pcie_link_generation", g0));
        Assert.Equal(7, m.Value("vasthost_gpu_pcie_replay_errors_total", g0));
        Assert.Equal(1, m.Value("vasthost_gpu_ecc_enabled", g0));
        Assert.Equal(2, m.Value("vasthost_gpu_ecc_errors_volatile_total", g0, ("error_type", "uncorrected")));
        Assert.Equal(40, m.Value("vasthost_gpu_ecc_errors_aggregate_total", g0, ("error_type", "corrected")));
        Assert.Equal(3, m.Value("vasthost_gpu_remapped_rows", g0, ("error_type", "correctable")));
        Assert.Equal(1, m.Value("vasthost_gpu_row_remap_pending", g0));
        Assert.Equal(0, m.Value("vasthost_gpu_row_remap_failed", g0));
        Assert.Equal(2520e6, m.Value("vasthost_gpu_clock_hz", g0, ("clock", "sm")));
        Assert.Equal(3120e6, m.Value("vasthost_gpu_clock_max_hz", g0, ("clock", "graphics")));

        // GPU 0 has no fans; GPU 1 has two.
        Assert.Empty(m.Where("vasthost_gpu_fan_speed_ratio", g0));
        Assert.Equal(0.45, m.Value("vasthost_gpu_fan_speed_ratio", ("uuid", Gpu1), ("fan", "0")));
        Assert.Equal(0.55, m.Value("vasthost_gpu_fan_speed_ratio", ("uuid", Gpu1), ("fan", "1")));

        // Consumer GPUs: no ECC, no memory temperature, no remapping — absent, not 0.
        Assert.Empty(m.Where("vasthost_gpu_ecc_errors_volatile_total", ("uuid", Gpu1)));
        Assert.Empty(m.Where("vasthost_gpu_memory_temperature_celsius", ("uuid", Gpu1)));
        Assert.Empty(m.Where("vasthost_gpu_remapped_rows", ("uuid", Gpu2)));

        // Board sensors, with driver labels and bounded chip names.
        Assert.Equal(52, m.Value("vasthost_hwmon_temperature_celsius", ("chip", "coretemp"), ("sensor", "Package id 0")));
        Assert.Equal(38.5, m.Value("vasthost_hwmon_temperature_celsius", ("chip", "nct6798"), ("sensor", "SYSTIN")));
        Assert.Equal(1180, m.Value("vasthost_hwmon_fan_rpm", ("chip", "nct6798"), ("sensor", "fan1")));
        Assert.Equal(0, m.Value("vasthost_hwmon_fan_rpm", ("chip", "nct6798"), ("sensor", "CPU_FAN")));

        Assert.True(m.Value("vasthost_disk_total_bytes") > 0);
        Assert.True(m.Value("vasthost_disk_available_bytes") <= m.Value("vasthost_disk_total_bytes"));
        Assert.Equal(1, m.Value("vasthost_collector_up", ("collector", "gpu")));
        Assert.Equal(1, Assert.Single(m.Named("vasthost_build_info")).Value);

        var lint = await Promtool.CheckMetricsAsync(m.Text);
        Assert.True(lint.ExitCode == 0, $"promtool check metrics found problems:\n{lint.Output}");
        Assert.Equal("", lint.Output.Trim());
    }

    [Fact]
    public async Task Readings_NVML_does_not_support_are_absent_for_that_GPU_only()
    {
        var dir = TestEnvironment.NewTempDirectory("unsup");
        var state = ThreeGpus(dir);
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path });
        var m = await agent.WaitReadyAsync();

        Assert.Empty(m.Where("vasthost_gpu_power_usage_watts", ("uuid", Gpu1)));
        Assert.Empty(m.Where("vasthost_gpu_temperature_celsius", ("uuid", Gpu1)));
        Assert.NotNull(m.Value("vasthost_gpu_power_usage_watts", ("uuid", Gpu2)));
        Assert.NotNull(m.Value("vasthost_gpu_temperature_celsius", ("uuid", Gpu2)));
        Assert.Equal(1, m.Value("vasthost_gpu_up", ("uuid", Gpu1)));
        // NOT_SUPPORTED is not an error.
        Assert.DoesNotContain(m.Named("vasthost_nvml_errors_total"), s => s.Label("code") == "NOT_SUPPORTED");
    }

    [Fact]
    public async Task A_GPU_lost_mid_run_goes_down_while_the_others_keep_reporting_and_comes_back_after_recovery()
    {
        var dir = TestEnvironment.NewTempDirectory("lost");
        var state = ThreeGpus(dir);
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path });
        await agent.WaitReadyAsync();

        state.Set("gpu.1.lost", "1").Set("gpu.0.temp", "74");
        var m = await agent.ScrapeUntilAsync(
            e => e.Value("vasthost_gpu_up", ("uuid", Gpu1)) == 0 && e.Value("vasthost_gpu_temperature_celsius", ("uuid", Gpu0)) == 74,
            "GPU 1 down and GPU 0 updated");

        Assert.Empty(m.Where("vasthost_gpu_utilization_ratio", ("uuid", Gpu1)));
        Assert.Single(m.Where("vasthost_gpu_info", ("uuid", Gpu1)));
        Assert.Equal(1, m.Value("vasthost_gpu_up", ("uuid", Gpu0)));
        Assert.Equal(1, m.Value("vasthost_gpu_up", ("uuid", Gpu2)));
        Assert.Equal(2, m.Value("vasthost_gpus", ("state", "nvml")));
        Assert.Equal(1, m.Value("vasthost_nvml_up"));
        Assert.Contains(m.Named("vasthost_nvml_errors_total"), s => s.Label("code") == "GPU_IS_LOST" && s.Value > 0);

        state.Remove("gpu.1.lost");
        await agent.ScrapeUntilAsync(e => e.Value("vasthost_gpu_up", ("uuid", Gpu1)) == 1 && e.Value("vasthost_gpu_utilization_ratio", ("uuid", Gpu1)) is not null,
            "GPU 1 back");
        Assert.Contains("is down: GPU_IS_LOST", agent.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_GPU_already_down_when_the_agent_starts_reports_down_by_index_without_a_reinit_loop_and_comes_back()
    {
        var dir = TestEnvironment.NewTempDirectory("reset");
        var state = ThreeGpus(dir);
        state.Set("gpu.2.reset_required", "1");
        var stats = Path.Combine(dir, "stats");
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, Environment = { ["FAKE_NVML_STATS"] = stats } });
        var m = await agent.ScrapeUntilAsync(e => e.Value("vasthost_gpu_up", ("uuid", Gpu0)) == 1, "GPU 0 up");
        // NVML lists GPU 2 but cannot open it: it is down (alerts fire) under its index, the others report.
        var down = Assert.Single(m.Where("vasthost_gpu_up", ("gpu", "2")));
        Assert.Equal(0, down.Value);
        Assert.Equal("", down.Label("uuid"));
        Assert.Equal(2, m.Value("vasthost_gpus", ("state", "nvml")));
        Assert.Contains(m.Named("vasthost_nvml_errors_total"), s => s.Label("code") == "RESET_REQUIRED");
        Assert.Contains("GPU 2 cannot be opened: RESET_REQUIRED", agent.StandardOutput, StringComparison.Ordinal);

        // The count NVML reports matches (3 = 2 open + 1 unopened): no re-initialisation at every sample.
        var samples = m.Value("vasthost_collector_last_success_timestamp_seconds", ("collector", "gpu"));
        await agent.ScrapeUntilAsync(e => e.Value("vasthost_collector_last_success_timestamp_seconds", ("collector", "gpu")) >= samples + 3, "three more samples");
        Assert.Equal(1, ReadStat(stats, "init_calls"));

        // After the reset it is opened again (one re-initialisation) and reports under its UUID.
        state.Remove("gpu.2.reset_required");
        m = await agent.ScrapeUntilAsync(e => e.Value("vasthost_gpu_up", ("uuid", Gpu2)) == 1, "GPU 2 back");
        Assert.Empty(m.Where("vasthost_gpu_up", ("uuid", "")));
        Assert.Equal(3, m.Value("vasthost_gpus", ("state", "nvml")));
        Assert.Equal(2, ReadStat(stats, "init_calls"));
    }

    [Fact]
    public async Task XID_events_are_counted_per_GPU_and_code_with_a_timestamp()
    {
        var dir = TestEnvironment.NewTempDirectory("xid");
        var state = ThreeGpus(dir);
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path });
        await agent.WaitReadyAsync();
        var before = DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 1;

        state.InjectXid(2, 79).InjectXid(2, 79).InjectXid(0, 48);
        var m = await agent.ScrapeUntilAsync(
            e => e.Value("vasthost_gpu_xid_errors_total", ("uuid", Gpu2), ("xid", "79")) == 2
                && e.Value("vasthost_gpu_xid_errors_total", ("uuid", Gpu0), ("xid", "48")) == 1,
            "XID counters");

        Assert.Equal("2", Assert.Single(m.Where("vasthost_gpu_xid_errors_total", ("xid", "79"))).Label("gpu"));
        Assert.True(m.Value("vasthost_gpu_xid_last_timestamp_seconds", ("uuid", Gpu2), ("xid", "79")) >= before);
        Assert.Empty(m.Where("vasthost_gpu_xid_errors_total", ("uuid", Gpu1)));
        Assert.Contains("XID 79 on GPU 2", agent.StandardOutput, StringComparison.Ordinal);
        Assert.Contains("fallen off the bus", agent.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NVML_asking_for_reinitialisation_is_obeyed_and_readings_resume()
    {
        var dir = TestEnvironment.NewTempDirectory("reinit");
        var state = ThreeGpus(dir);
        var stats = Path.Combine(dir, "stats");
        await using var agent = AgentProcess.Start(new AgentConfig
        {
            FakeNvmlState = state.Path,
            Environment = { ["FAKE_NVML_STATS"] = stats },
        });
        await agent.WaitReadyAsync();
        Assert.Equal(1, ReadStat(stats, "init_calls"));

        state.Set("error.nvmlDeviceGetUtilizationRates", "18"); // LIB_RM_VERSION_MISMATCH: driver upgraded underneath
        await Poll.UntilAsync(() => ReadStat(stats, "init_calls") >= 2, TimeSpan.FromSeconds(30), "re-initialisation");
        state.Remove("error.nvmlDeviceGetUtilizationRates").Set("gpu.0.util_gpu", "12");

        var m = await agent.ScrapeUntilAsync(e => e.Value("vasthost_gpu_utilization_ratio", ("uuid", Gpu0)) == 0.12, "readings after re-init");
        Assert.True(m.Value("vasthost_nvml_errors_total", ("function", "nvmlDeviceGetUtilizationRates"), ("code", "LIB_RM_VERSION_MISMATCH")) >= 1);
        Assert.Equal(3, m.Value("vasthost_gpus", ("state", "nvml")));
    }

    [Fact]
    public async Task A_scrape_never_calls_NVML_it_serves_the_last_snapshot()
    {
        var dir = TestEnvironment.NewTempDirectory("nocall");
        var state = ThreeGpus(dir);
        var stats = Path.Combine(dir, "stats");
        await using var agent = AgentProcess.Start(new AgentConfig
        {
            FakeNvmlState = state.Path,
            SampleInterval = "00:05:00", // one sample at start, the next in five minutes
            Environment = { ["FAKE_NVML_STATS"] = stats },
        });
        var first = await agent.WaitReadyAsync();
        var callsAfterFirstSample = ReadStat(stats, "calls");
        Assert.True(callsAfterFirstSample > 0);

        for (var i = 0; i < 25; i++)
        {
            var m = await agent.ScrapeAsync();
            Assert.Equal(first.Value("vasthost_gpu_temperature_celsius", ("uuid", Gpu0)), m.Value("vasthost_gpu_temperature_celsius", ("uuid", Gpu0)));
        }

        Assert.Equal(callsAfterFirstSample, ReadStat(stats, "calls"));
    }

    [Fact]
    public async Task Without_NVML_the_agent_runs_reports_nvml_up_0_logs_once_and_everything_else_works()
    {
        var dir = TestEnvironment.NewTempDirectory("nonvml");
        var hwmon = new HwmonFixture(dir).Chip(0, "k10temp", ("temp1", 61000, "Tctl"));
        await using var agent = AgentProcess.Start(new AgentConfig
        {
            NvmlLibrary = Path.Combine(dir, "no-such-dir", "libnvidia-ml.so.1"),
            SysfsRoot = hwmon.Root,
        });

        var m = await agent.ScrapeUntilAsync(e => e.Value("vasthost_collector_up", ("collector", "gpu")) == 0
            && e.Value("vasthost_hwmon_temperature_celsius", ("chip", "k10temp"), ("sensor", "Tctl")) == 61, "first samples");
        Assert.Equal(0, m.Value("vasthost_nvml_up"));
        Assert.Equal(0, m.Value("vasthost_gpus", ("state", "nvml")));
        Assert.Empty(m.Named("vasthost_gpu_info"));
        Assert.Equal(1, m.Value("vasthost_collector_up", ("collector", "disk")));

        var health = await agent.GetAsync("healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
        var text = await health.Content.ReadAsStringAsync();
        Assert.Contains("gpu: failing", text, StringComparison.Ordinal);
        Assert.Contains("hwmon: ok", text, StringComparison.Ordinal);

        // A few more cycles: still exactly one log line about the missing library.
        await Poll.UntilAsync(async () => (await agent.ScrapeAsync()).Value("vasthost_collector_last_success_timestamp_seconds", ("collector", "hwmon")),
            v => v > m.Value("vasthost_collector_last_success_timestamp_seconds", ("collector", "hwmon")) + 2, TimeSpan.FromSeconds(20), "more cycles");
        var lines = agent.StandardOutput.Split('\n').Where(l => l.Contains("NVML", StringComparison.Ordinal)).ToList();
        Assert.Single(lines);
        Assert.Contains("NVML unavailable", lines[0], StringComparison.Ordinal);
        Assert.False(agent.HasExited);
    }

    [Fact]
    public async Task NVML_init_failure_is_reported_and_retried_without_crashing()
    {
        var dir = TestEnvironment.NewTempDirectory("initfail");
        var state = ThreeGpus(dir);
        state.Set("init", "9"); // DRIVER_NOT_LOADED
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path });
        var m = await agent.ScrapeUntilAsync(e => e.Value("vasthost_collector_up", ("collector", "gpu")) == 0, "failed init");
        Assert.Equal(0, m.Value("vasthost_nvml_up"));
        Assert.True(m.Value("vasthost_nvml_errors_total", ("function", "nvmlInit_v2"), ("code", "DRIVER_NOT_LOADED")) >= 1);
        Assert.Contains("nvmlInit failed with DRIVER_NOT_LOADED", agent.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_older_driver_without_versioned_exports_is_read_through_the_fallbacks()
    {
        var dir = TestEnvironment.NewTempDirectory("legacy");
        var state = ThreeGpus(dir);
        state.Set("gpu.0.processes", "4242:1048576");
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, NvmlLibrary = TestEnvironment.FakeNvmlLegacy });
        var m = await agent.WaitReadyAsync();

        // v1 memory: no reserved figure, used includes reserved.
        Assert.Empty(m.Where("vasthost_gpu_memory_reserved_bytes", ("uuid", Gpu0)));
        Assert.Equal(42760404992.0 + 567279616, m.Value("vasthost_gpu_memory_used_bytes", ("uuid", Gpu0)));
        // Throttle reasons through nvmlDeviceGetCurrentClocksThrottleReasons.
        Assert.Equal(1, m.Value("vasthost_gpu_clock_event_active", ("uuid", Gpu0), ("reason", "sw_power_cap")));
        // A single fan through nvmlDeviceGetFanSpeed.
        Assert.Equal(0.45, m.Value("vasthost_gpu_fan_speed_ratio", ("uuid", Gpu1), ("fan", "0")));
        Assert.Empty(m.Where("vasthost_gpu_fan_speed_ratio", ("uuid", Gpu1), ("fan", "1")));
        Assert.Equal("12.8", Assert.Single(m.Where("vasthost_gpu_info", ("uuid", Gpu0))).Label("cuda_version"));
        Assert.Empty(m.Named("vasthost_nvml_errors_total"));
        var lint = await Promtool.CheckMetricsAsync(m.Text);
        Assert.Equal(0, lint.ExitCode);
    }

    [Fact]
    public async Task DCGM_compatible_names_carry_dcgm_units_and_labels()
    {
        var dir = TestEnvironment.NewTempDirectory("dcgm");
        var state = ThreeGpus(dir);
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, DcgmCompatible = true });
        var m = await agent.WaitReadyAsync();

        var util = Assert.Single(m.Where("DCGM_FI_DEV_GPU_UTIL", ("UUID", Gpu0)));
        Assert.Equal(97, util.Value);
        Assert.Equal("0", util.Label("gpu"));
        Assert.Equal("NVIDIA H100 80GB HBM3", util.Label("modelName"));
        Assert.Equal("test-rig", util.Label("Hostname"));
        Assert.Equal("nvidia0", util.Label("device"));
        Assert.Equal(Math.Floor(42760404992 / 1048576.0), m.Value("DCGM_FI_DEV_FB_USED", ("UUID", Gpu0))); // whole MiB, as DCGM
        Assert.Equal(71, m.Value("DCGM_FI_DEV_GPU_TEMP", ("UUID", Gpu0)));
        Assert.Equal(612.345, m.Value("DCGM_FI_DEV_POWER_USAGE", ("UUID", Gpu0)));
        Assert.Equal(123456789, m.Value("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", ("UUID", Gpu0)));
        Assert.Equal(2520, m.Value("DCGM_FI_DEV_SM_CLOCK", ("UUID", Gpu0)));
        // Our own names are still there.
        Assert.Equal(0.97, m.Value("vasthost_gpu_utilization_ratio", ("uuid", Gpu0)));

        // promtool flags only what dcgm-exporter's naming does on purpose: camelCase labels and counters without _total.
        var lint = await Promtool.CheckMetricsAsync(m.Text);
        var findings = lint.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(findings);
        Assert.All(findings, f => Assert.True(
            f.StartsWith("DCGM_FI_", StringComparison.Ordinal)
            && (f.Contains("camelCase", StringComparison.Ordinal) || f.Contains("_total", StringComparison.Ordinal) || f.Contains("include type", StringComparison.Ordinal)),
            f));
    }

    [Fact]
    public async Task Concurrent_scrapes_all_succeed_with_whole_snapshots()
    {
        var dir = TestEnvironment.NewTempDirectory("conc");
        var state = ThreeGpus(dir);
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, SampleInterval = "00:00:01" });
        await agent.WaitReadyAsync();

        var scrapes = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => agent.ScrapeAsync()));
        Assert.All(scrapes, m =>
        {
            Assert.Equal(3, m.Named("vasthost_gpu_info").Count());
            Assert.Equal(3, m.Named("vasthost_gpu_up").Count());
            Assert.Equal(1, m.Value("vasthost_nvml_up"));
        });
    }

    [Fact]
    public async Task Healthz_is_200_when_every_collector_succeeded_recently()
    {
        var dir = TestEnvironment.NewTempDirectory("health");
        var state = ThreeGpus(dir);
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path });
        await agent.WaitReadyAsync();
        var response = await Poll.UntilAsync(() => agent.GetAsync("healthz"), r => r.StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(20), "healthy");
        var text = await response.Content.ReadAsStringAsync();
        Assert.StartsWith("ok\n", text, StringComparison.Ordinal);
        Assert.Contains("gpu: ok", text, StringComparison.Ordinal);
        Assert.Contains("disk: ok", text, StringComparison.Ordinal);

        var landing = await agent.GetStringAsync("");
        Assert.Contains("/metrics", landing, StringComparison.Ordinal);
        Assert.Equal(0, await agent.StopAsync());
    }

    private static long ReadStat(string path, string key)
    {
        if (!File.Exists(path))
        {
            return 0;
        }

        foreach (var line in File.ReadAllLines(path))
        {
            if (line.StartsWith(key + "=", StringComparison.Ordinal))
            {
                return long.Parse(line[(key.Length + 1)..], CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }
}
