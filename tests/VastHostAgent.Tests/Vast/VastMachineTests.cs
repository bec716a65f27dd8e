using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using VastHostAgent.Cli;
using VastHostAgent.Kernel;
using VastHostAgent.Tests.Support;
using VastHostAgent.Vast;

namespace VastHostAgent.Tests.Vast;

/// <summary>Identifying this machine, polling it and the account, and what hosts see of it (metrics, the machine command).</summary>
public sealed class VastMachineTests
{
    private static string Machines(params (long Id, string Host)[] machines) =>
        JsonSerializer.Serialize(new { machines = machines.Select(m => new { id = m.Id, hostname = m.Host, num_gpus = 8 }) });

    [Theory]
    [InlineData("rig-07", 107L, null)]
    [InlineData("RIG-07.example.net", 107L, null)]
    [InlineData("rig-99", null, "not_found")]
    [InlineData("twin", null, "ambiguous")]
    public async Task The_machine_is_found_by_host_name_only_when_exactly_one_matches(string host, long? expected, string? problem)
    {
        await using var t = VastTestClient.Create(new() { ["vast:machineId"] = "0", ["vast:hostname"] = host });
        t.Server.Respond = (_, _, _) => Task.FromResult(StubVastServer.Json(Machines((101, "rig-01"), (107, "rig-07"), (201, "twin"), (202, "twin"))));

        var identity = await t.Services.GetRequiredService<VastMachineLocator>().IdentifyAsync(default);

        Assert.Equal(expected, identity.MachineId);
        Assert.Equal(problem, identity.ProblemKind);
        if (problem == "not_found")
        {
            Assert.Contains("no machine with host name 'rig-99' among the 4 machine(s) of this account (101: rig-01, 107: rig-07, 201: twin, 202: twin); set vast.machineId", identity.Problem, StringComparison.Ordinal);
        }
        else if (problem == "ambiguous")
        {
            Assert.Contains("2 machines have host name 'twin' (201: twin, 202: twin)", identity.Problem, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_configured_machine_id_needs_no_lookup_and_is_never_read_from_the_kaalia_secret()
    {
        await using var t = VastTestClient.Create(new() { ["vast:machineId"] = "67890" });
        var identity = await t.Services.GetRequiredService<VastMachineLocator>().IdentifyAsync(default);
        Assert.Equal(67890, identity.MachineId);
        Assert.Empty(t.Server.Requests);
        // The agent has no code path that opens the Vast daemon's secret.
        var sources = Directory.GetFiles(Path.Combine(TestEnvironment.RepositoryRoot, "agent"), "*.cs", SearchOption.AllDirectories);
        Assert.DoesNotContain(sources, f => File.ReadAllText(f).Contains("vastai_kaalia/machine_id\"", StringComparison.Ordinal)
            && !File.ReadAllText(f).Contains("Never read", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_poller_reads_the_machine_every_interval_and_the_account_every_account_interval()
    {
        await using var t = VastTestClient.Create(new() { ["vast:pollInterval"] = "00:01:00", ["vast:accountPollInterval"] = "00:15:00" });
        t.Server.Respond = (request, _, _) => Task.FromResult(request.RequestUri!.AbsolutePath switch
        {
            "/api/v0/machines/67890/" => StubVastServer.Json(StubVastServer.Fixture("machine.json")),
            "/api/v0/users/me/machine-earnings/" => StubVastServer.Json(StubVastServer.Fixture("earnings.json")),
            "/api/v0/machines/67890/reports/" => StubVastServer.Json(StubVastServer.Fixture("reports.json")),
            "/api/v0/users/current/" => StubVastServer.Json("""{"id": 4242, "balance": 99.5, "credit": 2}"""),
            _ => StubVastServer.Json("{}", System.Net.HttpStatusCode.NotFound),
        });
        var sampling = t.Services.GetRequiredService<SamplingService>();
        var source = sampling.Sources.Single(s => s.Name == "vast");

        for (var minute = 0; minute < 20; minute++)
        {
            var status = await t.RunAsync(_ => sampling.RunOnceAsync(source, default));
            Assert.True(status.Ok, status.Problem);
            t.Time.Advance(TimeSpan.FromMinutes(1));
        }

        int Count(string path) => t.Server.Requests.Count(r => r.PathAndQuery.StartsWith(path, StringComparison.Ordinal));
        Assert.Equal(20, Count("/api/v0/machines/67890/?"));
        Assert.Equal(2, Count("/api/v0/users/me/machine-earnings/"));   // minute 0 and 15
        Assert.Equal(2, Count("/api/v0/machines/67890/reports/"));
        Assert.Equal(2, Count("/api/v0/users/current/"));

        var state = t.Services.GetRequiredService<SnapshotStore>().Current.Vast!;
        Assert.True(state.Up);
        Assert.Equal(99.5, state.User!.Balance);
        var metrics = Exposition.Parse(await t.MetricsAsync());
        Assert.Equal(1, metrics.Value("vasthost_vast_up"));
        Assert.Equal(1, metrics.Value("vasthost_vast_machine_identified"));
        Assert.Equal(0.43, metrics.Value("vasthost_vast_listing_gpu_price_dollars_per_hour", ("machine_id", "67890")));
        Assert.Equal(2, metrics.Value("vasthost_vast_machine_gpu_occupancy", ("state", "on_demand")));
        Assert.Equal(6, metrics.Value("vasthost_vast_machine_gpu_occupancy", ("state", "free")));
        Assert.Equal(1, metrics.Value("vasthost_vast_machine_default_job"));
        Assert.Equal(99.5, metrics.Value("vasthost_vast_account_balance_dollars"));
        Assert.Equal(0, (await Promtool.CheckMetricsAsync(metrics.Text)).ExitCode);
    }

    [Fact]
    public async Task A_failed_machine_read_sets_vast_up_0_and_removes_the_machine_series_while_telemetry_goes_on()
    {
        await using var t = VastTestClient.Create(new() { ["vast:readRetries"] = "0", ["vast:pollInterval"] = "00:01:00" });
        var fail = false;
        t.Server.Respond = (request, _, _) => Task.FromResult(
            fail ? StubVastServer.Text("bad gateway", System.Net.HttpStatusCode.BadGateway)
            : request.RequestUri!.AbsolutePath == "/api/v0/machines/67890/" ? StubVastServer.Json(StubVastServer.Fixture("machine.json"))
            : StubVastServer.Json("[]"));
        var sampling = t.Services.GetRequiredService<SamplingService>();
        var source = sampling.Sources.Single(s => s.Name == "vast");
        await t.RunAsync(_ => sampling.RunOnceAsync(source, default));
        Assert.NotNull(Exposition.Parse(await t.MetricsAsync()).Value("vasthost_vast_machine_listed", ("machine_id", "67890")));

        fail = true;
        t.Time.Advance(TimeSpan.FromMinutes(1));
        var status = await t.RunAsync(_ => sampling.RunOnceAsync(source, default));

        Assert.False(status.Ok);
        Assert.Contains("HTTP 502", status.Problem, StringComparison.Ordinal);
        var m = Exposition.Parse(await t.MetricsAsync());
        Assert.Equal(0, m.Value("vasthost_vast_up"));
        Assert.Empty(m.Named("vasthost_vast_machine_listed"));
        Assert.Equal(0, m.Value("vasthost_collector_up", ("collector", "vast")));
        Assert.NotNull(m.Value("vasthost_collector_up", ("collector", "vast")));
    }

    [Fact]
    public void The_machine_command_shows_listing_prices_occupancy_rentals_maintenance_and_earnings()
    {
        var machine = JsonSerializer.Deserialize(StubVastServer.Fixture("machines.json"), VastJsonContext.Default.VastMachinesResponse)!.Machines![0];
        var text = MachineCommand.Render(machine, DateTimeOffset.Parse("2025-10-01T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("Machine 67890 \"example-host\" (RTX 4090 x8), verified, online, reliability 0.970", text, StringComparison.Ordinal);
        Assert.Contains("Listed: yes, offers until 2025-10-19", text, StringComparison.Ordinal);
        Assert.Contains("GPU price        $0.430/GPU-h    min bid   $0.300/GPU-h", text, StringComparison.Ordinal);
        Assert.Contains("GPUs: 2 on-demand, 0 interruptible, 0 reserved, 6 free", text, StringComparison.Ordinal);
        Assert.Contains("Rentals: 3 running (2 on-demand), 4 resident; clients until 2026-09-02", text, StringComparison.Ordinal);
        Assert.Contains("Maintenance: 2026-09-21 ", text, StringComparison.Ordinal);
        Assert.Contains("(power)", text, StringComparison.Ordinal);
        Assert.Contains("Earnings (24 h): $39.190", text, StringComparison.Ordinal);
    }
}
