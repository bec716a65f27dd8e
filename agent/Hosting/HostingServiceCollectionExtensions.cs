using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.Maintenance;
using VastHostAgent.Management;
using VastHostAgent.Host;
using VastHostAgent.Metrics;
using VastHostAgent.Vast;

namespace VastHostAgent.Hosting;

public static class HostingServiceCollectionExtensions
{
    /// <summary>The daemon core: options section <c>agent</c>, clock, snapshot store and sampling loops.</summary>
    public static IServiceCollection AddAgentCore(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<AgentOptions>().Bind(configuration.GetSection(AgentOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck<AgentOptions, AgentOptionsValidator>(AgentOptions.SectionName,
            "sampleInterval", "stateDirectory");
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<SnapshotStore>();
        services.TryAddSingleton<StateFileHealth>();
        services.TryAddSingleton<LoopHealth>();
        services.TryAddSingleton<SamplingService>();
        return services;
    }

    /// <summary>Every feature of the agent, as the daemon and the one-shot commands use them.</summary>
    public static IServiceCollection AddAgent(this IServiceCollection services, IConfiguration configuration) =>
        services
            .AddAgentCore(configuration)
            .AddGpuTelemetry(configuration)
            .AddHostSensors(configuration)
            .AddContainers(configuration)
            .AddVast(configuration)
            .AddManagement(configuration)
            .AddMaintenance(configuration)
            .AddAgentMetrics(configuration);
}
