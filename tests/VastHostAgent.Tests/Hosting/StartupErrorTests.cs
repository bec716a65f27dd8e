using System.Net;
using System.Net.Sockets;
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
        env["DOTNET_GCHeapHardLimit"] = "10000000"; // hex, 256 MiB (a value written with 0x is ignored)

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

    [Fact]
    public async Task A_metrics_port_in_use_is_one_line_naming_metrics_listenAddress_and_exit_2()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        var dir = TestEnvironment.NewTempDirectory("busy-port");

        var result = await AgentProcess.RunToExitAsync(["run", "--listen", $"127.0.0.1:{port}"], Quiet(dir), TimeSpan.FromSeconds(30));
        AssertOneLineExit2(result, $"metrics.listenAddress: cannot listen on 127.0.0.1:{port}: address already in use");
    }

    [Fact]
    public async Task A_listen_address_this_host_does_not_have_is_one_line_naming_metrics_listenAddress_and_exit_2()
    {
        var dir = TestEnvironment.NewTempDirectory("no-addr");
        var config = Path.Combine(dir, "agent.json");
        await File.WriteAllTextAsync(config, """{ "metrics": { "listenAddress": "192.0.2.1:9470" } }"""); // TEST-NET-1: on no host

        var result = await AgentProcess.RunToExitAsync(["run", "--config", config], Quiet(dir), TimeSpan.FromSeconds(30));
        AssertOneLineExit2(result, "metrics.listenAddress: cannot listen on 192.0.2.1:9470: this host has no such address");
    }

    [Fact]
    public async Task A_VAST_API_KEY_with_a_line_break_is_refused_like_a_key_file_without_showing_the_key()
    {
        const string first = "0badc0de0badc0de0badc0de0badc0de", second = "feedfacefeedfacefeedfacefeedface";
        var dir = TestEnvironment.NewTempDirectory("key-newline");
        var env = Quiet(dir);
        env["VASTHOST_VAST__ENABLED"] = "true";
        env["VASTHOST_VAST__BASEURL"] = "http://127.0.0.1:9";
        env["VASTHOST_VAST__MACHINEID"] = "1";
        env["CREDENTIALS_DIRECTORY"] = null;
        env["VAST_API_KEY"] = first + "\n" + second;

        var result = await AgentProcess.RunToExitAsync(["run", "--listen", $"127.0.0.1:{AgentProcess.FreePort()}"], env, TimeSpan.FromSeconds(30));
        AssertOneLineExit2(result, "vast: the VAST_API_KEY environment variable does not hold one API key");
        Assert.DoesNotContain(first, result.Stdout + result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(second, result.Stdout + result.Stderr, StringComparison.Ordinal);
    }

    /// <summary>Bad values across the sections, several per file (each reported on its own line), and the keys they must name.</summary>
    public static TheoryData<string, string, string[]> BadValues => new()
    {
        {
            "numbers out of range",
            """
            {
              "vast": { "machineId": -1, "defaultSpacingSeconds": 0, "spacingScale": 100, "readRetries": 11, "circuitBreakerFailures": 1 },
              "management": { "jitter": 5, "mutationBudgetPerHour": 0, "journalMaxBytes": 1, "listing": { "minChunk": 0 },
                              "pricing": { "floor": -1, "maxChangePerStep": 2, "market": { "percentile": 200, "minPeers": 0 } } },
              "faultGuard": { "minFreeDiskRatio": 1.5 }
            }
            """,
            ["vast.machineId: must be 0 (find by host name) or the machine id (got '-1')", "vast.defaultSpacingSeconds: must be between 0.1 and 60 seconds (got '0')", "vast.spacingScale:",
             "vast.readRetries: must be between 0 and 10 (got '11')", "vast.circuitBreakerFailures:",
             "management.jitter: must be between 0 and 0.5 (got '5')", "management.mutationBudgetPerHour:", "management.journalMaxBytes:", "management.listing.minChunk: must be between 1 and 64 (got '0')",
             "management.pricing.floor: must be between 0.001 and 100 $/GPU-hour (got '-1')", "management.pricing.maxChangePerStep:",
             "management.pricing.market.percentile: must be between 1 and 99 (got '200')", "management.pricing.market.minPeers:",
             "faultGuard.minFreeDiskRatio: must be between 0 and 0.9 (got '1.5')"]
        },
        {
            "not a number",
            """{ "management": { "jitter": "NaN", "pricing": { "market": { "percentile": "NaN" } } }, "vast": { "spacingScale": "NaN" }, "faultGuard": { "minFreeDiskRatio": "NaN" } }""",
            ["management.jitter: 'NaN' is not a number", "management.pricing.market.percentile: 'NaN' is not a number",
             "vast.spacingScale: 'NaN' is not a number", "faultGuard.minFreeDiskRatio: 'NaN' is not a number"]
        },
        {
            "required values left empty",
            """
            { "gpu": { "nvmlLibrary": "" }, "host": { "procRoot": "", "cgroupRoot": "" }, "vast": { "baseUrl": "", "apiKeyCredential": "" },
              "maintenance": { "conflictPolicy": "" }, "faultGuard": { "policy": "" } }
            """,
            ["gpu.nvmlLibrary: is required (got '')", "host.procRoot:", "host.cgroupRoot:", "vast.baseUrl:", "vast.apiKeyCredential:", "maintenance.conflictPolicy:", "faultGuard.policy:"]
        },
    };

    [Theory]
    [MemberData(nameof(BadValues))]
    public async Task Every_validation_message_names_the_configuration_key_never_a_CSharp_type(string why, string json, string[] keys)
    {
        var dir = TestEnvironment.NewTempDirectory("typenames");
        var path = Path.Combine(dir, "agent.json");
        await File.WriteAllTextAsync(path, json);

        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(["run", "--config", path, "--listen", $"127.0.0.1:{AgentProcess.FreePort()}"], Quiet(dir), TimeSpan.FromSeconds(30));

        Assert.True(exit == 2, $"{why}: exit {exit}\n{stderr}");
        Assert.Equal("", stdout.Trim());
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        foreach (var line in lines)
        {
            Assert.StartsWith($"error: invalid configuration ({path}): ", line, StringComparison.Ordinal);
            Assert.DoesNotContain("Options.", line, StringComparison.Ordinal);
            Assert.DoesNotContain("The field", line, StringComparison.Ordinal);
            Assert.DoesNotContain(" field is required", line, StringComparison.Ordinal);
        }

        foreach (var key in keys)
        {
            Assert.True(lines.Any(l => l.Contains($"): {key}", StringComparison.Ordinal)), $"{why}: no line starts with '{key}'\n{stderr}");
        }

        Assert.Equal(keys.Length, lines.Length);
    }
}
