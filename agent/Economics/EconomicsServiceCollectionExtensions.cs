using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;

namespace VastHostAgent.Economics;

public static class EconomicsServiceCollectionExtensions
{
    /// <summary>Power cost, revenue and margin: options section <c>economics</c> and its source (after the GPU and Vast sources).</summary>
    public static IServiceCollection AddEconomics(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<EconomicsOptions>().Bind(configuration.GetSection(EconomicsOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck(configuration, EconomicsOptions.SectionName, EconomicsOptionsJson.Default.EconomicsOptions);
        services.AddSingleton<IValidateOptions<EconomicsOptions>, EconomicsOptionsValidator>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ISnapshotSource, EconomicsSource>());
        return services;
    }
}
