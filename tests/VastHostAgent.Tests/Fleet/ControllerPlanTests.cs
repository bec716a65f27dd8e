using VastEmulator;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Fleet;

/// <summary><c>plan</c> on a controller: one table per managed machine from one read of the account; <c>--machine</c> picks one.</summary>
public sealed class ControllerPlanTests
{
    [Fact]
    public async Task Plan_shows_one_table_per_managed_machine_and_machine_picks_one_by_host_name_without_any_mutation_and_maint_machine_keeps_windows_per_machine()
    {
        await using var emulator = await EmulatorApp.StartAsync(new EmulatorOptions { MachineHostnames = ["rig-01", "rig-02", "gpu-box"], OfferCount = 200 });
        var dir = TestEnvironment.NewTempDirectory("ctl-plan");
        var key = Path.Combine(dir, "key");
        await File.WriteAllTextAsync(key, emulator.ApiKey + "\n");
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var config = Path.Combine(dir, "agent.json");
        await File.WriteAllTextAsync(config, $$"""
            {
              "agent": { "role": "controller", "stateDirectory": "{{dir}}/state" },
              "gpu": { "enabled": false },
              "docker": { "enabled": false },
              "vast": { "enabled": true, "apiKeyFile": "{{key}}", "baseUrl": "{{emulator.BaseUrl.GetLeftPart(UriPartial.Authority)}}", "spacingScale": 0.01 },
              "management": { "enabled": true, "listing": { "discountMax": 0.3 } },
              "fleet": { "lockDirectory": "{{dir}}", "machines": [ { "hostname": "rig-*" } ] }
            }
            """);

        var all = await AgentProcess.RunToExitAsync(["plan", "--config", config], timeout: TimeSpan.FromSeconds(60));
        Assert.True(all.ExitCode == 0, all.Stderr + all.Stdout);
        Assert.Contains("\"rig-01\"", all.Stdout, StringComparison.Ordinal);
        Assert.Contains("\"rig-02\"", all.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("\"gpu-box\"", all.Stdout, StringComparison.Ordinal);   // no entry selects it: read-only

        var one = await AgentProcess.RunToExitAsync(["plan", "--config", config, "--machine", "rig-02"], timeout: TimeSpan.FromSeconds(60));
        Assert.True(one.ExitCode == 0, one.Stderr + one.Stdout);
        Assert.Contains("\"rig-02\"", one.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("\"rig-01\"", one.Stdout, StringComparison.Ordinal);
        Assert.Contains("discount max", one.Stdout, StringComparison.Ordinal);

        var none = await AgentProcess.RunToExitAsync(["plan", "--config", config, "--machine", "gpu-box"], timeout: TimeSpan.FromSeconds(60));
        Assert.Equal(1, none.ExitCode);
        Assert.Contains("No managed machine is gpu-box", none.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(emulator.State.Requests, r => r.Mutation);
        Assert.Equal(3, emulator.State.Requests.Count(r => r.Endpoint == Endpoints.ShowMachines && r.Status == 200));   // one account read per plan (a 429 between back-to-back runs is retried)

        // Maintenance for one machine from the controller host, by host name: it lands in that machine's own state.
        var at = DateTimeOffset.UtcNow.AddDays(3).ToString("yyyy-MM-ddTHH:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var schedule = await AgentProcess.RunToExitAsync(["maint", "schedule", "--config", config, "--machine", "rig-02", "--at", at, "--duration", "2h", "--id", "swap-psu"], timeout: TimeSpan.FromSeconds(60));
        Assert.True(schedule.ExitCode == 0, schedule.Stderr + schedule.Stdout);
        var rig02 = emulator.State.OwnMachineIds[1];
        Assert.Contains("swap-psu", await File.ReadAllTextAsync(Path.Combine(dir, "state", "machines", rig02.ToString(System.Globalization.CultureInfo.InvariantCulture), "maintenance.json")), StringComparison.Ordinal);
        var list = await AgentProcess.RunToExitAsync(["maint", "list", "--config", config, "--machine", rig02.ToString(System.Globalization.CultureInfo.InvariantCulture)], timeout: TimeSpan.FromSeconds(60));
        Assert.True(list.ExitCode == 0, list.Stderr);
        Assert.Contains("swap-psu", list.Stdout, StringComparison.Ordinal);
        var otherList = await AgentProcess.RunToExitAsync(["maint", "list", "--config", config, "--machine", "rig-01"], timeout: TimeSpan.FromSeconds(60));
        Assert.DoesNotContain("swap-psu", otherList.Stdout, StringComparison.Ordinal);

        // A second window on another machine at the same time; maint list without --machine shows both, by machine.
        var schedule2 = await AgentProcess.RunToExitAsync(["maint", "schedule", "--config", config, "--machine", "rig-01", "--at", at, "--duration", "1h", "--id", "bios"], timeout: TimeSpan.FromSeconds(60));
        Assert.True(schedule2.ExitCode == 0, schedule2.Stderr + schedule2.Stdout);
        var fleet = await AgentProcess.RunToExitAsync(["maint", "list", "--config", config], timeout: TimeSpan.FromSeconds(60));
        Assert.True(fleet.ExitCode == 0, fleet.Stderr);
        var rows = fleet.Stdout.Split('\n');
        Assert.Contains(rows, r => r.Contains("rig-02", StringComparison.Ordinal) && r.Contains("swap-psu", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.Contains("rig-01", StringComparison.Ordinal) && r.Contains("bios", StringComparison.Ordinal));
        var json = System.Text.Json.Nodes.JsonNode.Parse((await AgentProcess.RunToExitAsync(["maint", "list", "--config", config, "--json"], timeout: TimeSpan.FromSeconds(60))).Stdout)!.AsArray();
        Assert.Equal(["rig-01:bios", "rig-02:swap-psu"], json.SelectMany(m => m!["status"]!["windows"]!.AsArray().Select(w => $"{m["hostname"]}:{w!["id"]}")).Order());
        Assert.DoesNotContain(emulator.State.Requests, r => r.Mutation);

        var unknown = await AgentProcess.RunToExitAsync(["maint", "schedule", "--config", config, "--machine", "gpu-box", "--at", at, "--duration", "2h"], timeout: TimeSpan.FromSeconds(60));
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("--machine: 'gpu-box' is not a machine id, nor the host name of a machine the controller manages", unknown.Stderr, StringComparison.Ordinal);
    }
}
