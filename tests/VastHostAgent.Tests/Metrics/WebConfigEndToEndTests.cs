using System.Globalization;
using System.Text.Json.Nodes;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Metrics;

/// <summary>
/// The NativeAOT agent with <c>metrics.webConfigFile</c>, seen from outside: a real Prometheus scraping over TLS with
/// basic auth, curl as the wrong user and without the client certificate, and a certificate renewed on disk.
/// </summary>
public sealed class WebConfigEndToEndTests
{
    private const string Password = "correct horse battery staple";
    private static readonly string Hash = BCrypt.Net.BCrypt.HashPassword(Password, 10);

    [Fact]
    public async Task Prometheus_scrapes_over_TLS_with_basic_auth_from_a_node_exporter_web_config_and_a_wrong_password_gets_401()
    {
        var dir = TestEnvironment.NewTempDirectory("webcfg-tls");
        using var pki = new TestPki(dir);
        var (cert, key) = pki.Server("rig-01");
        var web = Path.Combine(dir, "web-config.yml");
        // The file as a host has it for node_exporter: relative certificate paths, a bcrypt user, security headers.
        await File.WriteAllTextAsync(web, $"""
            tls_server_config:
              cert_file: {Path.GetFileName(cert)}
              key_file: {Path.GetFileName(key)}
            basic_auth_users:
              prometheus: {Hash}
            http_server_config:
              headers:
                X-Frame-Options: deny
                Strict-Transport-Security: max-age=31536000
            """);
        await using var agent = Start(dir, web);
        var url = $"https://127.0.0.1:{agent.Port}";
        var ok = await UntilAnswerAsync(agent, ["--cacert", pki.CaFile, "-u", $"prometheus:{Password}", url + "/metrics"], 200);
        Assert.Contains("vasthost_collector_up{collector=\"gpu\"} 1", ok.Body, StringComparison.Ordinal);
        Assert.Contains("x-frame-options: deny", ok.Headers, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("strict-transport-security: max-age=31536000", ok.Headers, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("metrics at https://127.0.0.1:", agent.StandardOutput, StringComparison.Ordinal);

        var wrong = await CurlAsync(["--cacert", pki.CaFile, "-u", "prometheus:Tr0ub4dor&3", url + "/metrics"]);
        Assert.Equal(401, wrong.Status);
        Assert.Contains("www-authenticate: Basic", wrong.Headers, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("vasthost_", wrong.Body, StringComparison.Ordinal);
        Assert.Equal(401, (await CurlAsync(["--cacert", pki.CaFile, "-u", $"grafana:{Password}", url + "/metrics"])).Status);
        Assert.Equal(401, (await CurlAsync(["--cacert", pki.CaFile, url + "/healthz"])).Status);   // not open unless configured
        Assert.Equal(401, (await CurlAsync(["--cacert", pki.CaFile, url + "/api/status"])).Status);
        Assert.Null((await CurlAsync([$"http://127.0.0.1:{agent.Port}/metrics", "-u", $"prometheus:{Password}"])).Status); // no plain HTTP on a TLS port

        // A real Prometheus: the right credentials and CA bring the target up; a wrong password is a down target that says 401.
        var passwordFile = Path.Combine(dir, "password");
        var wrongFile = Path.Combine(dir, "wrong-password");
        await File.WriteAllTextAsync(passwordFile, Password);
        await File.WriteAllTextAsync(wrongFile, "guess");
        await using var prometheus = await PrometheusServer.StartAsync(TestEnvironment.NewTempDirectory("webcfg-prom"), $$"""
            global: { scrape_interval: 1s, scrape_timeout: 1s }
            scrape_configs:
              - job_name: rig
                scheme: https
                tls_config: { ca_file: {{pki.CaFile}} }
                basic_auth: { username: prometheus, password_file: {{passwordFile}} }
                static_configs: [ { targets: ["127.0.0.1:{{agent.Port}}"] } ]
              - job_name: wrong-password
                scheme: https
                tls_config: { ca_file: {{pki.CaFile}} }
                basic_auth: { username: prometheus, password_file: {{wrongFile}} }
                static_configs: [ { targets: ["127.0.0.1:{{agent.Port}}"] } ]
            """);
        var rig = await UntilTargetAsync(prometheus, "rig", t => (string?)t["health"] == "up");
        Assert.StartsWith("https://", (string?)rig["scrapeUrl"], StringComparison.Ordinal);
        var refused = await UntilTargetAsync(prometheus, "wrong-password", t => (string?)t["health"] == "down");
        Assert.Contains("401", (string?)refused["lastError"], StringComparison.Ordinal);
        var gpus = await Poll.UntilAsync(() => prometheus.QueryAsync("vasthost_gpus{job=\"rig\",state=\"nvml\"}"), r => r.Count == 1, TimeSpan.FromSeconds(30), "a GPU series scraped over TLS");
        Assert.Equal("2", (string?)gpus[0]!["value"]![1]);
    }

    [Fact]
    public async Task A_required_client_certificate_refuses_the_handshake_without_one_and_one_from_another_CA()
    {
        var dir = TestEnvironment.NewTempDirectory("webcfg-mtls");
        using var pki = new TestPki(dir, "Rig CA");
        using var stranger = new TestPki(TestEnvironment.NewTempDirectory("webcfg-stranger"), "Stranger CA");
        var (cert, key) = pki.Server("rig-02");
        var (clientCert, clientKey) = pki.Client("prometheus");
        var (strangerCert, strangerKey) = stranger.Client("prometheus");
        var web = Path.Combine(dir, "web-config.yml");
        await File.WriteAllTextAsync(web, $"""
            tls_server_config:
              cert_file: {cert}
              key_file: {key}
              client_auth_type: RequireAndVerifyClientCert
              client_ca_file: {pki.CaFile}
              min_version: TLS12
            """);
        await using var agent = Start(dir, web);
        var url = $"https://127.0.0.1:{agent.Port}/metrics";
        var ok = await UntilAnswerAsync(agent, ["--cacert", pki.CaFile, "--cert", clientCert, "--key", clientKey, url], 200);
        Assert.Contains("vasthost_", ok.Body, StringComparison.Ordinal);

        var without = await CurlAsync(["--cacert", pki.CaFile, url]);
        Assert.Null(without.Status);
        Assert.NotEqual(0, without.ExitCode);
        var foreign = await CurlAsync(["--cacert", pki.CaFile, "--cert", strangerCert, "--key", strangerKey, url]);
        Assert.Null(foreign.Status);
        Assert.NotEqual(0, foreign.ExitCode);

        // TLS 1.2 and 1.3 both carry the client certificate; a TLS 1.1 client is refused.
        Assert.Equal(200, (await CurlAsync(["--tlsv1.2", "--tls-max", "1.2", "--cacert", pki.CaFile, "--cert", clientCert, "--key", clientKey, url])).Status);
        Assert.Null((await CurlAsync(["--tlsv1.1", "--tls-max", "1.1", "--cacert", pki.CaFile, "--cert", clientCert, "--key", clientKey, url])).Status);
        Assert.False(agent.HasExited);
    }

    [Fact]
    public async Task An_expired_certificate_renewed_on_disk_is_served_from_the_next_handshake_without_a_restart()
    {
        var dir = TestEnvironment.NewTempDirectory("webcfg-renew");
        using var pki = new TestPki(dir);
        var (cert, key) = pki.Server("rig-03", DateTimeOffset.UtcNow.AddDays(-90), DateTimeOffset.UtcNow.AddDays(-1));
        var web = Path.Combine(dir, "web-config.yml");
        await File.WriteAllTextAsync(web, $"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n");
        await using var agent = Start(dir, web);
        // The agent serves what is on disk, expired or not (as node_exporter does): the scraper refuses it.
        await UntilAnswerAsync(agent, ["-k", $"https://127.0.0.1:{agent.Port}/healthz"], 200);

        await using var prometheus = await PrometheusServer.StartAsync(TestEnvironment.NewTempDirectory("webcfg-renew-prom"), $$"""
            global: { scrape_interval: 1s, scrape_timeout: 1s }
            scrape_configs:
              - job_name: rig
                scheme: https
                tls_config: { ca_file: {{pki.CaFile}} }
                static_configs: [ { targets: ["127.0.0.1:{{agent.Port}}"] } ]
            """);
        var expired = await UntilTargetAsync(prometheus, "rig", t => (string?)t["health"] == "down");
        Assert.Contains("expired", (string?)expired["lastError"], StringComparison.OrdinalIgnoreCase);

        // Renewal writes new files in place (write, then rename, as certbot does); nothing is restarted or signalled.
        pki.Server("rig-03");
        await UntilTargetAsync(prometheus, "rig", t => (string?)t["health"] == "up");
        Assert.False(agent.HasExited);
        Assert.Contains("serving the certificate", agent.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Healthz_can_stay_open_and_a_user_added_to_the_file_gets_in_without_a_restart()
    {
        var dir = TestEnvironment.NewTempDirectory("webcfg-users");
        var web = Path.Combine(dir, "web-config.yml");
        await File.WriteAllTextAsync(web, $"basic_auth_users:\n  prometheus: '{Hash}'\n");
        await using var agent = Start(dir, web, ("VASTHOST_METRICS__HEALTHZWITHOUTAUTH", "true"));
        var url = $"http://127.0.0.1:{agent.Port}";
        await UntilAnswerAsync(agent, [url + "/healthz"], 200);
        Assert.Equal(401, (await CurlAsync([url + "/metrics"])).Status);
        Assert.Equal(401, (await CurlAsync([url + "/"])).Status);
        Assert.Equal(401, (await CurlAsync(["-u", "grafana:grafana-pass", url + "/metrics"])).Status);

        TestPki.WriteAtomically(web, $"basic_auth_users:\n  prometheus: '{Hash}'\n  grafana: '{BCrypt.Net.BCrypt.HashPassword("grafana-pass", 10)}'\n");
        Assert.Equal(200, (await CurlAsync(["-u", "grafana:grafana-pass", url + "/metrics"])).Status);
        Assert.Equal(200, (await CurlAsync(["-u", $"prometheus:{Password}", url + "/metrics"])).Status);

        // A broken edit keeps the users that worked, and says so once.
        TestPki.WriteAtomically(web, "basic_auth_users:\n  grafana: grafana-pass\n");
        Assert.Equal(200, (await CurlAsync(["-u", "grafana:grafana-pass", url + "/metrics"])).Status);
        Assert.Equal(401, (await CurlAsync(["-u", "grafana:wrong", url + "/metrics"])).Status);
        Assert.Contains("basic_auth_users.grafana: not a bcrypt hash", agent.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("grafana-pass", agent.StandardOutput + agent.StandardError, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string> BadWebConfigs => new()
    {
        { "plain-text password", "basic_auth_users:\n  prometheus: hunter2\n", "basic_auth_users.prometheus: not a bcrypt hash" },
        { "key file missing", "tls_server_config:\n  cert_file: server.crt\n  key_file: nowhere.key\n", "tls_server_config.key_file: cannot read" },
        { "not YAML", "tls_server_config: [\n", "not valid YAML" },
        { "unknown key", "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth: RequireAndVerifyClientCert\n", "tls_server_config.client_auth: unknown key" },
    };

    [Theory]
    [MemberData(nameof(BadWebConfigs))]
    public async Task A_bad_web_config_exits_2_with_one_line_naming_the_key_before_anything_listens(string why, string yaml, string expected)
    {
        var dir = TestEnvironment.NewTempDirectory("webcfg-bad");
        using var pki = new TestPki(dir);
        var (cert, _) = pki.Server("server");
        Assert.EndsWith("server.crt", cert, StringComparison.Ordinal);
        var web = Path.Combine(dir, "web-config.yml");
        await File.WriteAllTextAsync(web, yaml);
        var config = Path.Combine(dir, "agent.json");
        var port = AgentProcess.FreePort();
        await File.WriteAllTextAsync(config, $$"""{ "metrics": { "listenAddress": "127.0.0.1:{{port}}", "webConfigFile": "{{web}}" }, "gpu": { "enabled": false } }""");

        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(["run", "--config", config], timeout: TimeSpan.FromSeconds(20));

        Assert.True(exit == 2, $"{why}: exit {exit}, stderr: {stderr}, stdout: {stdout}");
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: invalid configuration ({config}): metrics.webConfigFile: {web}: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", line, StringComparison.Ordinal);
        Assert.Equal("", stdout.Trim());
    }

    private static AgentProcess Start(string dir, string webConfig, params (string Key, string Value)[] environment)
    {
        var config = new AgentConfig
        {
            WorkDirectory = dir,
            FakeNvmlState = new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "2" }).Path,
            Environment = { ["VASTHOST_METRICS__WEBCONFIGFILE"] = webConfig },
        };
        foreach (var (k, v) in environment)
        {
            config.Environment[k] = v;
        }

        return AgentProcess.Start(config);
    }

    private sealed record CurlResult(int ExitCode, int? Status, string Headers, string Body, string Error);

    /// <summary>curl with the headers on stdout; Status is null when no HTTP answer came (a refused handshake).</summary>
    private static async Task<CurlResult> CurlAsync(string[] args)
    {
        var (exit, stdout, stderr) = await Tools.RunAsync("curl", ["-sS", "-i", "--max-time", "10", .. args]);
        var split = stdout.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var headers = split < 0 ? stdout : stdout[..split];
        var body = split < 0 ? "" : stdout[(split + 4)..];
        int? status = headers.StartsWith("HTTP/", StringComparison.Ordinal) && headers.Split(' ', 3) is [_, var code, ..]
            ? int.Parse(code, CultureInfo.InvariantCulture)
            : null;
        return new CurlResult(exit, status, headers, body, stderr);
    }

    private static Task<CurlResult> UntilAnswerAsync(AgentProcess agent, string[] args, int status) =>
        Poll.UntilAsync(
            async () => agent.HasExited ? throw new InvalidOperationException($"agent exited: {agent.StandardError} {agent.StandardOutput}") : await CurlAsync(args),
            r => r.Status == status && (!args[^1].EndsWith("/metrics", StringComparison.Ordinal) || r.Body.Contains("collector=\"gpu\"", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(30), $"HTTP {status} from {args[^1]}");

    private static async Task<JsonNode> UntilTargetAsync(PrometheusServer prometheus, string job, Func<JsonNode, bool> done) =>
        (await Poll.UntilAsync(
            async () => (await prometheus.GetAsync("api/v1/targets"))["activeTargets"]!.AsArray().FirstOrDefault(t => (string?)t!["labels"]!["job"] == job),
            t => t is not null && done(t), TimeSpan.FromSeconds(30), $"target {job}"))!;
}
