using System.Text.RegularExpressions;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Metrics;

/// <summary>
/// <c>metrics.dcgmCompatible</c> against the real agent: dcgm-exporter's values (integers where DCGM has integers),
/// labels (<c>device="nvidia&lt;index&gt;"</c>, the host-name label's spelling), XIDs with <c>err_code</c>/<c>err_msg</c>,
/// ECC totals, and the GPM profiling fields only on GPUs that support GPM.
/// </summary>
public sealed partial class DcgmCompatibilityTests
{
    private const double MiB = 1024 * 1024;

    /// <summary>GPU 0 a Hopper with GPM, minor number 3; GPU 1 an Ada without GPM, minor 0; GPU 2 minor 1. Defaults give FB_FREE 23201.875 MiB.</summary>
    private static FakeNvmlState Rig(string dir, Dictionary<string, string>? more = null)
    {
        var values = new Dictionary<string, string>
        {
            ["gpus"] = "3",
            ["gpu.0.name"] = "NVIDIA H100 80GB HBM3",
            ["gpu.0.minor"] = "3",
            ["gpu.1.minor"] = "0",
            ["gpu.2.minor"] = "1",
            ["gpu.0.util_gpu"] = "56",
            ["gpu.0.util_mem"] = "29",
            ["gpu.0.enc_util"] = "7",
            ["gpu.0.energy_mj"] = "123456789",
            ["gpu.0.mem_temp"] = "83",
            ["gpu.0.fan_speeds"] = "57",
            ["gpu.0.ecc_mode"] = "1",
            ["gpu.0.ecc_vol_corr"] = "5",
            ["gpu.0.ecc_vol_uncorr"] = "2",
            ["gpu.0.ecc_agg_corr"] = "40",
            ["gpu.0.ecc_agg_uncorr"] = "3",
            ["gpu.0.gpm"] = "1",
            ["gpu.0.gpm_graphics_util"] = "62.5",
            ["gpu.0.gpm_tensor_util"] = "31",
            ["gpu.0.gpm_dram_util"] = "44",
            ["gpu.0.gpm_pcie_tx"] = "1500",
            ["gpu.0.gpm_pcie_rx"] = "250.5",
            ["gpu.0.gpm_nvlink_tx"] = "100",
            ["gpu.0.gpm_nvlink_rx"] = "200",
        };
        foreach (var (k, v) in more ?? [])
        {
            values[k] = v;
        }

        return new FakeNvmlState(dir, values);
    }

    private static Task<Exposition> ProfilingReadyAsync(AgentProcess agent) =>
        agent.ScrapeUntilAsync(e => e.Named("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE").Any(), "the second GPM sample");

    [Fact]
    public async Task Integer_fields_print_as_integers_and_match_exact_equality()
    {
        var dir = TestEnvironment.NewTempDirectory("dcgm-int");
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = Rig(dir).Path, DcgmCompatible = true });
        var m = await ProfilingReadyAsync(agent);

        // The exposition text itself: 0.56 × 100 would print 56.00000000000001, 23201.875 MiB would not be DCGM's.
        Assert.Equal("56", ValueText(m, "DCGM_FI_DEV_GPU_UTIL", "0"));
        Assert.Equal("29", ValueText(m, "DCGM_FI_DEV_MEM_COPY_UTIL", "0"));
        Assert.Equal("7", ValueText(m, "DCGM_FI_DEV_ENC_UTIL", "0"));
        Assert.Equal("23201", ValueText(m, "DCGM_FI_DEV_FB_FREE", "0"));    // 24328929280 B = 23201.875 MiB, floored
        Assert.Equal("1024", ValueText(m, "DCGM_FI_DEV_FB_USED", "0"));
        Assert.Equal("338", ValueText(m, "DCGM_FI_DEV_FB_RESERVED", "0")); // 354549760 B = 338.125 MiB
        Assert.Equal("2520", ValueText(m, "DCGM_FI_DEV_SM_CLOCK", "0"));
        Assert.Equal("10501", ValueText(m, "DCGM_FI_DEV_MEM_CLOCK", "0"));
        Assert.Equal("40", ValueText(m, "DCGM_FI_DEV_GPU_TEMP", "0"));
        Assert.Equal("83", ValueText(m, "DCGM_FI_DEV_MEMORY_TEMP", "0"));
        Assert.Equal("123456789", ValueText(m, "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "0"));
        Assert.Equal("57", ValueText(m, "DCGM_FI_DEV_FAN_SPEED", "0"));
        Assert.Equal("150", ValueText(m, "DCGM_FI_DEV_POWER_USAGE", "0"));

        // Every integer field of every GPU, whatever its value.
        string[] integers =
        [
            "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_DEC_UTIL", "DCGM_FI_DEV_FB_USED",
            "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_RESERVED", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_SM_CLOCK",
            "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_FAN_SPEED", "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
            "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL",
            "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_PCIE_RX_BYTES", "DCGM_FI_PROF_NVLINK_TX_BYTES",
            "DCGM_FI_PROF_NVLINK_RX_BYTES",
        ];
        var lines = m.Text.Split('\n').Where(l => integers.Any(n => l.StartsWith(n + "{", StringComparison.Ordinal))).ToList();
        Assert.True(lines.Count >= 50, $"{lines.Count} lines");
        Assert.All(lines, l => Assert.Matches(IntegerValue(), l));

        // ECC totals under DCGM's names, as counters.
        Assert.Equal("5", ValueText(m, "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "0"));
        Assert.Equal("2", ValueText(m, "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "0"));
        Assert.Equal("40", ValueText(m, "DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "0"));
        Assert.Equal("3", ValueText(m, "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "0"));
        Assert.All(new[] { "SBE_VOL", "DBE_VOL", "SBE_AGG", "DBE_AGG" }, k => Assert.Equal("counter", m.Types[$"DCGM_FI_DEV_ECC_{k}_TOTAL"]));
        Assert.Empty(m.Where("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", ("gpu", "1"))); // no ECC on that GPU: absent, not 0
    }

    [Fact]
    public async Task Device_is_nvidia_and_the_gpu_index_not_the_minor_number()
    {
        var dir = TestEnvironment.NewTempDirectory("dcgm-device");
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = Rig(dir).Path, DcgmCompatible = true });
        var m = await agent.WaitReadyAsync();

        foreach (var (gpu, minor) in new[] { ("0", "3"), ("1", "0"), ("2", "1") })
        {
            Assert.Equal(minor, Assert.Single(m.Where("vasthost_gpu_info", ("gpu", gpu))).Label("minor_number"));
            Assert.All(m.Samples.Where(s => s.Name.StartsWith("DCGM_FI_", StringComparison.Ordinal) && s.Label("gpu") == gpu),
                s => Assert.Equal("nvidia" + gpu, s.Label("device")));
        }

        Assert.Equal(3, m.Named("DCGM_FI_DEV_GPU_TEMP").Select(s => s.Label("device")).Distinct().Count());
    }

    [Fact]
    public async Task XID_errors_carry_err_code_and_err_msg_of_the_last_XID()
    {
        var dir = TestEnvironment.NewTempDirectory("dcgm-xid");
        var state = Rig(dir);
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, DcgmCompatible = true });
        var m = await agent.WaitReadyAsync();

        // Before any XID: 0 with "No Error", as dcgm-exporter prints it.
        var none = Assert.Single(m.Where("DCGM_FI_DEV_XID_ERRORS", ("gpu", "1")));
        Assert.Equal(0, none.Value);
        Assert.Equal("0", none.Label("err_code"));
        Assert.Equal("No Error", none.Label("err_msg"));

        foreach (var (xid, text) in new[] { (79, "GPU has fallen off the bus"), (13, "Graphics Engine Exception"), (48, "Double Bit ECC Error"), (201, "Unknown Error") })
        {
            state.InjectXid(1, xid);
            m = await agent.ScrapeUntilAsync(e => e.Where("DCGM_FI_DEV_XID_ERRORS", ("gpu", "1")).Any(s => s.Value == xid), $"XID {xid} on GPU 1");
            var last = Assert.Single(m.Where("DCGM_FI_DEV_XID_ERRORS", ("gpu", "1"))); // one series per GPU: the last XID
            Assert.Equal(xid.ToString(System.Globalization.CultureInfo.InvariantCulture), last.Label("err_code"));
            Assert.Equal(text, last.Label("err_msg"));
            Assert.Equal("nvidia1", last.Label("device"));
        }

        Assert.Equal("No Error", Assert.Single(m.Where("DCGM_FI_DEV_XID_ERRORS", ("gpu", "0"))).Label("err_msg"));
    }

    [Fact]
    public async Task Profiling_fields_only_on_GPUs_with_GPM_and_in_DCGM_units()
    {
        var dir = TestEnvironment.NewTempDirectory("dcgm-gpm");
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = Rig(dir).Path, DcgmCompatible = true });
        var m = await ProfilingReadyAsync(agent);

        Assert.Equal(0.625, m.Value("DCGM_FI_PROF_GR_ENGINE_ACTIVE", ("gpu", "0")));
        Assert.Equal(0.31, m.Value("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", ("gpu", "0")));
        Assert.Equal(0.44, m.Value("DCGM_FI_PROF_DRAM_ACTIVE", ("gpu", "0")));
        Assert.Equal(1500 * MiB, m.Value("DCGM_FI_PROF_PCIE_TX_BYTES", ("gpu", "0")));
        Assert.Equal(Math.Round(250.5 * MiB), m.Value("DCGM_FI_PROF_PCIE_RX_BYTES", ("gpu", "0")));
        Assert.Equal(100 * MiB, m.Value("DCGM_FI_PROF_NVLINK_TX_BYTES", ("gpu", "0")));
        Assert.Equal(200 * MiB, m.Value("DCGM_FI_PROF_NVLINK_RX_BYTES", ("gpu", "0")));

        // The same figures under the agent's own names (Prometheus units: ratios, bytes per second).
        Assert.Equal(0.625, m.Value("vasthost_gpu_graphics_engine_active_ratio", ("gpu", "0")));
        Assert.Equal(0.31, m.Value("vasthost_gpu_tensor_active_ratio", ("gpu", "0")));
        Assert.Equal(0.44, m.Value("vasthost_gpu_dram_active_ratio", ("gpu", "0")));
        Assert.Equal(1500 * MiB, m.Value("vasthost_gpu_pcie_transmit_bytes_per_second", ("gpu", "0")));
        Assert.Equal(250.5 * MiB, m.Value("vasthost_gpu_pcie_receive_bytes_per_second", ("gpu", "0")));
        Assert.Equal(100 * MiB, m.Value("vasthost_gpu_nvlink_transmit_bytes_per_second", ("gpu", "0")));
        Assert.Equal(200 * MiB, m.Value("vasthost_gpu_nvlink_receive_bytes_per_second", ("gpu", "0")));

        // GPUs 1 and 2 have no GPM: absent, never 0.
        foreach (var gpu in new[] { "1", "2" })
        {
            Assert.DoesNotContain(m.Samples, s => s.Name.StartsWith("DCGM_FI_PROF_", StringComparison.Ordinal) && s.Label("gpu") == gpu);
            Assert.Empty(m.Where("vasthost_gpu_tensor_active_ratio", ("gpu", gpu)));
            Assert.Single(m.Where("DCGM_FI_DEV_GPU_UTIL", ("gpu", gpu)));
        }

        // The agent's own series stay clean for promtool.
        var lint = await Promtool.CheckMetricsAsync(string.Join('\n', m.Text.Split('\n').Where(l => !l.Contains("DCGM_FI_", StringComparison.Ordinal))));
        Assert.True(lint.ExitCode == 0, lint.Output);
    }

    [Fact]
    public async Task Without_the_GPM_exports_an_old_driver_has_no_profiling_series()
    {
        var dir = TestEnvironment.NewTempDirectory("dcgm-legacy");
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = Rig(dir).Path, NvmlLibrary = TestEnvironment.FakeNvmlLegacy, DcgmCompatible = true });
        await agent.WaitReadyAsync();
        var m = await agent.ScrapeUntilAsync(e => e.Value("vasthost_collector_up", ("collector", "gpu")) == 1 && e.Named("DCGM_FI_DEV_GPU_UTIL").Count() == 3, "three GPUs");
        // Two more GPU samples (1 s apart): with GPM, a second sample would have given figures by now.
        var first = m.Value("vasthost_collector_last_success_timestamp_seconds", ("collector", "gpu"));
        m = await agent.ScrapeUntilAsync(e => e.Value("vasthost_collector_last_success_timestamp_seconds", ("collector", "gpu")) >= first + 2, "two more GPU samples");
        Assert.DoesNotContain(m.Samples, s => s.Name.StartsWith("DCGM_FI_PROF_", StringComparison.Ordinal));
        Assert.Empty(m.Named("vasthost_gpu_tensor_active_ratio"));
        Assert.Empty(m.Named("vasthost_nvml_errors_total"));
        Assert.Equal(56, m.Value("DCGM_FI_DEV_GPU_UTIL", ("gpu", "0")));
    }

    [Fact]
    public async Task The_host_name_label_is_spelt_as_configured()
    {
        var dir = TestEnvironment.NewTempDirectory("dcgm-hostname");
        var state = Rig(dir);
        await using (var released = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, DcgmCompatible = true }))
        {
            var m = await released.WaitReadyAsync();
            Assert.All(m.Samples.Where(s => s.Name.StartsWith("DCGM_FI_", StringComparison.Ordinal)), s =>
            {
                Assert.Equal("test-rig", s.Label("Hostname"));
                Assert.False(s.Labels.ContainsKey("hostname"));
            });
        }

        await using var head = AgentProcess.Start(new AgentConfig
        {
            FakeNvmlState = state.Path,
            DcgmCompatible = true,
            Environment = new() { ["VASTHOST_METRICS__DCGMHOSTNAMELABEL"] = "hostname" },
        });
        var n = await head.WaitReadyAsync();
        var samples = n.Samples.Where(s => s.Name.StartsWith("DCGM_FI_", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(samples);
        Assert.All(samples, s =>
        {
            Assert.Equal("test-rig", s.Label("hostname"));
            Assert.False(s.Labels.ContainsKey("Hostname"));
        });
    }

    /// <summary>The value of the family's sample for one GPU as the exposition prints it.</summary>
    private static string ValueText(Exposition m, string name, string gpu)
    {
        var line = Assert.Single(m.Text.Split('\n'), l => l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains($"gpu=\"{gpu}\"", StringComparison.Ordinal));
        return line[(line.LastIndexOf(' ') + 1)..];
    }

    [GeneratedRegex(@"\} -?\d+$")]
    private static partial Regex IntegerValue();
}
