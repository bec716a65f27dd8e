using System.Globalization;
using System.Text.Json;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Maintenance;

/// <summary>
/// The <c>maint</c> commands against a configuration the daemon would use: schedule, list, cancel, and the
/// errors (exit 2) for bad input and bad windows in the configuration.
/// </summary>
public sealed class MaintenanceCommandTests : MaintenanceProcessTestBase
{
    [Fact]
    public async Task Maint_commands_schedule_list_and_cancel_windows_and_refuse_bad_input_with_exit_2()
    {
        var config = Config(TestEnvironment.NewTempDirectory("maint-cli"));
        var at = DateTimeOffset.UtcNow.AddDays(3).ToString("yyyy-MM-ddTHH:00Z", CultureInfo.InvariantCulture);

        var scheduled = await Cli(config, "maint", "schedule", "--at", at, "--duration", "90m", "--category", "gpu", "--id", "swap-gpu3");
        Assert.True(scheduled.ExitCode == 0, scheduled.Stderr);
        Assert.Contains("Window swap-gpu3:", scheduled.Stdout, StringComparison.Ordinal);
        Assert.Contains("(1h30m, gpu) added", scheduled.Stdout, StringComparison.Ordinal);

        var list = await Cli(config, "maint", "list");
        Assert.Equal(0, list.ExitCode);
        var row = list.Stdout.Split('\n').Single(l => l.StartsWith("swap-gpu3 ", StringComparison.Ordinal));
        Assert.Contains("planned", row, StringComparison.Ordinal);
        Assert.Contains("scheduled from the command line", row, StringComparison.Ordinal);
        Assert.Contains("Fault guard: off", list.Stdout, StringComparison.Ordinal);

        var json = await Cli(config, "maint", "list", "--json");
        using (var doc = JsonDocument.Parse(json.Stdout))
        {
            var window = doc.RootElement.GetProperty("windows").EnumerateArray().Single();
            Assert.Equal(("swap-gpu3", "cli", "planned", 5400.0), (window.GetProperty("id").GetString(), window.GetProperty("source").GetString(),
                window.GetProperty("state").GetString(), (window.GetProperty("end").GetDateTimeOffset() - window.GetProperty("start").GetDateTimeOffset()).TotalSeconds));
        }

        var duplicate = await Cli(config, "maint", "schedule", "--at", at, "--duration", "1h", "--id", "swap-gpu3");
        Assert.Equal(2, duplicate.ExitCode);
        Assert.Contains("a window 'swap-gpu3' already exists", duplicate.Stderr, StringComparison.Ordinal);
        foreach (var (args, message) in new (string[], string)[]
                 {
                     (["--at", "tomorrow", "--duration", "1h"], "--at: 'tomorrow' is not a date and time"),
                     (["--at", at, "--duration", "2m"], "--duration: '2m' must be between 5m and 14d"),
                     (["--at", at, "--duration", "1h", "--category", "aliens"], "--category: 'aliens' must be one of power, internet, disk, gpu, software, other"),
                     (["--at", "2020-01-01T00:00Z", "--duration", "1h"], "is already over"),
                 })
        {
            var bad = await Cli(config, ["maint", "schedule", .. args]);
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains(message, bad.Stderr, StringComparison.Ordinal);
        }

        var cancel = await Cli(config, "maint", "cancel", "swap-gpu3");
        Assert.Equal(0, cancel.ExitCode);
        Assert.Contains("Cancel requested for window swap-gpu3 (planned)", cancel.Stdout, StringComparison.Ordinal);
        Assert.Contains("planned (cancelling)", (await Cli(config, "maint", "list")).Stdout, StringComparison.Ordinal);
        Assert.Equal(2, (await Cli(config, "maint", "cancel", "nope")).ExitCode);

        var status = await Cli(config, "status");
        Assert.Equal(0, status.ExitCode);
        Assert.Contains("Maintenance: swap-gpu3 planned (cancelling)", status.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(Emulator.State.Requests, r => r.Mutation);   // the commands never call Vast
    }

    [Fact]
    public async Task Windows_need_management_and_a_bad_window_in_the_configuration_names_its_key_with_exit_2()
    {
        var config = Config(TestEnvironment.NewTempDirectory("maint-bad"), extra: [("VASTHOST_MANAGEMENT__ENABLED", "false")]);
        var off = await Cli(config, "maint", "schedule", "--at", "2030-01-01T00:00Z", "--duration", "1h");
        Assert.Equal(2, off.ExitCode);
        Assert.Contains("management.enabled is false", off.Stderr, StringComparison.Ordinal);

        var env = new Dictionary<string, string?>(config.Environment)
        {
            ["VASTHOST_MANAGEMENT__ENABLED"] = "true",
            ["VASTHOST_MAINTENANCE__WINDOWS__0__ID"] = "w 1",
            ["VASTHOST_MAINTENANCE__WINDOWS__0__START"] = "2030-01-01T00:00:00Z",
            ["VASTHOST_MAINTENANCE__WINDOWS__0__CATEGORY"] = "aliens",
            ["VASTHOST_MAINTENANCE__RECURRING__0__ID"] = "r",
            ["VASTHOST_MAINTENANCE__RECURRING__0__CRON"] = "0 25 * * *",
            ["VASTHOST_MAINTENANCE__RECURRING__0__TIMEZONE"] = "Mars/Olympus",
            ["VASTHOST_FAULTGUARD__POLICY"] = "panic",
        };
        var (exit, _, stderr) = await AgentProcess.RunToExitAsync(["run", "--config", Path.Combine(config.WorkDirectory!, "agent.json")], env);
        Assert.Equal(2, exit);
        Assert.Contains("maintenance.windows.0.id: must be 1-40 letters", stderr, StringComparison.Ordinal);
        Assert.Contains("maintenance.windows.0.category: must be power, internet, disk, gpu, software or other (got 'aliens')", stderr, StringComparison.Ordinal);
        Assert.Contains("maintenance.recurring.0.cron: '0 25 * * *' is not a 5-field cron expression", stderr, StringComparison.Ordinal);
        Assert.Contains("maintenance.recurring.0.timeZone: 'Mars/Olympus' is not a known IANA time zone", stderr, StringComparison.Ordinal);
        Assert.Contains("faultGuard.policy: must be unlist or defaultJob (got 'panic')", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(Emulator.State.Requests, r => r.Mutation);
    }
}
