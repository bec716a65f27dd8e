using Microsoft.Extensions.Configuration;
using VastHostAgent.Maintenance;
using VastHostAgent.Management;

namespace VastHostAgent.Fleet;

/// <summary>The policy one profile gives the machines it manages.</summary>
public sealed record FleetPolicy(string Name, ManagementOptions Management, MaintenanceOptions Maintenance, FaultGuardOptions FaultGuard);

/// <summary>
/// The policies by profile name, bound once from the configuration: the top-level <c>management</c>,
/// <c>maintenance</c> and <c>faultGuard</c> sections are the defaults (profile ""), and
/// <c>fleet.profiles.NAME.*</c> overrides them key by key. Each profile section is checked at start-up like the
/// top-level ones (unknown keys, values, ranges, rules across keys): a bad profile is exit 2.
/// </summary>
public sealed class FleetPolicies
{
    public const string ProfilesKey = "fleet:profiles";

    private readonly Dictionary<string, FleetPolicy> _policies = new(StringComparer.Ordinal);

    public FleetPolicies(IConfiguration configuration)
    {
        _policies[""] = Bind(configuration, "");
        foreach (var profile in configuration.GetSection(ProfilesKey).GetChildren())
        {
            _policies[profile.Key] = Bind(configuration, profile.Key);
        }
    }

    /// <summary>The profile names configured (without the default).</summary>
    public IEnumerable<string> Names => _policies.Keys.Where(k => k.Length > 0);

    public bool Contains(string name) => _policies.ContainsKey(name);

    public FleetPolicy this[string name] => _policies[name];

    /// <summary>The profile sections (for the start-up check): configuration path and kind.</summary>
    public static IEnumerable<(string Path, string Section)> Sections(IConfiguration configuration) =>
        configuration.GetSection(ProfilesKey).GetChildren().SelectMany(p => p.GetChildren().Select(s => ($"{ProfilesKey}:{p.Key}:{s.Key}", s.Key)));

    private static FleetPolicy Bind(IConfiguration configuration, string profile)
    {
        var management = new ManagementOptions();
        var maintenance = new MaintenanceOptions();
        var guard = new FaultGuardOptions();
        configuration.GetSection(ManagementOptions.SectionName).Bind(management);
        configuration.GetSection(MaintenanceOptions.SectionName).Bind(maintenance);
        BindGuard(configuration.GetSection(FaultGuardOptions.SectionName), guard);
        if (profile.Length > 0)
        {
            var root = configuration.GetSection($"{ProfilesKey}:{profile}");
            root.GetSection(ManagementOptions.SectionName).Bind(management);
            root.GetSection(MaintenanceOptions.SectionName).Bind(maintenance);
            BindGuard(root.GetSection(FaultGuardOptions.SectionName), guard);
        }

        return new FleetPolicy(profile, management, maintenance, guard);
    }

    private static void BindGuard(IConfigurationSection section, FaultGuardOptions guard)
    {
        // The binder adds to a list that already has items: a configured criticalXids replaces the inherited ones.
        if (section.GetSection("criticalXids").GetChildren().Any())
        {
            guard.CriticalXids.Clear();
        }

        section.Bind(guard);
    }
}
