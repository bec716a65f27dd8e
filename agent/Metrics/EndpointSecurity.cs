using System.Collections.Concurrent;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace VastHostAgent.Metrics;

/// <summary>
/// The endpoint's TLS, client certificates, basic auth and response headers from <c>metrics.webConfigFile</c>
/// (the exporter-toolkit format). As with node_exporter the file is looked at again on every request and
/// every TLS handshake (one <c>stat</c> each): a renewed certificate, a new user or a new header applies at once,
/// without a restart. A change that does not load (a certificate half written, a typo) keeps the last good
/// configuration and says so once. Whether the endpoint speaks TLS at all is decided at start (and on SIGHUP).
/// </summary>
public sealed partial class EndpointSecurity : IDisposable
{
    /// <summary>The Go TLS 1.3 suites (fixed in Go; added to a configured TLS 1.2 list so that TLS 1.3 still works).</summary>
    private static readonly TlsCipherSuite[] Tls13Suites =
        [TlsCipherSuite.TLS_AES_128_GCM_SHA256, TlsCipherSuite.TLS_AES_256_GCM_SHA384, TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256];

    /// <summary>Verified (user, password) pairs, as SHA-256 digests: bcrypt is slow by design, a scrape every 15 s should not pay it.</summary>
    private readonly ConcurrentDictionary<string, byte> _verified = new(StringComparer.Ordinal);
    private readonly string? _path;
    private readonly bool _healthzOpen;
    private readonly ILogger<EndpointSecurity> _logger;
    private readonly Lock _gate = new();
    private readonly string _dummyHash;

    private FileStamp _fileStamp;
    private WebConfig _config;
    private TlsState? _tls;
    private string? _lastProblem;

    public EndpointSecurity(IOptions<MetricsOptions> options, ILogger<EndpointSecurity> logger)
    {
        _logger = logger;
        _path = string.IsNullOrEmpty(options.Value.WebConfigFile) ? null : options.Value.WebConfigFile;
        _healthzOpen = options.Value.HealthzWithoutAuth;
        _fileStamp = _path is null ? default : FileStamp.Of(_path);
        _config = _path is null ? WebConfig.Plain : WebConfig.Load(_path); // validated before the host was built
        _dummyHash = BCrypt.Net.BCrypt.HashPassword("vast-host-agent", 10);
        UsesTls = _config.Tls is not null;
        Http2 = _config.Http2;
    }

    /// <summary>The endpoint speaks TLS (fixed for the life of the host).</summary>
    public bool UsesTls { get; }

    /// <summary>HTTP/2 is offered (over TLS, by ALPN).</summary>
    public bool Http2 { get; }

    /// <summary>The configuration in force (the last one that loaded).</summary>
    public WebConfig Current
    {
        get
        {
            Refresh();
            return _config;
        }
    }

    /// <summary>The TLS options for one new connection: the certificate on disk now and the client rules in force.</summary>
    public SslServerAuthenticationOptions ServerOptions()
    {
        Refresh();
        lock (_gate)
        {
            var tls = _config.Tls ?? throw new InvalidOperationException("the web configuration no longer has tls_server_config: restart or reload the agent to serve plain HTTP");
            if (_tls is null || _tls.Config != tls || _tls.Stamp != TlsStamp(tls))
            {
                try
                {
                    // The state before is not disposed: a handshake may still be using it (the GC releases it).
                    var next = TlsState.Create(tls, TlsStamp(tls), Http2);
                    _tls = next;
                    Log.CertificateLoaded(_logger, tls.CertFile, next.Certificate.Subject, next.Certificate.NotAfter.ToUniversalTime());
                }
                catch (WebConfigException ex) when (_tls is not null)
                {
                    Problem($"{ex.Message} (serving the certificate loaded before)");
                }
            }

            return _tls.Options;
        }
    }

    /// <summary>Sets the configured headers; answers 401 when basic auth is configured and the request does not pass it.</summary>
    /// <returns>True when the request may go on.</returns>
    public bool Admit(HttpContext context)
    {
        var config = Current;
        foreach (var (name, value) in config.Headers)
        {
            context.Response.Headers[name] = value;
        }

        if (config.BasicAuthUsers.Count == 0 || (_healthzOpen && context.Request.Path.Equals("/healthz", StringComparison.Ordinal)))
        {
            return true;
        }

        if (TryCredentials(context.Request.Headers.Authorization.ToString(), out var user, out var password) && Verify(config, user, password))
        {
            return true;
        }

        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        context.Response.Headers.WWWAuthenticate = "Basic";
        return false;
    }

    /// <summary>Checks a password against the user's bcrypt hash; unknown users cost the same bcrypt work as known ones.</summary>
    internal bool Verify(WebConfig config, string user, string password)
    {
        var known = config.BasicAuthUsers.TryGetValue(user, out var hash);
        var key = CacheKey(user, password, hash ?? _dummyHash);
        if (known && _verified.ContainsKey(key))
        {
            return true;
        }

        bool ok;
        try
        {
            ok = BCrypt.Net.BCrypt.Verify(password, hash ?? _dummyHash) && known;
        }
        catch (BCrypt.Net.SaltParseException)
        {
            ok = false;
        }

        if (ok)
        {
            if (_verified.Count >= 64)
            {
                _verified.Clear();
            }

            _verified.TryAdd(key, 0);
        }

        return ok;
    }

    private static string CacheKey(string user, string password, string hash) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{user}\0{password}\0{hash}")));

    private static bool TryCredentials(string header, out string user, out string password)
    {
        user = password = "";
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[768];
        if (header.Length - 6 > 1024 || !Convert.TryFromBase64String(header[6..].Trim(), bytes, out var written))
        {
            return false;
        }

        var text = Encoding.UTF8.GetString(bytes[..written]);
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon < 0)
        {
            return false;
        }

        (user, password) = (text[..colon], text[(colon + 1)..]);
        return true;
    }

    /// <summary>Reads the file again when it changed on disk (one stat); keeps the last good configuration when the new one does not load.</summary>
    private void Refresh()
    {
        if (_path is null)
        {
            return;
        }

        var stamp = FileStamp.Of(_path);
        if (stamp == _fileStamp)
        {
            return;
        }

        lock (_gate)
        {
            if (stamp == _fileStamp)
            {
                return;
            }

            try
            {
                var next = WebConfig.Load(_path);
                if ((next.Tls is null) != (_config.Tls is null))
                {
                    Problem("tls_server_config was " + (next.Tls is null ? "removed" : "added") + ": the endpoint keeps its scheme until the agent is reloaded (SIGHUP) or restarted; users and headers apply now");
                    next = next with { Tls = _config.Tls };
                }

                _config = next;
                _verified.Clear();
                _lastProblem = null;
                Log.Reloaded(_logger, _path);
            }
            catch (WebConfigException ex)
            {
                Problem($"{ex.Message} (keeping the configuration loaded before)");
            }

            _fileStamp = stamp;
        }
    }

    private void Problem(string problem)
    {
        if (!string.Equals(problem, _lastProblem, StringComparison.Ordinal))
        {
            _lastProblem = problem;
            Log.ReloadFailed(_logger, _path ?? "", problem);
        }
    }

    private static (FileStamp, FileStamp) TlsStamp(WebTlsConfig tls) => (FileStamp.Of(tls.CertFile), FileStamp.Of(tls.KeyFile));

    public void Dispose()
    {
        lock (_gate)
        {
            _tls?.Dispose();
            _tls = null;
        }
    }

    /// <summary>What identifies a file's content cheaply: its change time, modification time, size and inode.</summary>
    private readonly record struct FileStamp(DateTime Modified, long Length, bool Exists)
    {
        public static FileStamp Of(string path)
        {
            var info = new FileInfo(path);
            return info.Exists ? new(info.LastWriteTimeUtc, info.Length, true) : default;
        }
    }

    /// <summary>One loaded certificate and the options built on it.</summary>
    private sealed class TlsState : IDisposable
    {
        private readonly X509Certificate2Collection? _clientCas;

        private TlsState(WebTlsConfig config, (FileStamp, FileStamp) stamp, X509Certificate2 certificate, X509Certificate2Collection? clientCas, SslServerAuthenticationOptions options)
        {
            Config = config;
            Stamp = stamp;
            Certificate = certificate;
            _clientCas = clientCas;
            Options = options;
        }

        public WebTlsConfig Config { get; }

        public (FileStamp, FileStamp) Stamp { get; }

        public X509Certificate2 Certificate { get; }

        public SslServerAuthenticationOptions Options { get; }

        public static TlsState Create(WebTlsConfig config, (FileStamp, FileStamp) stamp, bool http2)
        {
            var certificate = WebConfig.LoadCertificate(config);
            X509Certificate2Collection? cas = null;
            try
            {
                cas = config.ClientCaFile is { } file ? WebConfig.LoadClientCas(file) : null;
            }
            catch
            {
                certificate.Dispose();
                throw;
            }

            var options = new SslServerAuthenticationOptions
            {
                ServerCertificateContext = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true),
                EnabledSslProtocols = config.Protocols,
                ClientCertificateRequired = config.ClientAuth != ClientAuthType.NoClientCert,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                ApplicationProtocols = http2 ? [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11] : [SslApplicationProtocol.Http11],
                CipherSuitesPolicy = config.CipherSuites is { } suites ? new CipherSuitesPolicy(suites.Concat(Tls13Suites).Distinct()) : null,
            };
            if (config.ClientAuth != ClientAuthType.NoClientCert)
            {
                options.RemoteCertificateValidationCallback = (_, client, _, _) => Accept(config, cas, client);
            }

            return new TlsState(config, stamp, certificate, cas, options);
        }

        /// <summary>Go's rules per client_auth_type: a missing certificate is refused only where one is required;
        /// a given one must chain to the client CAs (for client authentication) where verification is asked for.</summary>
        private static bool Accept(WebTlsConfig config, X509Certificate2Collection? cas, X509Certificate? client)
        {
            if (client is null)
            {
                return !config.RequiresClientCertificate;
            }

            if (!config.VerifiesClients || cas is null)
            {
                return true;
            }

            using var certificate = new X509Certificate2(client);
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(cas);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.2")); // client authentication
            if (!chain.Build(certificate))
            {
                return false;
            }

            return config.ClientAllowedSans.Count == 0 || SubjectAlternativeNames(certificate).Any(san => config.ClientAllowedSans.Contains(san, StringComparer.Ordinal));
        }

        private static IEnumerable<string> SubjectAlternativeNames(X509Certificate2 certificate)
        {
            foreach (var extension in certificate.Extensions)
            {
                if (extension is X509SubjectAlternativeNameExtension san)
                {
                    foreach (var dns in san.EnumerateDnsNames())
                    {
                        yield return dns;
                    }

                    foreach (var ip in san.EnumerateIPAddresses())
                    {
                        yield return ip.ToString();
                    }
                }
            }
        }

        public void Dispose()
        {
            Options.ServerCertificateContext = null;
            Certificate.Dispose();
            if (_clientCas is not null)
            {
                foreach (var ca in _clientCas)
                {
                    ca.Dispose();
                }
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(9100, LogLevel.Information, "metrics.webConfigFile: serving the certificate {CertFile} ({Subject}, valid until {NotAfter:u})")]
        public static partial void CertificateLoaded(ILogger logger, string certFile, string subject, DateTime notAfter);

        [LoggerMessage(9101, LogLevel.Information, "metrics.webConfigFile: {Path} changed; its users, headers and TLS settings apply from now on")]
        public static partial void Reloaded(ILogger logger, string path);

        [LoggerMessage(9102, LogLevel.Warning, "metrics.webConfigFile: {Path}: {Problem}")]
        public static partial void ReloadFailed(ILogger logger, string path, string problem);
    }
}
