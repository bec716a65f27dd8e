using System.Globalization;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace VastHostAgent.Metrics;

/// <summary>Go's <c>tls.ClientAuthType</c> names, as the exporter-toolkit web configuration spells them.</summary>
public enum ClientAuthType
{
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

/// <summary><c>tls_server_config</c>: the certificate files (paths made absolute) and what is asked of clients.</summary>
public sealed record WebTlsConfig(
    string CertFile,
    string KeyFile,
    ClientAuthType ClientAuth,
    string? ClientCaFile,
    SslProtocols Protocols,
    IReadOnlyList<TlsCipherSuite>? CipherSuites,
    IReadOnlyList<string> ClientAllowedSans)
{
    /// <summary>Whether a client certificate, when one is given, must chain to <see cref="ClientCaFile"/>.</summary>
    public bool VerifiesClients => ClientAuth is ClientAuthType.VerifyClientCertIfGiven or ClientAuthType.RequireAndVerifyClientCert;

    /// <summary>Whether a client without a certificate is refused.</summary>
    public bool RequiresClientCertificate => ClientAuth is ClientAuthType.RequireAnyClientCert or ClientAuthType.RequireAndVerifyClientCert;
}

/// <summary>
/// The Prometheus exporter-toolkit web configuration (the file node_exporter's <c>--web.config.file</c> takes):
/// TLS, client certificates, basic-auth users with bcrypt hashes and extra response headers. Read by
/// <see cref="Parse"/>, which refuses what the toolkit refuses and names the key in one line.
/// </summary>
public sealed record WebConfig(
    WebTlsConfig? Tls,
    IReadOnlyDictionary<string, string> BasicAuthUsers,
    IReadOnlyList<KeyValuePair<string, string>> Headers,
    bool Http2)
{
    /// <summary>No TLS, no users, no headers: what an empty file means (as for node_exporter).</summary>
    public static readonly WebConfig Plain = new(null, new Dictionary<string, string>(StringComparer.Ordinal), [], true);

    /// <summary>The response headers the toolkit lets a host set (any other name is refused).</summary>
    public static readonly IReadOnlyList<string> AllowedHeaders =
        ["Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "X-XSS-Protection", "Content-Security-Policy"];

    private static readonly string[] ClientAuthNames = Enum.GetNames<ClientAuthType>();

    /// <summary>A bcrypt hash as htpasswd -B, Python's bcrypt and Go's x/crypto/bcrypt write it.</summary>
    private static readonly Regex BcryptHash = new(@"^\$2[abxy]?\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    /// <summary>Reads and checks the file; certificate and key files are loaded once to prove they work together.</summary>
    /// <exception cref="WebConfigException">Anything wrong, with the key it concerns.</exception>
    public static WebConfig Load(string path)
    {
        string text;
        try
        {
            var info = new FileInfo(path);
            if (info.Exists && info.Length > 1 << 20)
            {
                throw new WebConfigException(null, "larger than 1 MiB: not a web configuration file");
            }

            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new WebConfigException(null, $"cannot read it: {ex.Message}");
        }

        var config = Parse(text, Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/");
        if (config.Tls is { } tls)
        {
            using var _ = LoadCertificate(tls);
            if (tls.ClientCaFile is { } ca)
            {
                foreach (var certificate in LoadClientCas(ca))
                {
                    certificate.Dispose();
                }
            }
        }

        return config;
    }

    /// <summary>Parses the YAML; relative file paths are taken from <paramref name="baseDirectory"/> (the file's own, as the toolkit does).</summary>
    public static WebConfig Parse(string text, string baseDirectory)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (Exception ex) when (ex is YamlException or ArgumentException)
        {
            var where = ex is YamlException y ? string.Create(CultureInfo.InvariantCulture, $" (line {y.Start.Line}, column {y.Start.Column})") : "";
            throw new WebConfigException(null, $"not valid YAML{where}: {(ex.InnerException ?? ex).Message}");
        }

        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" })
        {
            return Plain;
        }

        if (stream.Documents.Count > 1)
        {
            throw new WebConfigException(null, "holds more than one YAML document");
        }

        var root = Mapping(stream.Documents[0].RootNode, "(the file)");
        WebTlsConfig? tls = null;
        var users = new Dictionary<string, string>(StringComparer.Ordinal);
        var headers = new List<KeyValuePair<string, string>>();
        var http2 = true;
        foreach (var (key, value) in Entries(root, ""))
        {
            switch (key)
            {
                case "tls_server_config":
                    tls = value is YamlScalarNode { Value: null or "" } ? null : ParseTls(Mapping(value, key), baseDirectory);
                    break;
                case "basic_auth_users":
                    if (value is YamlScalarNode { Value: null or "" })
                    {
                        break;
                    }

                    foreach (var (user, hashNode) in Entries(Mapping(value, key), key + "."))
                    {
                        var hash = Scalar(hashNode, $"{key}.{user}");
                        if (!BcryptHash.IsMatch(hash))
                        {
                            throw new WebConfigException($"{key}.{user}", "not a bcrypt hash (plain-text passwords are refused; make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')");
                        }

                        users[user] = hash;
                    }

                    break;
                case "http_server_config":
                    if (value is YamlScalarNode { Value: null or "" })
                    {
                        break;
                    }

                    foreach (var (name, setting) in Entries(Mapping(value, key), key + "."))
                    {
                        switch (name)
                        {
                            case "http2":
                                http2 = Boolean(setting, $"{key}.http2");
                                break;
                            case "headers":
                                headers.AddRange(ParseHeaders(setting, $"{key}.headers"));
                                break;
                            default:
                                throw new WebConfigException($"{key}.{name}", "unknown key (known: http2, headers)");
                        }
                    }

                    break;
                case "rate_limit":
                    throw new WebConfigException(key, "not supported by vast-host-agent (the agent serves from a snapshot; put a rate limit in front of it if needed)");
                default:
                    throw new WebConfigException(key, "unknown key (known: tls_server_config, basic_auth_users, http_server_config)");
            }
        }

        return new WebConfig(tls, users, headers, http2);
    }

    private static WebTlsConfig ParseTls(YamlMappingNode node, string baseDirectory)
    {
        const string Section = "tls_server_config";
        string? cert = null, key = null, clientCa = null;
        var clientAuth = ClientAuthType.NoClientCert;
        var min = SslProtocols.Tls12;
        var max = SslProtocols.Tls13;
        List<TlsCipherSuite>? suites = null;
        var sans = new List<string>();
        foreach (var (name, value) in Entries(node, Section + "."))
        {
            var path = $"{Section}.{name}";
            switch (name)
            {
                case "cert_file":
                    cert = FilePath(Scalar(value, path), baseDirectory);
                    break;
                case "key_file":
                    key = FilePath(Scalar(value, path), baseDirectory);
                    break;
                case "client_ca_file":
                    clientCa = FilePath(Scalar(value, path), baseDirectory);
                    break;
                case "client_auth_type":
                    var auth = Scalar(value, path);
                    if (auth.Length > 0)
                    {
                        clientAuth = Enum.TryParse<ClientAuthType>(auth, ignoreCase: false, out var parsed) && ClientAuthNames.Contains(auth, StringComparer.Ordinal)
                            ? parsed
                            : throw new WebConfigException(path, $"'{auth}' is not one of {string.Join(", ", ClientAuthNames)}");
                    }

                    break;
                case "min_version":
                    min = Version(Scalar(value, path), path) ?? min;
                    break;
                case "max_version":
                    max = Version(Scalar(value, path), path) ?? max;
                    break;
                case "cipher_suites":
                    suites = [];
                    foreach (var suite in Sequence(value, path))
                    {
                        var text = Scalar(suite, path);
                        suites.Add(Enum.TryParse<TlsCipherSuite>(text, ignoreCase: false, out var s) && !int.TryParse(text, out _)
                            ? s
                            : throw new WebConfigException(path, $"'{text}' is not a TLS cipher suite name (IANA names, e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)"));
                    }

                    break;
                case "client_allowed_sans":
                    sans.AddRange(Sequence(value, path).Select(s => Scalar(s, path)));
                    break;
                case "prefer_server_cipher_suites":
                    Boolean(value, path); // Go ignores it since 1.18; accepted so that a node_exporter file works as is
                    break;
                case "curve_preferences":
                    Sequence(value, path); // OpenSSL's default groups; accepted so that a node_exporter file works as is
                    break;
                case "cert" or "key" or "client_ca":
                    throw new WebConfigException(path, $"inline PEM is not supported; put it in a file and use {name}_file");
                default:
                    throw new WebConfigException(path, "unknown key (known: cert_file, key_file, client_auth_type, client_ca_file, min_version, max_version, cipher_suites, client_allowed_sans, prefer_server_cipher_suites, curve_preferences)");
            }
        }

        if (string.IsNullOrEmpty(cert))
        {
            throw new WebConfigException(Section + ".cert_file", "missing (TLS needs a certificate and its key)");
        }

        if (string.IsNullOrEmpty(key))
        {
            throw new WebConfigException(Section + ".key_file", "missing (TLS needs a certificate and its key)");
        }

        if (min > max)
        {
            throw new WebConfigException(Section + ".min_version", "above max_version");
        }

        if (clientAuth is ClientAuthType.VerifyClientCertIfGiven or ClientAuthType.RequireAndVerifyClientCert && clientCa is null)
        {
            throw new WebConfigException(Section + ".client_ca_file", $"missing: client_auth_type {clientAuth} verifies client certificates against it");
        }

        if (clientCa is not null && clientAuth is ClientAuthType.NoClientCert or ClientAuthType.RequestClientCert or ClientAuthType.RequireAnyClientCert)
        {
            throw new WebConfigException(Section + ".client_ca_file", $"given, but client_auth_type {clientAuth} verifies nothing against it (use RequireAndVerifyClientCert)");
        }

        if (sans.Count > 0 && clientCa is null)
        {
            throw new WebConfigException(Section + ".client_allowed_sans", "needs client_ca_file and a verifying client_auth_type");
        }

        var protocols = min == SslProtocols.Tls13 ? SslProtocols.Tls13 : max == SslProtocols.Tls12 ? SslProtocols.Tls12 : SslProtocols.Tls12 | SslProtocols.Tls13;
        return new WebTlsConfig(cert, key, clientAuth, clientCa, protocols, suites, sans);
    }

    private static SslProtocols? Version(string text, string path) => text switch
    {
        "" => null,
        "TLS12" => SslProtocols.Tls12,
        "TLS13" => SslProtocols.Tls13,
        "TLS10" or "TLS11" => throw new WebConfigException(path, $"{text} is not offered (TLS 1.0 and 1.1 are broken); use TLS12 or TLS13"),
        _ => throw new WebConfigException(path, $"'{text}' is not one of TLS12, TLS13"),
    };

    private static IEnumerable<KeyValuePair<string, string>> ParseHeaders(YamlNode node, string path)
    {
        if (node is YamlScalarNode { Value: null or "" })
        {
            yield break;
        }

        foreach (var (name, value) in Entries(Mapping(node, path), path + "."))
        {
            var allowed = AllowedHeaders.FirstOrDefault(h => h.Equals(name, StringComparison.OrdinalIgnoreCase))
                ?? throw new WebConfigException($"{path}.{name}", $"not a header the web configuration may set (allowed: {string.Join(", ", AllowedHeaders)})");
            var text = Scalar(value, $"{path}.{name}");
            if (text.Any(char.IsControl))
            {
                throw new WebConfigException($"{path}.{name}", "holds a control character");
            }

            yield return new(allowed, text);
        }
    }

    /// <summary>Loads the served certificate with its key; one line when that fails (unreadable, not PEM, not a pair, …).</summary>
    public static X509Certificate2 LoadCertificate(WebTlsConfig tls)
    {
        try
        {
            var certificate = X509Certificate2.CreateFromPemFile(tls.CertFile, tls.KeyFile);
            if (!certificate.HasPrivateKey)
            {
                certificate.Dispose();
                throw new WebConfigException("tls_server_config.key_file", $"{tls.KeyFile} holds no private key for {tls.CertFile}");
            }

            return certificate;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            var file = File.Exists(tls.CertFile) && !CanRead(tls.CertFile) || !File.Exists(tls.CertFile) ? "cert_file" : "key_file";
            throw new WebConfigException($"tls_server_config.{file}", $"cannot read {(file == "cert_file" ? tls.CertFile : tls.KeyFile)}: {ex.Message}");
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            throw new WebConfigException("tls_server_config.key_file", $"{tls.CertFile} and {tls.KeyFile} are not a PEM certificate and its private key: {ex.Message}");
        }
    }

    /// <summary>The CA certificates that client certificates must chain to.</summary>
    public static X509Certificate2Collection LoadClientCas(string file)
    {
        var cas = new X509Certificate2Collection();
        try
        {
            cas.ImportFromPemFile(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new WebConfigException("tls_server_config.client_ca_file", $"cannot read {file} as PEM certificates: {ex.Message}");
        }

        return cas.Count > 0 ? cas : throw new WebConfigException("tls_server_config.client_ca_file", $"{file} holds no PEM certificate");
    }

    private static bool CanRead(string file)
    {
        try
        {
            using var _ = File.OpenRead(file);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static string FilePath(string value, string baseDirectory) => value.Length == 0 ? value : Path.GetFullPath(value, baseDirectory);

    private static YamlMappingNode Mapping(YamlNode node, string path) =>
        node as YamlMappingNode ?? throw new WebConfigException(path == "(the file)" ? null : path, "expected a mapping (key: value lines)");

    private static IEnumerable<YamlNode> Sequence(YamlNode node, string path) => node switch
    {
        YamlSequenceNode s => s.Children,
        YamlScalarNode { Value: null or "" } => [],
        _ => throw new WebConfigException(path, "expected a list"),
    };

    private static string Scalar(YamlNode node, string path) =>
        node is YamlScalarNode s ? s.Value ?? "" : throw new WebConfigException(path, "expected a single value");

    private static bool Boolean(YamlNode node, string path) => Scalar(node, path) switch
    {
        "true" or "True" or "TRUE" => true,
        "false" or "False" or "FALSE" => false,
        var other => throw new WebConfigException(path, $"'{other}' is not true or false"),
    };

    private static IEnumerable<(string Key, YamlNode Value)> Entries(YamlMappingNode node, string prefix)
    {
        foreach (var (key, value) in node.Children)
        {
            yield return (key is YamlScalarNode { Value: { } k } ? k : throw new WebConfigException(prefix.TrimEnd('.'), "a key is not a plain name"), value);
        }
    }
}

/// <summary>What is wrong with the web configuration: the key it concerns (null: the file itself) and why.</summary>
public sealed class WebConfigException(string? key, string problem) : Exception(key is null ? problem : $"{key}: {problem}")
{
    public string? Key { get; } = key;

    public string Problem { get; } = problem;
}
