using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Hosting;
using VastHostAgent.Management;

namespace VastHostAgent.Maintenance;

public static class MaintenanceServiceCollectionExtensions
{
    private static readonly string[] WindowKeys = ["id", "start", "duration", "category"];
    private static readonly string[] RecurringKeys = ["id", "cron", "timeZone", "duration", "category"];

    private static readonly Dictionary<string, (string Path, string[] Keys)> Nested = new(StringComparer.Ordinal)
    {
        [typeof(WindowOptions).FullName!] = ("windows[]", WindowKeys),
        [typeof(RecurringWindowOptions).FullName!] = ("recurring[]", RecurringKeys),
    };

    /// <summary>Maintenance windows and the fault guard: sections <c>maintenance</c> and <c>faultGuard</c>, run inside each listing reconcile.</summary>
    public static IServiceCollection AddMaintenance(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<MaintenanceOptions>().Bind(configuration.GetSection(MaintenanceOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck<MaintenanceOptions, MaintenanceOptionsValidator>(MaintenanceOptions.SectionName,
            ["noticePeriod", "conflictPolicy", "unlistDuring", "startHook", "endHook", "hookTimeout", "windows", "recurring"], Nested);
        // The binder adds to a list that already has items: a configured criticalXids replaces the defaults.
        services.AddOptions<FaultGuardOptions>()
            .Configure(o =>
            {
                if (configuration.GetSection($"{FaultGuardOptions.SectionName}:criticalXids").GetChildren().Any())
                {
                    o.CriticalXids.Clear();
                }
            })
            .Bind(configuration.GetSection(FaultGuardOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck<FaultGuardOptions, FaultGuardOptionsValidator>(FaultGuardOptions.SectionName,
            "enabled", "policy", "holdFor", "clearFor", "gpuLost", "nvmlUnavailable", "dockerDown", "eccUncorrectable", "criticalXids", "minFreeDiskRatio");

        // Both run inside the listing reconcile: configuring them without it would silently do nothing.
        var management = bool.TryParse(configuration["management:enabled"], out var enabled) && enabled;
        services.AddSingleton<IValidateOptions<MaintenanceOptions>>(new RequiresManagement<MaintenanceOptions>(management,
            o => o.Windows.Count + o.Recurring.Count > 0 ? "Windows: windows are scheduled by the listing reconcile: set management.enabled=true (with vast.enabled=true)" : null));
        services.AddSingleton<IValidateOptions<FaultGuardOptions>>(new RequiresManagement<FaultGuardOptions>(management,
            o => o.Enabled ? "Enabled: the fault guard acts through the listing reconcile: set management.enabled=true (with vast.enabled=true)" : null));

        services.TryAddSingleton(sp => new MaintenanceStore(
            sp.GetRequiredService<IOptions<AgentOptions>>().Value.StateDirectory,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<MaintenanceStore>(),
            sp.GetRequiredService<StateFileHealth>()));
        services.TryAddSingleton(sp => new FaultGuardStore(
            sp.GetRequiredService<IOptions<AgentOptions>>().Value.StateDirectory,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<FaultGuardStore>(),
            sp.GetRequiredService<StateFileHealth>()));
        services.TryAddSingleton<MaintenanceMetrics>();
        services.TryAddSingleton<MaintenanceCoordinator>();
        services.TryAddSingleton<IListingConstraintSource>(sp => sp.GetRequiredService<MaintenanceCoordinator>());
        return services;
    }

    private sealed class RequiresManagement<T>(bool managementEnabled, Func<T, string?> problem) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? name, T options) =>
            !managementEnabled && problem(options) is { } failure ? ValidateOptionsResult.Fail(failure) : ValidateOptionsResult.Success;
    }
}
