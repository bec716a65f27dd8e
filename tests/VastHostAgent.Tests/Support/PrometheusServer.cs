using System.Text.Json.Nodes;

namespace VastHostAgent.Tests.Support;

/// <summary>A real Prometheus server (Debian's package) on a free loopback port, with a private TSDB; queried over its HTTP API.</summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };
    private ServerProcess? _process;

    private PrometheusServer(int port, string directory)
    {
        Port = port;
        Directory = directory;
    }

    public int Port { get; }

    public string Directory { get; }

    public Uri BaseUrl => new($"http://127.0.0.1:{Port}/");

    public string Log => _process?.Tail(40) ?? "";

    /// <summary>
    /// Starts Prometheus with the given prometheus.yml text (and rule files placed in the same directory by the caller);
    /// <paramref name="extraArgs"/> go on its command line after the test's own flags.
    /// </summary>
    public static async Task<PrometheusServer> StartAsync(string directory, string configYaml, params string[] extraArgs)
    {
        var config = Path.Combine(directory, "prometheus.yml");
        await File.WriteAllTextAsync(config, configYaml);
        var server = new PrometheusServer(AgentProcess.FreePort(), directory);
        string[] args =
        [
            "--config.file=" + config, "--storage.tsdb.path=" + Path.Combine(directory, "tsdb"), $"--web.listen-address=127.0.0.1:{server.Port}",
            "--log.level=warn", "--web.enable-lifecycle", .. extraArgs,
        ];
        try
        {
            server._process = await ServerProcess.StartAsync("prometheus", "prometheus", args, directory, server.BaseUrl, server._http);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            server._http.Dispose();
            throw new InvalidOperationException("prometheus is not installed: run scripts/test.sh (it installs Debian's prometheus package)", ex);
        }

        return server;
    }

    /// <summary>An instant query; returns the result array (vector) or a one-element array for a scalar. Throws on a query error.</summary>
    public async Task<JsonArray> QueryAsync(string promql)
    {
        var url = new Uri(BaseUrl, "api/v1/query?query=" + Uri.EscapeDataString(promql));
        using var response = await _http.GetAsync(url);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        if ((string?)body["status"] != "success")
        {
            throw new InvalidOperationException($"query failed ({(string?)body["errorType"]}: {(string?)body["error"]}): {promql}");
        }

        var data = body["data"]!;
        return (string?)data["resultType"] switch
        {
            "vector" or "matrix" => data["result"]!.AsArray(),
            _ => [data["result"]!.DeepClone()],
        };
    }

    /// <summary>Replaces prometheus.yml and reloads it (POST /-/reload); throws when Prometheus rejects the new configuration.</summary>
    public async Task ReloadAsync(string configYaml)
    {
        await File.WriteAllTextAsync(Path.Combine(Directory, "prometheus.yml"), configYaml);
        using var response = await _http.PostAsync(new Uri(BaseUrl, "-/reload"), null);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"Prometheus refused the reload ({(int)response.StatusCode}): {await response.Content.ReadAsStringAsync()}\n{Log}");
        }
    }

    public async Task<JsonNode> GetAsync(string path) =>
        JsonNode.Parse(await _http.GetStringAsync(new Uri(BaseUrl, path)))!["data"]!;

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        if (_process is not null)
        {
            await _process.DisposeAsync();
        }
    }
}
