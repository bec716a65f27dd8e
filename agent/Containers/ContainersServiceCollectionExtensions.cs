using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using VastHostAgent.Host;
using VastHostAgent.Kernel;

namespace VastHostAgent.Containers;

public static class ContainersServiceCollectionExtensions
{
    /// <summary>Docker inventory, cgroup readers and container stats: options section <c>docker</c>.</summary>
    public static IServiceCollection AddContainers(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<DockerOptions>().Bind(configuration.GetSection(DockerOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck(configuration, DockerOptions.SectionName, DockerOptionsJson.Default.DockerOptions);
        services.TryAddSingleton(sp =>
        {
            var host = sp.GetRequiredService<IOptions<HostSensorOptions>>().Value;
            return new CgroupReader(host.ProcRoot, host.CgroupRoot);
        });
        services.TryAddSingleton<IContainerResourceReader>(sp => sp.GetRequiredService<CgroupReader>());
        services.TryAddSingleton<IProcessContainerResolver>(sp => sp.GetRequiredService<CgroupReader>());
        services.TryAddSingleton<IDockerEngineFactory, DockerDotNetEngineFactory>();
        services.TryAddSingleton<DockerInventoryService>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, DockerInventoryService>(sp => sp.GetRequiredService<DockerInventoryService>()));
        services.TryAddSingleton<IContainerInventory>(sp => sp.GetRequiredService<DockerInventoryService>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IEventCollector, DockerInventoryService>(sp => sp.GetRequiredService<DockerInventoryService>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ISnapshotSource, ContainerStatsSource>());
        return services;
    }
}
