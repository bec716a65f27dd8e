using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;

namespace VastHostAgent.Maintenance;

/// <summary>Configuration section <c>maintenance</c>: planned windows (needs management.enabled and vast.enabled).</summary>
public sealed class MaintenanceOptions
{
    public const string SectionName = "maintenance";

    /// <summary>Schedule the window on Vast (dnotify) this long before it starts.</summary>
    [DurationRange("00:10:00", "30.00:00:00")]
    public TimeSpan NoticePeriod { get; set; } = TimeSpan.FromHours(24);

    /// <summary>When a client contract still runs at the window's start: <c>defer</c> the window until it ends, or <c>proceed</c> (renters are notified).</summary>
    public ConflictPolicy ConflictPolicy { get; set; } = ConflictPolicy.Defer;

    /// <summary>Unlist the machine while in maintenance (relisted when the window ends).</summary>
    public bool UnlistDuring { get; set; } = true;

    /// <summary>A local command run when a window starts (output journaled); empty = none.</summary>
    public string StartHook { get; set; } = "";

    /// <summary>A local command run when a window ends; empty = none.</summary>
    public string EndHook { get; set; } = "";

    [DurationRange("00:00:01", "01:00:00")]
    public TimeSpan HookTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>One-off windows.</summary>
    public List<WindowOptions> Windows { get; set; } = [];

    /// <summary>Recurring windows (cron expression in a time zone).</summary>
    public List<RecurringWindowOptions> Recurring { get; set; } = [];
}

/// <summary>A one-off window in the configuration.</summary>
public sealed class WindowOptions
{
    [Required(AllowEmptyStrings = false)]
    [RegularExpression("^[A-Za-z0-9_.-]{1,40}$", ErrorMessage = "must be 1-40 letters, digits, '_', '.', '-'")]
    public string Id { get; set; } = "";

    /// <summary>Start (ISO 8601 with an offset, e.g. 2026-12-01T02:00:00Z).</summary>
    public DateTimeOffset Start { get; set; }

    [DurationRange("00:05:00", "14.00:00:00")]
    public TimeSpan Duration { get; set; } = TimeSpan.FromHours(1);

    [Required]
    [RegularExpression("^(power|internet|disk|gpu|software|other)$", ErrorMessage = "must be power, internet, disk, gpu, software or other")]
    public string Category { get; set; } = "other";
}

/// <summary>A recurring window: a cron expression (5 fields) in an IANA time zone.</summary>
public sealed class RecurringWindowOptions
{
    [Required(AllowEmptyStrings = false)]
    [RegularExpression("^[A-Za-z0-9_.-]{1,40}$", ErrorMessage = "must be 1-40 letters, digits, '_', '.', '-'")]
    public string Id { get; set; } = "";

    [Required(AllowEmptyStrings = false)]
    public string Cron { get; set; } = "";

    [Required(AllowEmptyStrings = false)]
    public string TimeZone { get; set; } = "UTC";

    [DurationRange("00:05:00", "14.00:00:00")]
    public TimeSpan Duration { get; set; } = TimeSpan.FromHours(1);

    [Required]
    [RegularExpression("^(power|internet|disk|gpu|software|other)$", ErrorMessage = "must be power, internet, disk, gpu, software or other")]
    public string Category { get; set; } = "other";
}

/// <summary>Configuration section <c>faultGuard</c>: stop new rentals landing on a faulty rig.</summary>
public sealed class FaultGuardOptions
{
    public const string SectionName = "faultGuard";

    public bool Enabled { get; set; }

    /// <summary><c>unlist</c> the machine, or only remove the <c>defaultJob</c>.</summary>
    public FaultGuardPolicy Policy { get; set; } = FaultGuardPolicy.Unlist;

    /// <summary>A condition must hold this long before the guard acts.</summary>
    [DurationRange("00:00:00", "1.00:00:00")]
    public TimeSpan HoldFor { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Every condition must have cleared for this long before the guard restores (doubles after each repeat trip within a day, up to 8×).</summary>
    [DurationRange("00:00:00", "7.00:00:00")]
    public TimeSpan ClearFor { get; set; } = TimeSpan.FromMinutes(30);

    public bool GpuLost { get; set; } = true;

    /// <summary>Trip when a GPU is missing: on the PCI bus but neither read by NVML nor bound to vfio-pci (a VM rental), or gone from the bus.</summary>
    public bool GpuMissing { get; set; } = true;

    public bool NvmlUnavailable { get; set; } = true;

    public bool DockerDown { get; set; } = true;

    public bool EccUncorrectable { get; set; } = true;

    /// <summary>Trip when the rig agent itself stops answering Prometheus's scrapes (controller role; a standalone agent is its own rig).</summary>
    public bool AgentDown { get; set; } = true;

    /// <summary>XID codes that count as a fault (within <see cref="HoldFor"/> + one interval of being seen).</summary>
    public List<int> CriticalXids { get; set; } = [48, 62, 64, 74, 79, 95, 119, 120];

    /// <summary>Free space on Docker's data root below this fraction is a fault (after a cleanup of expired storage contracts).</summary>
    [Range(0.0, 0.9, ErrorMessage = "must be between 0 and 0.9")]
    public double MinFreeDiskRatio { get; set; } = 0.05;
}

/// <summary>What the attributes cannot say: a start is required, cron expressions and time zones parse, ids are unique.</summary>
internal sealed class MaintenanceOptionsValidator : IValidateOptions<MaintenanceOptions>
{
    public ValidateOptionsResult Validate(string? name, MaintenanceOptions o)
    {
        var failures = new List<string>();
        for (var i = 0; i < o.Windows.Count; i++)
        {
            if (o.Windows[i].Start == default)
            {
                failures.Add(Inv($"maintenance.windows.{i}.start: required (ISO 8601 with an offset, e.g. 2026-12-01T02:00:00Z)"));
            }
        }

        for (var i = 0; i < o.Recurring.Count; i++)
        {
            var r = o.Recurring[i];
            if (!Schedule.TryParseCron(r.Cron, out _))
            {
                failures.Add(Inv($"maintenance.recurring.{i}.cron: '{r.Cron}' is not a 5-field cron expression (minute hour day month weekday)"));
            }

            if (!Schedule.TryFindZone(r.TimeZone, out _))
            {
                failures.Add(Inv($"maintenance.recurring.{i}.timeZone: '{r.TimeZone}' is not a known IANA time zone (e.g. Europe/Stockholm)"));
            }
        }

        var ids = o.Windows.Select(w => w.Id).Concat(o.Recurring.Select(r => r.Id)).GroupBy(x => x, StringComparer.Ordinal).Where(g => g.Count() > 1).ToList();
        failures.AddRange(ids.Select(g => $"maintenance.windows: the id '{g.Key}' is used twice"));
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static string Inv(FormattableString text) => FormattableString.Invariant(text);
}

/// <summary>When a client contract still runs at a window's start.</summary>
public enum ConflictPolicy
{
    /// <summary>Move the window past the contract's end.</summary>
    Defer,

    /// <summary>Keep the start; the renters are notified on Vast.</summary>
    Proceed,
}

/// <summary>What the fault guard does to a faulty rig.</summary>
public enum FaultGuardPolicy
{
    /// <summary>Take the machine off the market.</summary>
    Unlist,

    /// <summary>Only remove the default job.</summary>
    DefaultJob,
}

/// <summary>Source-generated metadata of the sections: keys, types and validation attributes for the start-up check.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(MaintenanceOptions))]
[JsonSerializable(typeof(FaultGuardOptions))]
internal sealed partial class MaintenanceOptionsJson : JsonSerializerContext;
