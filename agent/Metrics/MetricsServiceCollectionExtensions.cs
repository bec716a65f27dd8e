using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;

namespace VastHostAgent.Metrics;

public static class MetricsServiceCollectionExtensions
{
    /// <summary>The Prometheus exposition: options section <c>metrics</c> and the snapshot exporter.</summary>
    public static IServiceCollection AddAgentMetrics(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<MetricsOptions>().Bind(configuration.GetSection(MetricsOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck(configuration, MetricsOptions.SectionName, MetricsOptionsJson.Default.MetricsOptions);
        services.AddSingleton<IValidateOptions<MetricsOptions>, MetricsOptionsValidator>();
        services.TryAddSingleton<MetricsRegistry>();
        services.TryAddSingleton<IAgentMetrics>(sp => sp.GetRequiredService<MetricsRegistry>());
        services.TryAddSingleton<SnapshotExporter>();
        services.TryAddSingleton<EndpointSecurity>();
        return services;
    }
}
