using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;
using VastHostAgent.Kernel;

namespace VastHostAgent.Containers;

/// <summary>Configuration section <c>docker</c>: the container inventory.</summary>
public sealed class DockerOptions
{
    public const string SectionName = "docker";

    /// <summary>Watch Docker containers and map them to Vast instances and GPUs.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Docker endpoint; empty means <c>DOCKER_HOST</c>, else <c>unix:///var/run/docker.sock</c>.</summary>
    [RegularExpression(@"^(|unix:///\S+|tcp://\S+)$", ErrorMessage = "must be empty, unix:///path/to/docker.sock or tcp://host:port")]
    public string Endpoint { get; set; } = "";

    /// <summary>Full re-list of containers in addition to the event stream (hh:mm:ss).</summary>
    [DurationRange("00:00:10", "01:00:00")]
    public TimeSpan ResyncInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Docker labels copied onto <c>vasthost_container_info</c> as <c>label_&lt;name&gt;</c> (bounded: only these).</summary>
    public List<string> ExportLabels { get; set; } = [];

    /// <summary>Keep the rental ledger: one record per Vast instance run in <c>{agent.stateDirectory}/rentals.jsonl</c>.</summary>
    public bool Ledger { get; set; } = true;

    /// <summary>The ledger file is rotated when an append would take it past this size (bytes).</summary>
    [Range(65536L, 1073741824L, ErrorMessage = "must be between 65536 (64 KiB) and 1073741824 (1 GiB)")]
    public long LedgerMaxBytes { get; set; } = 16L * 1024 * 1024;

    /// <summary>Ledger files kept: <c>rentals.jsonl</c> and the rotated <c>rentals.jsonl.1</c> … (the oldest is deleted).</summary>
    [Range(2, 100, ErrorMessage = "must be between 2 and 100")]
    public int LedgerFiles { get; set; } = 5;

    /// <summary>The endpoint to use: the option, else DOCKER_HOST, else the standard socket.</summary>
    public Uri ResolveEndpoint()
    {
        if (!string.IsNullOrWhiteSpace(Endpoint))
        {
            return new Uri(Endpoint);
        }

        var fromEnv = Environment.GetEnvironmentVariable("DOCKER_HOST");
        return !string.IsNullOrWhiteSpace(fromEnv) ? new Uri(fromEnv) : new Uri("unix:///var/run/docker.sock");
    }
}

/// <summary>Source-generated metadata of the section: keys, types and validation attributes for the start-up check.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(DockerOptions))]
internal sealed partial class DockerOptionsJson : JsonSerializerContext;
