using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Fleet;

/// <summary>One controller per Vast account: a second one for the same key refuses to start, even with its own state directory.</summary>
public sealed class ControllerLockTests
{
    [Fact]
    public async Task A_second_controller_for_the_same_account_refuses_to_start_with_one_clear_line_and_never_shows_the_key()
    {
        var locks = TestEnvironment.NewTempDirectory("ctl-locks");
        var keyDir = TestEnvironment.NewTempDirectory("ctl-key");
        var key = Path.Combine(keyDir, "key");
        const string secret = "ctl-test-key-0123456789abcdef0123456789abcdef";
        await File.WriteAllTextAsync(key, secret + "\n");
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        string Config() => $$"""
            {
              "agent": { "role": "controller", "stateDirectory": "{workDir}/state" },
              "metrics": { "listenAddress": "127.0.0.1:{port}" },
              "gpu": { "enabled": false },
              "host": { "hwmon": false, "disk": false },
              "docker": { "enabled": false },
              "vast": { "enabled": true, "apiKeyFile": "{{key}}", "baseUrl": "http://127.0.0.1:{{AgentProcess.FreePort()}}" },
              "fleet": { "lockDirectory": "{{locks}}" }
            }
            """;

        await using var first = AgentProcess.Start(new AgentConfig { RawJson = Config() });
        await first.ScrapeUntilAsync(_ => true, "the first controller serving /metrics (it holds the lock before it listens)");

        var secondDir = TestEnvironment.NewTempDirectory("ctl-second");
        var secondConfig = Path.Combine(secondDir, "agent.json");
        await File.WriteAllTextAsync(secondConfig, Config()
            .Replace("{workDir}", secondDir, StringComparison.Ordinal)
            .Replace("{port}", AgentProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(["run", "--config", secondConfig], timeout: TimeSpan.FromSeconds(30));
        Assert.True(exit == 1, $"exit {exit}\nstdout: {stdout}\nstderr: {stderr}");
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: another controller is already running for this Vast account (it holds " + locks + "/vast-host-agent-controller-", line, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, stderr + stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("started", stdout, StringComparison.Ordinal);
        Assert.False(first.HasExited);
    }
}
