using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;

namespace VastHostAgent.Tests.Support;

/// <summary>
/// A real Alertmanager (Debian's prometheus-alertmanager package; scripts/test.sh installs it) on a free loopback
/// port with its own storage directory and clustering off: never the system's service, its port or its data.
/// </summary>
public sealed class AlertmanagerServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };
    private readonly List<string> _log = [];
    private static string? s_binary;

    private AlertmanagerServer(Process process, int port)
    {
        _process = process;
        Port = port;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Port { get; }

    public Uri BaseUrl => new($"http://127.0.0.1:{Port}/");

    public string Log
    {
        get
        {
            lock (_log)
            {
                return string.Join('\n', _log.TakeLast(60));
            }
        }
    }

    /// <summary>The server binary: Debian names it prometheus-alertmanager, upstream alertmanager. Throws (the test fails) when neither is installed.</summary>
    public static string Binary => s_binary ??= FindBinary();

    private static string FindBinary()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin";
        foreach (var name in new[] { "prometheus-alertmanager", "alertmanager" })
        {
            foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
            {
                var candidate = Path.Combine(dir, name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new InvalidOperationException("Alertmanager is not installed: run scripts/test.sh (it installs Debian's prometheus-alertmanager package)");
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_log)
            {
                _log.Add(line);
            }
        }
    }

    /// <summary>Starts Alertmanager with <paramref name="configFile"/>; its data lives in <paramref name="directory"/>.</summary>
    public static async Task<AlertmanagerServer> StartAsync(string directory, string configFile)
    {
        var port = AgentProcess.FreePort();
        var psi = new ProcessStartInfo(Binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        foreach (var a in new[]
                 {
                     "--config.file=" + configFile, "--storage.path=" + Path.Combine(directory, "data"), $"--web.listen-address=127.0.0.1:{port}",
                     $"--web.external-url=http://127.0.0.1:{port}", "--cluster.listen-address=",
                 })
        {
            psi.ArgumentList.Add(a);
        }

        var process = Process.Start(psi)!;
        var server = new AlertmanagerServer(process, port);
        await Poll.UntilAsync(async () =>
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException("alertmanager exited: " + server.Log);
            }

            try
            {
                using var r = await server._http.GetAsync(new Uri(server.BaseUrl, "-/ready"));
                return r.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, ok => ok, TimeSpan.FromSeconds(60), "Alertmanager ready");
        return server;
    }

    /// <summary>GET /api/v2/alerts: every alert it holds, with status.state (active, suppressed) and status.inhibitedBy.</summary>
    public async Task<JsonArray> AlertsAsync() =>
        JsonNode.Parse(await _http.GetStringAsync(new Uri(BaseUrl, "api/v2/alerts")))!.AsArray();

    /// <summary>GET /api/v2/alerts/groups: the groups per route and receiver (labels, receiver.name, alerts).</summary>
    public async Task<JsonArray> GroupsAsync() =>
        JsonNode.Parse(await _http.GetStringAsync(new Uri(BaseUrl, "api/v2/alerts/groups")))!.AsArray();

    /// <summary>POST /api/v2/alerts, as Prometheus does.</summary>
    public async Task PostAlertsAsync(JsonArray alerts)
    {
        using var content = new StringContent(alerts.ToJsonString(), Encoding.UTF8, "application/json");
        using var response = await _http.PostAsync(new Uri(BaseUrl, "api/v2/alerts"), content);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"Alertmanager refused the alerts ({(int)response.StatusCode}): {await response.Content.ReadAsStringAsync()}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
