using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace VastHostAgent.Kernel;

public static class KernelServiceCollectionExtensions
{
    /// <summary>The shared kernel: options section <c>agent</c>, the clock, the snapshot store, loop and state-file health, and the sampling loops.</summary>
    public static IServiceCollection AddKernel(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<AgentOptions>().Bind(configuration.GetSection(AgentOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck(configuration, AgentOptions.SectionName, AgentOptionsJson.Default.AgentOptions);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<SnapshotStore>();
        services.TryAddSingleton<StateFileHealth>();
        services.TryAddSingleton<LoopHealth>();
        services.TryAddSingleton<SamplingService>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, SamplingService>(sp => sp.GetRequiredService<SamplingService>()));
        return services;
    }
}
