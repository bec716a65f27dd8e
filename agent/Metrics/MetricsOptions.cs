using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;

namespace VastHostAgent.Metrics;

/// <summary>Configuration section <c>metrics</c>: the Prometheus endpoint.</summary>
public sealed class MetricsOptions
{
    public const string SectionName = "metrics";
    public const int DefaultPort = 9470;

    /// <summary>
    /// Address and port of the HTTP endpoint (<c>/metrics</c>, <c>/healthz</c>). Loopback by default: renters'
    /// containers share this host, so exposing telemetry beyond it is the host's explicit choice.
    /// </summary>
    [Required(AllowEmptyStrings = false)]
    public string ListenAddress { get; set; } = "127.0.0.1:9470";

    /// <summary>Also export core GPU readings under dcgm-exporter's names and labels (DCGM_FI_DEV_*).</summary>
    public bool DcgmCompatible { get; set; }

    /// <summary>Value of the host-name label on dcgm-compatible series; empty means this machine's host name.</summary>
    public string Hostname { get; set; } = "";

    /// <summary>
    /// Name of the host-name label on dcgm-compatible series: <c>Hostname</c> as released dcgm-exporter versions print
    /// it, or <c>hostname</c> as its newer versions do (dashboards and rules written for either then match).
    /// </summary>
    [AllowedValues("Hostname", "hostname", ErrorMessage = "must be Hostname (released dcgm-exporter versions) or hostname (newer ones)")]
    public string DcgmHostnameLabel { get; set; } = "Hostname";

    /// <summary>
    /// A web configuration file in the Prometheus exporter-toolkit format (the file node_exporter's
    /// <c>--web.config.file</c> takes): TLS with <c>tls_server_config</c>, client certificates, <c>basic_auth_users</c>
    /// with bcrypt hashes and <c>http_server_config.headers</c>. Empty: plain HTTP without authentication.
    /// </summary>
    public string WebConfigFile { get; set; } = "";

    /// <summary>Answer <c>/healthz</c> without basic auth (for a load balancer's or systemd's health check); everything else still needs it.</summary>
    public bool HealthzWithoutAuth { get; set; }

    /// <summary>Parses <see cref="ListenAddress"/>; valid after validation.</summary>
    public IPEndPoint ParseListenAddress() => IPEndPoint.Parse(ListenAddress);
}

/// <summary>Checks that the listen address is an IP address with a port.</summary>
internal sealed class MetricsOptionsValidator : IValidateOptions<MetricsOptions>
{
    public ValidateOptionsResult Validate(string? name, MetricsOptions options)
    {
        if (!IPEndPoint.TryParse(options.ListenAddress, out var endpoint) || endpoint.Port == 0
            || !options.ListenAddress.Contains(':', StringComparison.Ordinal))
        {
            return ValidateOptionsResult.Fail(
                $"metrics.listenAddress: '{options.ListenAddress}' is not an IP address with a port (e.g. 127.0.0.1:{MetricsOptions.DefaultPort} or [::1]:{MetricsOptions.DefaultPort})");
        }

        if (!string.IsNullOrEmpty(options.WebConfigFile))
        {
            try
            {
                WebConfig.Load(options.WebConfigFile);
            }
            catch (WebConfigException ex)
            {
                return ValidateOptionsResult.Fail($"metrics.webConfigFile: {options.WebConfigFile}: {ex.Message}");
            }
        }

        return ValidateOptionsResult.Success;
    }
}

/// <summary>Source-generated metadata of the section: keys, types and validation attributes for the start-up check.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(MetricsOptions))]
internal sealed partial class MetricsOptionsJson : JsonSerializerContext;
