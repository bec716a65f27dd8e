using System.Text.RegularExpressions;
using VastHostAgent.Metrics;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Metrics;

/// <summary>docs/metrics.md must list every metric family the real agent exports.</summary>
public sealed partial class MetricsDocumentationTests
{
    private static readonly string Document = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "docs", "metrics.md"));

    private static HashSet<string> Documented() =>
        [.. DocumentedName().Matches(Document).Select(m => m.Groups[1].Value)];

    [Fact]
    public async Task Every_family_in_a_real_scrape_is_documented_with_its_type()
    {
        var dir = TestEnvironment.NewTempDirectory("docs");
        var state = new FakeNvmlState(dir, new Dictionary<string, string>
        {
            ["gpus"] = "2",
            ["gpu.0.ecc_mode"] = "1",
            ["gpu.0.remap_corr"] = "1",
            ["gpu.0.mem_temp"] = "80",
            ["gpu.0.temp_mem_max"] = "95",
            ["gpu.0.gpm"] = "1",              // the GPM series (profiling figures) too
            ["gpu.0.gpm_nvlink_tx"] = "10",
            ["gpu.0.gpm_nvlink_rx"] = "20",
            ["gpu.1.lost"] = "0",
            ["error.nvmlDeviceGetPcieReplayCounter"] = "999",
        });
        var hwmon = new HwmonFixture(dir).Chip(0, "nct6798", ("temp1", 30000, null), ("fan1", 900, null));
        await using var agent = AgentProcess.Start(new AgentConfig { FakeNvmlState = state.Path, SysfsRoot = hwmon.Root, DcgmCompatible = true });
        await agent.WaitReadyAsync();
        state.InjectXid(0, 43);
        await agent.ScrapeUntilAsync(e => e.Value("vasthost_kernel_log_up") == 1, "the kernel log open");
        File.AppendAllText(Path.Combine(agent.WorkDirectory, "kmsg"), "4,1,1,-;NVRM: Xid (PCI:0000:01:00): 79, pid=1, name=python, GPU has fallen off the bus.\n");
        var m = await agent.ScrapeUntilAsync(e => e.Named("vasthost_gpu_xid_errors_total").Any() && e.Named("vasthost_gpu_kernel_xid_errors_total").Any() && e.Named("DCGM_FI_PROF_NVLINK_RX_BYTES").Any(), "an XID from NVML and one from the kernel log, and GPM figures");

        // Every dcgm-compatible family is in this scrape (but the replay counter, whose NVML call fails here), so its type is checked too.
        Assert.All(DcgmCompatibleSeries.Names.Where(n => n != "DCGM_FI_DEV_PCIE_REPLAY_COUNTER"), name => Assert.True(m.Samples.Any(s => s.Name == name), name + " is not in the scrape"));
        AssertDocumented(m);
    }

    /// <summary>Every family of <paramref name="m"/> has a row in docs/metrics.md with its type.</summary>
    internal static void AssertDocumented(Exposition m)
    {
        var documented = Documented();
        var missing = m.Types.Keys.Where(family => !documented.Contains(family)).ToList();
        Assert.True(missing.Count == 0, "Not in docs/metrics.md: " + string.Join(", ", missing));

        foreach (var (family, type) in m.Types)
        {
            var row = Document.Split('\n').First(l => l.StartsWith($"| `{family}` |", StringComparison.Ordinal));
            Assert.True(row.Contains($"| {type} |", StringComparison.Ordinal), $"docs/metrics.md gives {family} another type than {type}");
        }
    }

    [Fact]
    public void Every_dcgm_compatible_name_is_documented()
    {
        var documented = Documented();
        Assert.All(DcgmCompatibleSeries.Names, name => Assert.Contains(name, documented));
    }

    [GeneratedRegex(@"^\| `([A-Za-z_:][A-Za-z0-9_:]*)` \|", RegexOptions.Multiline)]
    private static partial Regex DocumentedName();
}
