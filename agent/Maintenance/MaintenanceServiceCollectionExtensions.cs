using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;
using VastHostAgent.Management;

namespace VastHostAgent.Maintenance;

public static class MaintenanceServiceCollectionExtensions
{
    /// <summary>Maintenance windows and the fault guard: sections <c>maintenance</c> and <c>faultGuard</c>, run inside each listing reconcile.</summary>
    public static IServiceCollection AddMaintenance(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<MaintenanceOptions>().Bind(configuration.GetSection(MaintenanceOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck(configuration, MaintenanceOptions.SectionName, MaintenanceOptionsJson.Default.MaintenanceOptions);
        services.AddSingleton<IValidateOptions<MaintenanceOptions>, MaintenanceOptionsValidator>();
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
        services.AddOptionsCheck(configuration, FaultGuardOptions.SectionName, MaintenanceOptionsJson.Default.FaultGuardOptions);

        // Both run inside the listing reconcile: configuring them without it would silently do nothing.
        services.AddSingleton<IValidateOptions<MaintenanceOptions>>(sp => new RequiresManagement<MaintenanceOptions>(sp.GetRequiredService<IOptions<ManagementOptions>>(),
            o => o.Windows.Count + o.Recurring.Count > 0 ? "maintenance.windows: windows are scheduled by the listing reconcile: set management.enabled=true (with vast.enabled=true)" : null));
        services.AddSingleton<IValidateOptions<FaultGuardOptions>>(sp => new RequiresManagement<FaultGuardOptions>(sp.GetRequiredService<IOptions<ManagementOptions>>(),
            o => o.Enabled ? "faultGuard.enabled: the fault guard acts through the listing reconcile: set management.enabled=true (with vast.enabled=true)" : null));

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
        services.TryAddSingleton<MaintenanceHookRunner>();
        services.TryAddSingleton<MaintenanceCoordinator>();
        services.TryAddSingleton<IListingConstraintSource>(sp => sp.GetRequiredService<MaintenanceCoordinator>());
        return services;
    }

    private sealed class RequiresManagement<T>(IOptions<ManagementOptions> management, Func<T, string?> problem) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? name, T options)
        {
            bool enabled;
            try
            {
                enabled = management.Value.Enabled;
            }
            catch (Exception ex) when (ex is OptionsValidationException or InvalidOperationException or ArgumentException or FormatException)
            {
                return ValidateOptionsResult.Success; // the management section reports its own problems
            }

            return !enabled && problem(options) is { } failure ? ValidateOptionsResult.Fail(failure) : ValidateOptionsResult.Success;
        }
    }
}
