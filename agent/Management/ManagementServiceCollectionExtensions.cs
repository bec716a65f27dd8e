using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;

namespace VastHostAgent.Management;

public static class ManagementServiceCollectionExtensions
{
    /// <summary>Listing reconciliation and pricing: options section <c>management</c>, the reconciler and its loop.</summary>
    public static IServiceCollection AddManagement(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ManagementOptions>().Bind(configuration.GetSection(ManagementOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck(configuration, ManagementOptions.SectionName, ManagementOptionsJson.Default.ManagementOptions);
        services.AddSingleton<IValidateOptions<ManagementOptions>, ManagementOptionsValidator>();
        services.TryAddSingleton(sp => new ManagementStateStore(
            sp.GetRequiredService<IOptions<AgentOptions>>().Value.StateDirectory,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<ManagementStateStore>(),
            sp.GetRequiredService<StateFileHealth>()));
        services.TryAddSingleton(sp => new DecisionJournal(
            sp.GetRequiredService<IOptions<AgentOptions>>().Value.StateDirectory,
            sp.GetRequiredService<IOptions<ManagementOptions>>().Value.JournalMaxBytes));
        services.TryAddSingleton<MarketData>();
        services.TryAddSingleton(sp => new ManagementMetrics(sp.GetRequiredService<IAgentMetrics>(),
            perMachine: sp.GetRequiredService<IOptions<AgentOptions>>().Value.Role == AgentRole.Controller));
        services.TryAddSingleton<MutationPath>();
        services.TryAddSingleton<Reconciler>();
        services.TryAddSingleton<IReconcileDriver>(sp => sp.GetRequiredService<Reconciler>());
        services.TryAddSingleton<ManagementService>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, ManagementService>(sp => sp.GetRequiredService<ManagementService>()));
        return services;
    }
}
