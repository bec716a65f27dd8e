using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace VastHostAgent.Tests.Support;

/// <summary>
/// A throw-away certificate authority for TLS tests: a CA, server certificates for 127.0.0.1 and client
/// certificates, written as PEM files the way a host's (or certbot's) files are.
/// </summary>
public sealed class TestPki : IDisposable
{
    private readonly X509Certificate2 _ca;
    private readonly ECDsa _caKey;

    public TestPki(string directory, string name = "Test CA")
    {
        Directory = directory;
        _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", _caKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        _ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddYears(-1), DateTimeOffset.UtcNow.AddYears(5));
        CaFile = Path.Combine(directory, SafeName(name) + "-ca.pem");
        File.WriteAllText(CaFile, _ca.ExportCertificatePem());
    }

    public string Directory { get; }

    /// <summary>The CA certificate (PEM): a scraper's <c>ca_file</c>, or the agent's <c>client_ca_file</c>.</summary>
    public string CaFile { get; }

    /// <summary>A server certificate for 127.0.0.1 and localhost, valid from <paramref name="notBefore"/> to <paramref name="notAfter"/>.</summary>
    public (string CertFile, string KeyFile) Server(string name, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null) =>
        Issue(name, serverAuth: true, notBefore ?? DateTimeOffset.UtcNow.AddDays(-1), notAfter ?? DateTimeOffset.UtcNow.AddDays(90));

    /// <summary>A client certificate (client authentication) named <paramref name="name"/> (also its DNS SAN).</summary>
    public (string CertFile, string KeyFile) Client(string name) =>
        Issue(name, serverAuth: false, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(90));

    private (string CertFile, string KeyFile) Issue(string name, bool serverAuth, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(serverAuth ? "localhost" : name);
        if (serverAuth)
        {
            san.AddIpAddress(IPAddress.Loopback);
        }

        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(serverAuth ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, true, false));
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7f;
        using var certificate = request.Create(_ca, notBefore, notAfter, serial);

        var certFile = Path.Combine(Directory, SafeName(name) + ".crt");
        var keyFile = Path.Combine(Directory, SafeName(name) + ".key");
        WriteAtomically(certFile, certificate.ExportCertificatePem() + "\n");
        WriteAtomically(keyFile, key.ExportPkcs8PrivateKeyPem() + "\n");
        return (certFile, keyFile);
    }

    /// <summary>Write then rename, as certbot and most renewal tools replace a certificate.</summary>
    public static void WriteAtomically(string path, string text)
    {
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, text);
        File.Move(temporary, path, overwrite: true);
    }

    private static string SafeName(string name) => string.Concat(name.Select(c => char.IsLetterOrDigit(c) ? c : '-')).ToLowerInvariant();

    public void Dispose()
    {
        _ca.Dispose();
        _caKey.Dispose();
    }
}
