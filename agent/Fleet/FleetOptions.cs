using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;
using VastHostAgent.Kernel;
using VastHostAgent.Maintenance;
using VastHostAgent.Management;

namespace VastHostAgent.Fleet;

/// <summary>
/// Configuration section <c>fleet</c> (controller role): which machines of the account are managed with which
/// policy, and where rig health comes from. Machines no entry selects are read-only (metrics, never a mutation).
/// </summary>
public sealed class FleetOptions
{
    public const string SectionName = "fleet";

    /// <summary>The host's Prometheus, which scrapes every rig agent.</summary>
    public PrometheusOptions Prometheus { get; set; } = new();

    /// <summary>Most changes per rolling hour for the whole account (each machine also has management.mutationBudgetPerHour).</summary>
    [Range(1, 100000, ErrorMessage = "must be between 1 and 100000")]
    public int MutationBudgetPerHour { get; set; } = 120;

    /// <summary>Where the per-account controller lock lives (one controller per account; a second one refuses to start).</summary>
    [RegularExpression("^/.*", ErrorMessage = "must be an absolute path")]
    public string LockDirectory { get; set; } = "/run/lock";

    /// <summary>
    /// Policy profiles by name. Each may hold <c>management</c>, <c>maintenance</c> and <c>faultGuard</c>, which
    /// override the top-level sections (the defaults) key by key for the machines the profile manages.
    /// </summary>
    public Dictionary<string, FleetProfileSections> Profiles { get; set; } = [];

    /// <summary>Entries selecting machines (by id, host name glob or GPU model) and the profile that manages them.</summary>
    public List<MachineSelector> Machines { get; set; } = [];
}

/// <summary><c>fleet.prometheus</c>: where the controller reads rig health.</summary>
public sealed class PrometheusOptions
{
    /// <summary>Base URL of the Prometheus HTTP API (e.g. http://127.0.0.1:9090); empty = no rig health (the guard holds).</summary>
    public string Url { get; set; } = "";

    /// <summary>How long one read of rig health (its queries run together) may take before the answer counts as missing.</summary>
    [DurationRange("00:00:01", "00:01:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Rig data older than this (Prometheus's last scrape of the rig agent) is stale: the guard holds.</summary>
    [DurationRange("00:00:10", "01:00:00")]
    public TimeSpan MaxAge { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>The label of <c>vasthost_rig_info</c> that names the machine: <c>hostname</c> or <c>machine_id</c>.</summary>
    [RegularExpression("^(hostname|machine_id)$", ErrorMessage = "must be hostname or machine_id")]
    public string MachineLabel { get; set; } = "hostname";

    /// <summary>Extra PromQL label matchers for every query (e.g. <c>job="vast-host-agent"</c>); empty = none.</summary>
    public string Selector { get; set; } = "";
}

/// <summary>
/// One entry of <c>fleet.machines</c>: a machine is selected when it matches every criterion given (ids, host
/// name glob, GPU model); an entry with no criterion is a configuration error.
/// </summary>
public sealed class MachineSelector
{
    /// <summary>Machine ids.</summary>
    public List<long> Ids { get; set; } = [];

    /// <summary>Host name glob (<c>*</c> and <c>?</c>, case-insensitive), e.g. <c>rig-4090-*</c>.</summary>
    public string Hostname { get; set; } = "";

    /// <summary>GPU model as Vast names it (e.g. <c>RTX 4090</c>), case-insensitive.</summary>
    public string GpuModel { get; set; } = "";

    /// <summary>The profile that manages the selected machines; empty = the top-level sections.</summary>
    public string Profile { get; set; } = "";
}

/// <summary>One policy profile: the sections it overrides (only the keys written count; the rest come from the top level).</summary>
public sealed class FleetProfileSections
{
    public ManagementOptions Management { get; set; } = new();

    public MaintenanceOptions Maintenance { get; set; } = new();

    public FaultGuardOptions FaultGuard { get; set; } = new();
}

/// <summary>Source-generated metadata of the section: keys, types and validation attributes for the start-up check.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(FleetOptions))]
internal sealed partial class FleetOptionsJson : JsonSerializerContext;
