using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace VastHostAgent.Tests.Support;

/// <summary>
/// The real agent as a child process: its own configuration file, environment, port, fake NVML state
/// file and hwmon fixture. Captures stdout and stderr. Killed on dispose.
/// </summary>
public sealed class AgentProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _stdout = new();
    private readonly ConcurrentQueue<string> _stderr = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private AgentProcess(Process process, int port, string workDir)
    {
        _process = process;
        Port = port;
        WorkDirectory = workDir;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) { _stdout.Enqueue(e.Data); } };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { _stderr.Enqueue(e.Data); } };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Port { get; }

    public string WorkDirectory { get; }

    public Uri BaseUrl => new($"http://127.0.0.1:{Port}/");

    /// <summary>The configuration file <see cref="Start"/> wrote (rewrite it, then <see cref="Hangup"/>, to reload).</summary>
    public string ConfigPath => Path.Combine(WorkDirectory, "agent.json");

    public string StandardOutput => string.Join('\n', _stdout);

    public string StandardError => string.Join('\n', _stderr);

    public bool HasExited => _process.HasExited;

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts <c>vast-host-agent run</c> with a configuration built from <paramref name="config"/>.</summary>
    public static AgentProcess Start(AgentConfig config)
    {
        var port = config.Port ?? FreePort();
        var workDir = config.WorkDirectory ?? TestEnvironment.NewTempDirectory("agent");
        var configPath = Path.Combine(workDir, "agent.json");
        File.WriteAllText(configPath, config.ToJson(port, workDir));

        var (file, prefix) = TestEnvironment.AgentCommand;
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in prefix)
        {
            psi.ArgumentList.Add(a);
        }

        psi.ArgumentList.Add("run");
        psi.ArgumentList.Add("--config");
        psi.ArgumentList.Add(configPath);
        foreach (var a in config.ExtraArgs)
        {
            psi.ArgumentList.Add(a);
        }

        ApplyEnvironment(psi, config.Environment);
        var process = Process.Start(psi) ?? throw new InvalidOperationException("agent did not start");
        return new AgentProcess(process, port, workDir);
    }

    /// <summary>Runs the agent to completion with arbitrary arguments (one-shot commands, bad configuration).</summary>
    public static Task<(int ExitCode, string Stdout, string Stderr)> RunToExitAsync(
        IEnumerable<string> args, IDictionary<string, string?>? environment = null, TimeSpan? timeout = null)
    {
        var (file, prefix) = TestEnvironment.AgentCommand;
        return Tools.RunAsync(file, prefix.Concat(args), null, null, timeout ?? TimeSpan.FromSeconds(60),
            configure: psi => ApplyEnvironment(psi, environment ?? new Dictionary<string, string?>()));
    }

    public async Task<HttpResponseMessage> GetAsync(string path) => await _http.GetAsync(new Uri(BaseUrl, path));

    public async Task<string> GetStringAsync(string path) => await _http.GetStringAsync(new Uri(BaseUrl, path));

    public async Task<Exposition> ScrapeAsync() => Exposition.Parse(await GetStringAsync("metrics"));

    /// <summary>Scrapes until <paramref name="done"/> holds (the agent samples in the background).</summary>
    public Task<Exposition> ScrapeUntilAsync(Func<Exposition, bool> done, string what, TimeSpan? timeout = null) =>
        Poll.UntilAsync(ScrapeAsync, done, timeout ?? TimeSpan.FromSeconds(30), what + DiagnosticsSuffix());

    /// <summary>Waits until the endpoint serves a scrape with the GPU collector's first run in it.</summary>
    public Task<Exposition> WaitReadyAsync(TimeSpan? timeout = null) =>
        ScrapeUntilAsync(e => e.Named("vasthost_collector_up").Any(s => s.Label("collector") == "gpu"), "first GPU sample", timeout);

    /// <summary>SIGHUP: the daemon reads its configuration again.</summary>
    public void Hangup()
    {
        if (Kill(_process.Id, 1) != 0)
        {
            throw new InvalidOperationException($"kill -HUP {_process.Id} failed (agent exited: {HasExited})");
        }
    }

    /// <summary>SIGKILL: no shutdown code runs (a crash or a power cut, as far as the state directory is concerned).</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 9);
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await _process.WaitForExitAsync(cts.Token);
    }

    /// <summary>Sends SIGTERM and waits for the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 15);
        }

        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }

        _process.Dispose();
        _http.Dispose();
    }

    private string DiagnosticsSuffix() => HasExited ? $" (agent exited {_process.ExitCode}; stderr: {StandardError}; stdout: {StandardOutput})" : "";

    private static void ApplyEnvironment(ProcessStartInfo psi, IDictionary<string, string?> environment)
    {
        // Isolate from the developer's environment: no inherited VASTHOST_* or FAKE_NVML_* settings.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("VASTHOST_", StringComparison.Ordinal) || k.StartsWith("FAKE_NVML_", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(key);
        }

        psi.Environment["DOTNET_gcServer"] = "0";
        foreach (var (key, value) in environment)
        {
            if (value is null)
            {
                psi.Environment.Remove(key);
            }
            else
            {
                psi.Environment[key] = value;
            }
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}

/// <summary>What to put in a test agent's configuration file and environment.</summary>
public sealed class AgentConfig
{
    public int? Port { get; init; }

    public string? WorkDirectory { get; init; }

    public string NvmlLibrary { get; init; } = TestEnvironment.FakeNvml;

    public string? FakeNvmlState { get; init; }

    public string? SysfsRoot { get; init; }

    public string? DockerDataRoot { get; init; }

    public string SampleInterval { get; init; } = "00:00:01";

    public bool DcgmCompatible { get; init; }

    public bool GpuEnabled { get; init; } = true;

    /// <summary>gpu.kmsgPath: null is an empty file <c>{workDir}/kmsg</c> (tests never read the machine's /dev/kmsg); "" turns the source off.</summary>
    public string? KmsgPath { get; init; }

    /// <summary>Docker endpoint (a private dockerd's socket); null turns the Docker inventory off.</summary>
    public string? DockerEndpoint { get; init; }

    public string DockerResyncInterval { get; init; } = "00:01:00";

    public string[] DockerExportLabels { get; init; } = [];

    public string[] ExtraArgs { get; init; } = [];

    public Dictionary<string, string?> Environment { get; init; } = [];

    /// <summary>A whole configuration instead of the generated one; <c>{port}</c> and <c>{workDir}</c> are filled in.</summary>
    public string? RawJson { get; init; }

    public string ToJson(int port, string workDir)
    {
        if (RawJson is not null)
        {
            return RawJson.Replace("{port}", port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
                .Replace("{workDir}", workDir, StringComparison.Ordinal);
        }

        var sysfs = SysfsRoot ?? Path.Combine(workDir, "sys-empty");
        Directory.CreateDirectory(sysfs);
        if (FakeNvmlState is not null)
        {
            Environment["FAKE_NVML_STATE"] = FakeNvmlState;
        }

        var kmsg = KmsgPath;
        if (kmsg is null)
        {
            kmsg = Path.Combine(workDir, "kmsg");
            if (!File.Exists(kmsg))
            {
                File.WriteAllText(kmsg, "");
            }
        }

        var sb = new StringBuilder();
        sb.Append($$"""
            {
              "agent": { "sampleInterval": "{{SampleInterval}}", "stateDirectory": "{{workDir}}/state" },
              "metrics": { "listenAddress": "127.0.0.1:{{port}}", "dcgmCompatible": {{(DcgmCompatible ? "true" : "false")}}, "hostname": "test-rig" },
              "gpu": { "enabled": {{(GpuEnabled ? "true" : "false")}}, "nvmlLibrary": "{{NvmlLibrary}}", "kmsgPath": "{{kmsg}}" },
              "host": { "sysfsRoot": "{{sysfs}}", "dockerDataRoot": "{{DockerDataRoot ?? workDir}}" },
              "docker": { "enabled": {{(DockerEndpoint is null ? "false" : "true")}}, "endpoint": "{{DockerEndpoint ?? ""}}", "resyncInterval": "{{DockerResyncInterval}}", "exportLabels": [{{string.Join(", ", DockerExportLabels.Select(l => $"\"{l}\""))}}] }
            }
            """);
        return sb.ToString();
    }
}
