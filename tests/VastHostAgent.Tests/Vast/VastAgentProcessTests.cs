using System.Globalization;
using VastEmulator;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Vast;

/// <summary>The real agent process against the emulator: machine and account metrics, fault storms, the key.</summary>
public sealed class VastAgentProcessTests : IAsyncLifetime
{
    private RunningEmulator _emulator = null!;

    public async Task InitializeAsync() =>
        _emulator = await EmulatorApp.StartAsync(new EmulatorOptions { RateLimitScale = 0.02, OfferCount = 200, SeedRentals = true, MachineHostnames = ["rig-01", "rig-02"] });

    public async Task DisposeAsync() => await _emulator.DisposeAsync();

    private AgentConfig Config(string dir, string hostname = "rig-01", string pollInterval = "00:00:10")
    {
        var keyFile = Path.Combine(dir, "vast.key");
        File.WriteAllText(keyFile, _emulator.ApiKey);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var state = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "8" });
        return new AgentConfig
        {
            FakeNvmlState = state.Path,
            Environment =
            {
                ["VASTHOST_VAST__ENABLED"] = "true",
                ["VASTHOST_VAST__BASEURL"] = _emulator.BaseUrl.GetLeftPart(UriPartial.Authority),
                ["VASTHOST_VAST__APIKEYFILE"] = keyFile,
                ["VASTHOST_VAST__HOSTNAME"] = hostname,
                ["VASTHOST_VAST__POLLINTERVAL"] = pollInterval,
                ["VASTHOST_VAST__SPACINGSCALE"] = "0.02",
                ["VASTHOST_VAST__DEFAULTSPACINGSECONDS"] = "1",
                ["VASTHOST_VAST__REQUESTTIMEOUT"] = "00:00:02",
                ["VASTHOST_VAST__CIRCUITBREAKDURATION"] = "00:00:05",
                ["VASTHOST_MANAGEMENT__ENABLED"] = "true",
                ["VASTHOST_MANAGEMENT__DRYRUN"] = "true",
                ["VASTHOST_MANAGEMENT__RECONCILEINTERVAL"] = "00:01:00",
                ["VASTHOST_MANAGEMENT__PRICING__STRATEGY"] = "market",
            },
        };
    }

    [Fact]
    public async Task The_agent_finds_its_machine_by_host_name_and_exports_the_listing_occupancy_rentals_and_account()
    {
        var dir = TestEnvironment.NewTempDirectory("vast-agent");
        await using var agent = AgentProcess.Start(Config(dir));
        var m = await agent.ScrapeUntilAsync(e => e.Value("vasthost_vast_up") == 1 && e.Named("vasthost_vast_earnings_dollars").Any()
            && e.Named("vasthost_management_decisions_total").Any() && e.Named("vasthost_vast_requests_total").Any(), "Vast metrics");
        Assert.Equal(1, m.Value("vasthost_management_dry_run"));
        Assert.NotNull(m.Value("vasthost_management_market_peers"));
        Assert.Contains("DRY RUN: management decides and journals every change but makes none on Vast", agent.StandardOutput, StringComparison.Ordinal);

        var id = _emulator.State.OwnMachineIds[0].ToString(CultureInfo.InvariantCulture);
        Assert.Equal(1, m.Value("vasthost_vast_machine_identified"));
        var info = Assert.Single(m.Named("vasthost_vast_machine_info"));
        Assert.Equal((id, "rig-01", "RTX 4090", "verified"), (info.Label("machine_id"), info.Label("hostname"), info.Label("gpu_name"), info.Label("verification")));
        Assert.Equal(1, m.Value("vasthost_vast_machine_listed"));
        Assert.Equal(1, m.Value("vasthost_vast_machine_online"));
        Assert.Equal(8, m.Value("vasthost_vast_machine_gpus"));
        // SeedRentals: a 2-GPU on-demand and a 1-GPU interruptible contract.
        Assert.Equal(2, m.Value("vasthost_vast_machine_gpu_occupancy", ("state", "on_demand")));
        Assert.Equal(1, m.Value("vasthost_vast_machine_gpu_occupancy", ("state", "interruptible")));
        Assert.Equal(5, m.Value("vasthost_vast_machine_gpu_occupancy", ("state", "free")));
        Assert.Equal(1, m.Value("vasthost_vast_machine_rentals", ("type", "on_demand"), ("status", "running")));
        Assert.Equal(1, m.Value("vasthost_vast_machine_rentals", ("type", "interruptible"), ("status", "running")));
        Assert.True(m.Value("vasthost_vast_machine_client_end_timestamp_seconds") > _emulator.State.Now);
        Assert.Equal(0.337, m.Value("vasthost_vast_listing_gpu_price_dollars_per_hour"));
        Assert.NotNull(m.Value("vasthost_vast_account_balance_dollars"));
        Assert.NotNull(m.Value("vasthost_vast_earnings_dollars", ("days_ago", "1"), ("kind", "gpu")));
        Assert.Equal(1, m.Value("vasthost_collector_up", ("collector", "vast")));
        var lint = await Promtool.CheckMetricsAsync(m.Text);
        Assert.True(lint.ExitCode == 0, lint.Output);
        Metrics.MetricsDocumentationTests.AssertDocumented(m);

        // A change on Vast (a new rental) shows at the next poll.
        _emulator.State.StartRental(_emulator.State.OwnMachineIds[0], new RentalRequest("on-demand", 4));
        await agent.ScrapeUntilAsync(e => e.Value("vasthost_vast_machine_gpu_occupancy", ("state", "on_demand")) == 6, "new rental", TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task An_unknown_host_name_is_reported_clearly_and_nothing_is_changed()
    {
        var dir = TestEnvironment.NewTempDirectory("vast-unknown");
        await using var agent = AgentProcess.Start(Config(dir, hostname: "rig-77"));
        var m = await agent.ScrapeUntilAsync(e => e.Named("vasthost_vast_machine_identification_problem").Any(), "identification problem");
        Assert.Equal(0, m.Value("vasthost_vast_machine_identified"));
        Assert.Equal(1, m.Value("vasthost_vast_machine_identification_problem", ("problem", "not_found")));
        Assert.Contains("no machine with host name 'rig-77' among the 2 machine(s) of this account", agent.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain(_emulator.State.Requests, r => r.Mutation);

        var doctor = await AgentProcess.RunToExitAsync(["doctor", "--config", Path.Combine(agent.WorkDirectory, "agent.json")], Config(dir, hostname: "rig-77").Environment);
        Assert.Equal(1, doctor.ExitCode);
        Assert.Contains("[FAIL] vast api", doctor.Stdout, StringComparison.Ordinal);
        Assert.Contains("set vast.machineId", doctor.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Under_API_fault_storms_telemetry_keeps_flowing_errors_show_as_metrics_and_the_key_never_leaks()
    {
        var dir = TestEnvironment.NewTempDirectory("vast-storm");
        await using var agent = AgentProcess.Start(Config(dir));
        await agent.ScrapeUntilAsync(e => e.Value("vasthost_vast_up") == 1, "Vast up");

        _emulator.State.AddFault(new FaultSpec("*", 429, Count: 30));
        _emulator.State.AddFault(new FaultSpec("*", 503, Count: 30));
        _emulator.State.AddFault(new FaultSpec("*", Malformed: true, Count: 10));
        _emulator.State.AddFault(new FaultSpec("*", Timeout: true, Count: 5));
        var down = await agent.ScrapeUntilAsync(e => e.Value("vasthost_vast_up") == 0, "Vast down", TimeSpan.FromSeconds(90));
        Assert.Equal(8, down.Value("vasthost_gpus", ("state", "nvml")));
        Assert.Equal(8, down.Named("vasthost_gpu_temperature_celsius").Count());
        Assert.Equal(1, down.Value("vasthost_collector_up", ("collector", "gpu")));
        Assert.Empty(down.Named("vasthost_vast_machine_listed"));
        Assert.Contains(down.Named("vasthost_vast_requests_total"), s => s.Label("status_class") == "5xx" || s.Label("status_class") == "4xx");

        _emulator.State.ClearFaults();
        var up = await agent.ScrapeUntilAsync(e => e.Value("vasthost_vast_up") == 1, "Vast back", TimeSpan.FromSeconds(150));
        Assert.NotEmpty(up.Named("vasthost_vast_rate_limited_total"));
        Assert.DoesNotContain(_emulator.State.Requests, r => r.Mutation);

        var key = _emulator.ApiKey;
        Assert.DoesNotContain(key, agent.StandardOutput + agent.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain(key, up.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(key, await agent.GetStringAsync("api/status"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_machine_command_prints_the_machine_as_Vast_sees_it()
    {
        var dir = TestEnvironment.NewTempDirectory("vast-machine");
        var config = Config(dir);
        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(["machine"], config.Environment);
        Assert.True(exit == 0, stderr);
        Assert.Contains($"Machine {_emulator.State.OwnMachineIds[0]} \"rig-01\" (RTX 4090 x8), verified, online", stdout, StringComparison.Ordinal);
        Assert.Contains("GPUs: 2 on-demand, 1 interruptible, 0 reserved, 5 free", stdout, StringComparison.Ordinal);
        Assert.Contains("GPU price        $0.337/GPU-h", stdout, StringComparison.Ordinal);

        var json = await AgentProcess.RunToExitAsync(["machine", "--json"], config.Environment);
        Assert.Equal(0, json.ExitCode);
        using var doc = System.Text.Json.JsonDocument.Parse(json.Stdout);
        Assert.Equal("rig-01", doc.RootElement.GetProperty("hostname").GetString());
        Assert.DoesNotContain(_emulator.ApiKey, stdout + stderr + json.Stdout + json.Stderr, StringComparison.Ordinal);
    }
}
