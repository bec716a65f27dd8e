using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using VastHostAgent.Host;
using VastHostAgent.Kernel;

namespace VastHostAgent.GpuCount;

public static class GpuCountServiceCollectionExtensions
{
    /// <summary>GPU-count truth (options in section <c>host</c>): the PCI scanner and its source (after the GPU and Vast sources).</summary>
    public static IServiceCollection AddGpuCount(this IServiceCollection services)
    {
        services.TryAddSingleton<IPciGpuScanner>(sp => new SysfsPciGpuScanner(sp.GetRequiredService<IOptions<HostSensorOptions>>().Value.SysfsRoot));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ISnapshotSource, GpuCountSource>());
        return services;
    }
}
