using System.Security.Authentication;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using VastHostAgent.Metrics;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Metrics;

/// <summary>The exporter-toolkit web configuration: what node_exporter accepts is accepted, what it refuses is refused with the key named.</summary>
public sealed class WebConfigTests
{
    private static readonly string Hash = BCrypt.Net.BCrypt.HashPassword("s3cret", 4);

    [Fact]
    public void A_node_exporter_web_config_file_reads_as_is()
    {
        // The shape of the exporter-toolkit documentation's example (web-configuration.md), relative paths included.
        var config = WebConfig.Parse($"""
            # node_exporter --web.config.file
            tls_server_config:
              cert_file: certs/server.crt
              key_file: /etc/ssl/private/server.key
              client_auth_type: RequireAndVerifyClientCert
              client_ca_file: ca.pem
              min_version: TLS13
              prefer_server_cipher_suites: true
              curve_preferences: [X25519, CurveP256]
              client_allowed_sans: [prometheus.example.net]
            http_server_config:
              http2: false
              headers:
                Strict-Transport-Security: max-age=31536000
                X-Frame-Options: deny
            basic_auth_users:
              prometheus: '{Hash}'
              grafana: "{Hash}"
            """, "/etc/vast-host-agent");

        var tls = Assert.IsType<WebTlsConfig>(config.Tls);
        Assert.Equal("/etc/vast-host-agent/certs/server.crt", tls.CertFile);
        Assert.Equal("/etc/ssl/private/server.key", tls.KeyFile);
        Assert.Equal("/etc/vast-host-agent/ca.pem", tls.ClientCaFile);
        Assert.Equal(ClientAuthType.RequireAndVerifyClientCert, tls.ClientAuth);
        Assert.True(tls.RequiresClientCertificate && tls.VerifiesClients);
        Assert.Equal(SslProtocols.Tls13, tls.Protocols);
        Assert.Equal(["prometheus.example.net"], tls.ClientAllowedSans);
        Assert.False(config.Http2);
        Assert.Equal(["grafana", "prometheus"], config.BasicAuthUsers.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([new("Strict-Transport-Security", "max-age=31536000"), new KeyValuePair<string, string>("X-Frame-Options", "deny")], config.Headers);
    }

    [Fact]
    public void An_empty_file_is_plain_http_without_users_as_for_node_exporter()
    {
        Assert.Same(WebConfig.Plain, WebConfig.Parse("", "/"));
        Assert.Same(WebConfig.Plain, WebConfig.Parse("# nothing yet\n", "/"));
        var config = WebConfig.Parse("tls_server_config:\nbasic_auth_users:\n", "/");
        Assert.Null(config.Tls);
        Assert.Empty(config.BasicAuthUsers);
    }

    public static TheoryData<string, string, string> BadFiles => new()
    {
        { "plain-text password", "basic_auth_users:\n  prometheus: hunter2\n", "basic_auth_users.prometheus: not a bcrypt hash (plain-text passwords are refused" },
        { "truncated hash", "basic_auth_users:\n  prometheus: $2y$10$abc\n", "basic_auth_users.prometheus: not a bcrypt hash" },
        { "misspelt section", "tls_config:\n  cert_file: a\n", "tls_config: unknown key (known: tls_server_config, basic_auth_users, http_server_config)" },
        { "misspelt TLS key", "tls_server_config:\n  certfile: a\n  key_file: b\n", "tls_server_config.certfile: unknown key" },
        { "no key file", "tls_server_config:\n  cert_file: a.crt\n", "tls_server_config.key_file: missing" },
        { "client auth type", "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Required\n", "tls_server_config.client_auth_type: 'Required' is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert" },
        { "verify without a CA", "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n", "tls_server_config.client_ca_file: missing: client_auth_type RequireAndVerifyClientCert verifies" },
        { "a CA nothing verifies against", "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca.pem\n", "tls_server_config.client_ca_file: given, but client_auth_type NoClientCert verifies nothing" },
        { "TLS 1.0", "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n", "tls_server_config.min_version: TLS10 is not offered" },
        { "min above max", "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n", "tls_server_config.min_version: above max_version" },
        { "unknown cipher", "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_RSA_WITH_RC4]\n", "tls_server_config.cipher_suites: 'TLS_RSA_WITH_RC4' is not a TLS cipher suite name" },
        { "inline certificate", "tls_server_config:\n  cert: '-----BEGIN'\n", "tls_server_config.cert: inline PEM is not supported" },
        { "a header not allowed", "http_server_config:\n  headers:\n    Set-Cookie: a=b\n", "http_server_config.headers.Set-Cookie: not a header the web configuration may set" },
        { "http2 as a word", "http_server_config:\n  http2: maybe\n", "http_server_config.http2: 'maybe' is not true or false" },
        { "users as a list", "basic_auth_users:\n  - prometheus\n", "basic_auth_users: expected a mapping" },
        { "not YAML", "tls_server_config: [\n", "not valid YAML (line" },
        { "duplicate key", "basic_auth_users: {}\nbasic_auth_users: {}\n", "not valid YAML" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void A_bad_file_is_one_line_naming_the_key(string why, string yaml, string expected)
    {
        var ex = Assert.Throws<WebConfigException>(() => WebConfig.Parse(yaml, "/etc/vast-host-agent"));
        Assert.True(ex.Message.StartsWith(expected, StringComparison.Ordinal), $"{why}: {ex.Message}");
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void Certificate_problems_name_the_file_key()
    {
        var dir = TestEnvironment.NewTempDirectory("webcfg-pki");
        using var pki = new TestPki(dir);
        var (cert, key) = pki.Server("server");
        var (_, otherKey) = pki.Server("other");
        File.WriteAllText(Path.Combine(dir, "garbage.key"), "not a key");

        string Problem(string yaml)
        {
            var file = Path.Combine(dir, "web.yml");
            File.WriteAllText(file, yaml);
            return Assert.Throws<WebConfigException>(() => WebConfig.Load(file)).Message;
        }

        Assert.StartsWith("tls_server_config.cert_file: cannot read", Problem($"tls_server_config:\n  cert_file: missing.crt\n  key_file: {key}\n"), StringComparison.Ordinal);
        Assert.StartsWith("tls_server_config.key_file: cannot read", Problem($"tls_server_config:\n  cert_file: {cert}\n  key_file: missing.key\n"), StringComparison.Ordinal);
        Assert.StartsWith("tls_server_config.key_file:", Problem($"tls_server_config:\n  cert_file: {cert}\n  key_file: garbage.key\n"), StringComparison.Ordinal);
        Assert.StartsWith("tls_server_config.key_file:", Problem($"tls_server_config:\n  cert_file: {cert}\n  key_file: {otherKey}\n"), StringComparison.Ordinal);
        Assert.StartsWith("tls_server_config.client_ca_file: ", Problem($"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: garbage.key\n"), StringComparison.Ordinal);

        // Relative to the file's own directory, and a good pair loads.
        var good = Path.Combine(dir, "good.yml");
        File.WriteAllText(good, $"tls_server_config:\n  cert_file: {Path.GetFileName(cert)}\n  key_file: {Path.GetFileName(key)}\n");
        Assert.Equal(cert, WebConfig.Load(good).Tls!.CertFile);
    }

    [Fact]
    public void Basic_auth_accepts_the_right_password_only_and_a_cached_success_lets_no_other_password_in()
    {
        var dir = TestEnvironment.NewTempDirectory("webcfg-auth");
        var file = Path.Combine(dir, "web.yml");
        File.WriteAllText(file, $"basic_auth_users:\n  prometheus: '{Hash}'\n");
        using var security = new EndpointSecurity(Options.Create(new MetricsOptions { WebConfigFile = file }), NullLogger<EndpointSecurity>.Instance);
        var config = security.Current;

        Assert.True(security.Verify(config, "prometheus", "s3cret"));
        Assert.True(security.Verify(config, "prometheus", "s3cret")); // from the cache
        Assert.False(security.Verify(config, "prometheus", "s3cret "));
        Assert.False(security.Verify(config, "prometheus", ""));
        Assert.False(security.Verify(config, "Prometheus", "s3cret"));
        Assert.False(security.Verify(config, "nobody", "s3cret"));
        Assert.False(security.Verify(config, "nobody", "vast-host-agent")); // the dummy hash's own password is no way in
    }
}
