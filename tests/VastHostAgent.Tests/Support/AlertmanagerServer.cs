using System.Text;
using System.Text.Json.Nodes;

namespace VastHostAgent.Tests.Support;

/// <summary>
/// A real Alertmanager (Debian's prometheus-alertmanager package; scripts/test.sh installs it) on a free loopback
/// port with its own storage directory and clustering off: never the system's service, its port or its data.
/// </summary>
public sealed class AlertmanagerServer : IAsyncDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };
    private static string? s_binary;
    private ServerProcess? _process;

    private AlertmanagerServer(int port)
    {
        Port = port;
    }

    public int Port { get; }

    public Uri BaseUrl => new($"http://127.0.0.1:{Port}/");

    public string Log => _process?.Tail(60) ?? "";

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

    /// <summary>Starts Alertmanager with <paramref name="configFile"/>; its data lives in <paramref name="directory"/>.</summary>
    public static async Task<AlertmanagerServer> StartAsync(string directory, string configFile)
    {
        var server = new AlertmanagerServer(AgentProcess.FreePort());
        string[] args =
        [
            "--config.file=" + configFile, "--storage.path=" + Path.Combine(directory, "data"), $"--web.listen-address=127.0.0.1:{server.Port}",
            $"--web.external-url=http://127.0.0.1:{server.Port}", "--cluster.listen-address=",
        ];
        server._process = await ServerProcess.StartAsync("alertmanager", Binary, args, directory, server.BaseUrl, server._http);
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
        if (_process is not null)
        {
            await _process.DisposeAsync();
        }
    }
}
