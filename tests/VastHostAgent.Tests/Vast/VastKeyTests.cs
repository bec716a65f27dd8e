using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Vast;

/// <summary>Where the API key may come from, and how the agent refuses an unsafe one before any call.</summary>
public sealed class VastKeyTests
{
    private const string Key = "0badc0de0badc0de0badc0de0badc0de0badc0de0badc0de0badc0de0badc0de";

    private static Dictionary<string, string?> Env(params (string Key, string? Value)[] pairs)
    {
        var env = new Dictionary<string, string?>
        {
            ["VASTHOST_VAST__ENABLED"] = "true",
            ["VASTHOST_VAST__BASEURL"] = "http://127.0.0.1:9",
            ["VASTHOST_VAST__MACHINEID"] = "1",
            ["VASTHOST_GPU__ENABLED"] = "false",
            ["VASTHOST_DOCKER__ENABLED"] = "false",
            ["VAST_API_KEY"] = null,
            ["CREDENTIALS_DIRECTORY"] = null,
        };
        foreach (var (k, v) in pairs)
        {
            env[k] = v;
        }

        return env;
    }

    [Fact]
    public async Task A_key_file_others_can_read_is_refused_with_exit_2_and_the_fix()
    {
        var dir = TestEnvironment.NewTempDirectory("key644");
        var file = Path.Combine(dir, "vast.key");
        await File.WriteAllTextAsync(file, Key);
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(["metrics"], Env(("VASTHOST_VAST__APIKEYFILE", file)));

        Assert.Equal(2, exit);
        Assert.Contains($"vast.apiKeyFile: {file} can be read by group or others (mode 0644)", stderr, StringComparison.Ordinal);
        Assert.Contains($"chmod 600 {file}", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, stdout + stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Enabled_without_any_key_says_where_a_key_can_come_from()
    {
        var (exit, _, stderr) = await AgentProcess.RunToExitAsync(["metrics"], Env());
        Assert.Equal(2, exit);
        Assert.Contains("vast: enabled but no API key: set apiKeyFile (mode 0600), or provide the systemd credential 'vast-api-key'", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_systemd_credential_wins_over_the_file_and_the_environment_and_no_output_shows_the_key()
    {
        var dir = TestEnvironment.NewTempDirectory("cred");
        var credentials = Path.Combine(dir, "credentials");
        Directory.CreateDirectory(credentials);
        await File.WriteAllTextAsync(Path.Combine(credentials, "vast-api-key"), Key + "\n");
        var unsafeFile = Path.Combine(dir, "ignored.key");
        await File.WriteAllTextAsync(unsafeFile, "other");
        File.SetUnixFileMode(unsafeFile, (UnixFileMode)0x1A4); // 0644: would be refused if it were used

        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(
            ["doctor"],
            Env(("CREDENTIALS_DIRECTORY", credentials), ("VASTHOST_VAST__APIKEYFILE", unsafeFile), ("VAST_API_KEY", "env-key-not-used"),
                ("VASTHOST_VAST__READRETRIES", "0"), ("VASTHOST_METRICS__LISTENADDRESS", $"127.0.0.1:{AgentProcess.FreePort()}")));

        Assert.Equal(1, exit); // the API at 127.0.0.1:9 does not answer
        Assert.Contains("[FAIL] vast api       Vast API show_machine: cannot reach 127.0.0.1:9: Connection refused", stdout, StringComparison.Ordinal);
        Assert.Contains("API key (from systemd credential vast-api-key)", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, stdout + stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_empty_credential_as_created_before_a_key_is_added_falls_through_to_the_file()
    {
        var dir = TestEnvironment.NewTempDirectory("cred");
        var credentials = Path.Combine(dir, "credentials");
        Directory.CreateDirectory(credentials);
        await File.WriteAllTextAsync(Path.Combine(credentials, "vast-api-key"), "");
        var keyFile = Path.Combine(dir, "vast.key");
        await File.WriteAllTextAsync(keyFile, Key);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(
            ["doctor"],
            Env(("CREDENTIALS_DIRECTORY", credentials), ("VASTHOST_VAST__APIKEYFILE", keyFile),
                ("VASTHOST_VAST__READRETRIES", "0"), ("VASTHOST_METRICS__LISTENADDRESS", $"127.0.0.1:{AgentProcess.FreePort()}")));
        Assert.Equal(1, exit);
        Assert.Contains($"API key (from file {keyFile})", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, stdout + stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_environment_variable_is_the_last_resort()
    {
        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(
            ["doctor"],
            Env(("VAST_API_KEY", Key), ("VASTHOST_VAST__READRETRIES", "0"), ("VASTHOST_METRICS__LISTENADDRESS", $"127.0.0.1:{AgentProcess.FreePort()}")));
        Assert.Equal(1, exit);
        Assert.Contains("API key (from environment variable VAST_API_KEY)", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(Key, stdout + stderr, StringComparison.Ordinal);
    }
}
