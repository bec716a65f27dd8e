using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;

namespace VastHostAgent.Kernel;

/// <summary>Configuration section <c>agent</c>: the daemon itself.</summary>
public sealed class AgentOptions
{
    public const string SectionName = "agent";

    /// <summary>How often the samplers read NVML, hwmon and disk space (hh:mm:ss).</summary>
    [DurationRange("00:00:01", "00:05:00")]
    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Where the agent keeps its state (applied listing, maintenance windows, journal).</summary>
    [Required(AllowEmptyStrings = false)]
    [RegularExpression("^/.*", ErrorMessage = "must be an absolute path")]
    public string StateDirectory { get; set; } = "/var/lib/vast-host-agent";
}

/// <summary>Source-generated metadata of the section: keys, types and validation attributes for the start-up check.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(AgentOptions))]
internal sealed partial class AgentOptionsJson : JsonSerializerContext;
