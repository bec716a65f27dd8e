using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using VastHostAgent.Hosting;

namespace VastHostAgent.Maintenance;

/// <summary>Configuration section <c>maintenance</c>: planned windows (needs management.enabled and vast.enabled).</summary>
public sealed class MaintenanceOptions
{
    public const string SectionName = "maintenance";

    /// <summary>Schedule the window on Vast (dnotify) this long before it starts.</summary>
    [DurationRange("00:10:00", "30.00:00:00")]
    public TimeSpan NoticePeriod { get; set; } = TimeSpan.FromHours(24);

    /// <summary>When a client contract still runs at the window's start: <c>defer</c> the window until it ends, or <c>proceed</c> (renters are notified).</summary>
    [Required]
    [RegularExpression("^(defer|proceed)$", ErrorMessage = "must be defer or proceed")]
    public string ConflictPolicy { get; set; } = "defer";

    /// <summary>Unlist the machine while in maintenance (relisted when the window ends).</summary>
    public bool UnlistDuring { get; set; } = true;

    /// <summary>A local command run when a window starts (output journaled); empty = none.</summary>
    public string StartHook { get; set; } = "";

    /// <summary>A local command run when a window ends; empty = none.</summary>
    public string EndHook { get; set; } = "";

    [DurationRange("00:00:01", "01:00:00")]
    public TimeSpan HookTimeout { get; set; } = TimeSpan.FromMinutes(5);

#pragma warning disable SYSLIB1213 // entries are validated by MaintenanceOptionsValidator, with their full key names
    /// <summary>One-off windows.</summary>
    public List<WindowOptions> Windows { get; set; } = [];

    /// <summary>Recurring windows (cron expression in a time zone).</summary>
    public List<RecurringWindowOptions> Recurring { get; set; } = [];
#pragma warning restore SYSLIB1213
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
    [Required]
    [RegularExpression("^(unlist|defaultJob)$", ErrorMessage = "must be unlist or defaultJob")]
    public string Policy { get; set; } = "unlist";

    /// <summary>A condition must hold this long before the guard acts.</summary>
    [DurationRange("00:00:00", "1.00:00:00")]
    public TimeSpan HoldFor { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Every condition must have cleared for this long before the guard restores (doubles after each repeat trip within a day, up to 8×).</summary>
    [DurationRange("00:00:00", "7.00:00:00")]
    public TimeSpan ClearFor { get; set; } = TimeSpan.FromMinutes(30);

    public bool GpuLost { get; set; } = true;

    public bool NvmlUnavailable { get; set; } = true;

    public bool DockerDown { get; set; } = true;

    public bool EccUncorrectable { get; set; } = true;

    /// <summary>XID codes that count as a fault (within <see cref="HoldFor"/> + one interval of being seen).</summary>
    public List<int> CriticalXids { get; set; } = [48, 62, 64, 74, 79, 95, 119, 120];

    /// <summary>Free space on Docker's data root below this fraction is a fault (after a cleanup of expired storage contracts).</summary>
    [Range(0.0, 0.9, ErrorMessage = "must be between 0 and 0.9")]
    public double MinFreeDiskRatio { get; set; } = 0.05;
}

[OptionsValidator]
internal sealed partial class MaintenanceOptionsDataValidator : IValidateOptions<MaintenanceOptions>;

[OptionsValidator]
internal sealed partial class WindowOptionsValidator : IValidateOptions<WindowOptions>;

[OptionsValidator]
internal sealed partial class RecurringWindowOptionsValidator : IValidateOptions<RecurringWindowOptions>;

[OptionsValidator]
internal sealed partial class FaultGuardOptionsValidator : IValidateOptions<FaultGuardOptions>;

/// <summary>Windows and recurring entries, each with its full key; cron expressions and time zones are parsed.</summary>
internal sealed class MaintenanceOptionsValidator : IValidateOptions<MaintenanceOptions>
{
    private readonly MaintenanceOptionsDataValidator _data = new();
    private readonly WindowOptionsValidator _window = new();
    private readonly RecurringWindowOptionsValidator _recurring = new();

    public ValidateOptionsResult Validate(string? name, MaintenanceOptions o)
    {
        var failures = new List<string>();
        void Add(ValidateOptionsResult result, string prefix) => AgentConfiguration.AddFailures(failures, result, prefix);

        Add(_data.Validate(name, o), "");
        for (var i = 0; i < o.Windows.Count; i++)
        {
            Add(_window.Validate(name, o.Windows[i]), $"Windows.{i}.");
            if (o.Windows[i].Start == default)
            {
                failures.Add($"Windows.{i}.Start: required (ISO 8601 with an offset, e.g. 2026-12-01T02:00:00Z)");
            }
        }

        for (var i = 0; i < o.Recurring.Count; i++)
        {
            var r = o.Recurring[i];
            Add(_recurring.Validate(name, r), $"Recurring.{i}.");
            if (!Schedule.TryParseCron(r.Cron, out _))
            {
                failures.Add($"Recurring.{i}.Cron: '{r.Cron}' is not a 5-field cron expression (minute hour day month weekday)");
            }

            if (!Schedule.TryFindZone(r.TimeZone, out _))
            {
                failures.Add($"Recurring.{i}.TimeZone: '{r.TimeZone}' is not a known IANA time zone (e.g. Europe/Stockholm)");
            }
        }

        var ids = o.Windows.Select(w => w.Id).Concat(o.Recurring.Select(r => r.Id)).GroupBy(x => x, StringComparer.Ordinal).Where(g => g.Count() > 1).ToList();
        failures.AddRange(ids.Select(g => $"Windows: the id '{g.Key}' is used twice"));
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
