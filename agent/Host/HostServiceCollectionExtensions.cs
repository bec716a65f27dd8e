using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;

namespace VastHostAgent.Host;

public static class HostServiceCollectionExtensions
{
    /// <summary>Board sensors and disk space: options section <c>host</c>, readers and samplers.</summary>
    public static IServiceCollection AddHostSensors(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<HostSensorOptions>().Bind(configuration.GetSection(HostSensorOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck(configuration, HostSensorOptions.SectionName, HostOptionsJson.Default.HostSensorOptions);
        services.TryAddSingleton<IHwmonReader>(sp => new HwmonReader(sp.GetRequiredService<IOptions<HostSensorOptions>>().Value.SysfsRoot));
        services.TryAddSingleton<IDiskSpaceReader, StatVfsDiskSpaceReader>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ISnapshotSource, HwmonSource>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ISnapshotSource, DiskSource>());
        return services;
    }
}
