using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using VastHostAgent.Kernel;

namespace VastHostAgent.Gpu;

public static class GpuServiceCollectionExtensions
{
    /// <summary>NVML telemetry: options section <c>gpu</c>, the telemetry session and its sampler, and the kernel-log XID source.</summary>
    public static IServiceCollection AddGpuTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<GpuOptions>().Bind(configuration.GetSection(GpuOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck(configuration, GpuOptions.SectionName, GpuOptionsJson.Default.GpuOptions);
        services.TryAddSingleton<XidLedger>();
        services.TryAddSingleton<IGpuTelemetry, NvmlGpuTelemetry>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, KernelLogWatcher>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ISnapshotSource, GpuSource>());
        return services;
    }
}
