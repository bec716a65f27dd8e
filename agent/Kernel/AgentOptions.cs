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

    /// <summary>
    /// <c>standalone</c> (telemetry and the Vast side for this one machine), <c>rig</c> (telemetry only: no key,
    /// no Vast call) or <c>controller</c> (the Vast side for every machine of the account, rig health from Prometheus).
    /// </summary>
    public AgentRole Role { get; set; } = AgentRole.Standalone;

    /// <summary>The host name this agent reports in <c>vasthost_rig_info</c> (the controller maps rigs to machines by it); empty = the system's.</summary>
    public string Hostname { get; set; } = "";

    /// <summary>This rig's Vast machine id, exported in <c>vasthost_rig_info</c> when set (0 = not set).</summary>
    [Range(0L, long.MaxValue, ErrorMessage = "must be a positive machine id")]
    public long MachineId { get; set; }

    /// <summary>The host name to report: <see cref="Hostname"/> or the system's.</summary>
    public string EffectiveHostname() => string.IsNullOrWhiteSpace(Hostname) ? Environment.MachineName : Hostname.Trim();
}

/// <summary>What one agent process does.</summary>
public enum AgentRole
{
    /// <summary>Telemetry and the Vast side for this one machine (the default).</summary>
    Standalone,

    /// <summary>Telemetry only: holds no key and makes no Vast call.</summary>
    Rig,

    /// <summary>The Vast side for every machine of the account; rig health from the host's Prometheus.</summary>
    Controller,
}

/// <summary>Source-generated metadata of the section: keys, types and validation attributes for the start-up check.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(AgentOptions))]
internal sealed partial class AgentOptionsJson : JsonSerializerContext;
