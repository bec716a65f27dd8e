using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace VastHostAgent.Hosting;

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

[OptionsValidator]
internal sealed partial class AgentOptionsValidator : IValidateOptions<AgentOptions>;
