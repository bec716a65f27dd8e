using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Hosting;

/// <summary>
/// What stops the daemon at start-up is one line on stderr naming the file or the key, exit code 2, and no
/// stack trace anywhere: an unreadable, oversized or odd configuration file, a metrics address the agent
/// cannot listen on, an API key variable with a line break, and messages that name configuration keys, not
/// C# types.
/// </summary>
public sealed class StartupErrorTests
{
    private static Dictionary<string, string?> Quiet(string dir) => new()
    {
        ["VASTHOST_GPU__ENABLED"] = "false",
        ["VASTHOST_DOCKER__ENABLED"] = "false",
        ["VASTHOST_HOST__SYSFSROOT"] = dir,
        ["VASTHOST_AGENT__STATEDIRECTORY"] = Path.Combine(dir, "state"),
    };

    /// <summary>Exit 2 and exactly one line on stderr, which contains every one of <paramref name="expected"/>; no stack trace on either stream.</summary>
    private static string AssertOneLineExit2((int ExitCode, string Stdout, string Stderr) result, params string[] expected)
    {
        var (exit, stdout, stderr) = result;
        Assert.True(exit == 2, $"exit {exit}\nstdout: {stdout}\nstderr: {stderr}");
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        foreach (var e in expected)
        {
            Assert.Contains(e, line, StringComparison.Ordinal);
        }

        foreach (var output in new[] { stdout, stderr })
        {
            Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
            Assert.DoesNotContain("Exception", output, StringComparison.Ordinal);
        }

        return line;
    }

    [Fact]
    public async Task A_configuration_file_the_service_user_cannot_read_says_permission_denied_with_the_user_and_exits_2()
    {
        var dir = TestEnvironment.NewTempDirectory("cfg-000");
        var path = Path.Combine(dir, "agent.json");
        await File.WriteAllTextAsync(path, """{ "gpu": { "enabled": false } }""");
        File.SetUnixFileMode(path, UnixFileMode.None);

        // root reads any file: run the agent as nobody, the way the service user meets a root-only file.
        var (file, prefix) = TestEnvironment.AgentCommand;
        string[] agent = [file, .. prefix, "run", "--config", path, "--listen", $"127.0.0.1:{AgentProcess.FreePort()}"];
        var result = Environment.IsPrivilegedProcess
            ? await Tools.RunAsync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", .. agent], Quiet(dir), null, TimeSpan.FromSeconds(30))
            : await Tools.RunAsync(agent[0], agent[1..], Quiet(dir), null, TimeSpan.FromSeconds(30));

        AssertOneLineExit2(result, $"configuration file {path} cannot be read: permission denied", "user vast-host-agent", $"chmod 644 {path}");
    }

    [Fact]
    public async Task A_directory_given_as_the_configuration_file_is_called_a_directory()
    {
        var dir = TestEnvironment.NewTempDirectory("cfg-dir");
        var result = await AgentProcess.RunToExitAsync(["run", "--config", dir, "--listen", $"127.0.0.1:{AgentProcess.FreePort()}"], Quiet(dir), TimeSpan.FromSeconds(30));
        AssertOneLineExit2(result, $"configuration file {dir} is a directory, not a file");
    }

    [Fact]
    public async Task A_configuration_file_over_1_MiB_is_refused_unread_even_when_it_never_ends()
    {
        var dir = TestEnvironment.NewTempDirectory("cfg-big");
        var big = Path.Combine(dir, "agent.json");
        await File.WriteAllTextAsync(big, "{" + new string(' ', 2 * 1024 * 1024) + "}");
        var env = Quiet(dir);
        // Should the cap be missing, /dev/zero fills a small heap fast instead of the test machine's memory.
        env["DOTNET_GCHeapHardLimit"] = "0x10000000";

        foreach (var path in new[] { big, "/dev/zero" })
        {
            var result = await AgentProcess.RunToExitAsync(["run", "--config", path, "--listen", $"127.0.0.1:{AgentProcess.FreePort()}"], env, TimeSpan.FromSeconds(30));
            AssertOneLineExit2(result, $"configuration file {path} is larger than 1 MiB");
        }
    }

    [Fact]
    public async Task A_FIFO_nobody_writes_to_does_not_hang_the_start()
    {
        var dir = TestEnvironment.NewTempDirectory("cfg-fifo");
        var fifo = Path.Combine(dir, "agent.json");
        Assert.Equal(0, (await Tools.RunAsync("mkfifo", fifo)).ExitCode);

        var result = await AgentProcess.RunToExitAsync(["run", "--config", fifo, "--listen", $"127.0.0.1:{AgentProcess.FreePort()}"], Quiet(dir), TimeSpan.FromSeconds(30));
        AssertOneLineExit2(result, $"configuration file {fifo} could not be read within 5 s: it is not a regular file");
    }
}
