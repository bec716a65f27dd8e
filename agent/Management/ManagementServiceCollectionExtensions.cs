using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Hosting;

namespace VastHostAgent.Management;

public static class ManagementServiceCollectionExtensions
{
    private static readonly Dictionary<string, (string Path, string[] Keys)> Nested = new(StringComparer.Ordinal)
    {
        [typeof(ListingOptions).FullName!] = ("listing", ["listWhenUnlisted", "storagePrice", "uploadPrice", "downloadPrice", "minChunk", "discountMax", "offerDuration", "refreshWhenLessThan", "volumeSizeGb", "volumePrice"]),
        [typeof(PricingOptions).FullName!] = ("pricing", ["strategy", "fixedPrice", "floor", "ceiling", "maxChangePerStep", "minChange", "cooldown", "noRaiseWhileRented", "market", "occupancy"]),
        [typeof(MarketPricingOptions).FullName!] = ("pricing.market", ["percentile", "multiplier", "offset", "minPeers", "verifiedOnly", "refreshInterval", "maxAge", "useMetricsFallback", "hostShare"]),
        [typeof(OccupancyPricingOptions).FullName!] = ("pricing.occupancy", ["enabled", "idleAfter", "stepInterval", "stepDown", "busyTarget", "stepUp"]),
        [typeof(MinBidOptions).FullName!] = ("minBid", ["mode", "fixed", "ratio", "floor"]),
        [typeof(DefaultJobOptions).FullName!] = ("defaultJob", ["mode", "image", "args", "price"]),
    };

    /// <summary>Listing reconciliation and pricing: options section <c>management</c>, the reconciler and its loop.</summary>
    public static IServiceCollection AddManagement(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ManagementOptions>().Bind(configuration.GetSection(ManagementOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck<ManagementOptions, ManagementOptionsValidator>(ManagementOptions.SectionName,
            ["enabled", "dryRun", "reconcileInterval", "jitter", "mutationBudgetPerHour", "unknownOutcomeQuarantine", "journalMaxBytes", "listing", "pricing", "minBid", "defaultJob"], Nested);
        services.TryAddSingleton(sp => new ManagementStateStore(
            sp.GetRequiredService<IOptions<AgentOptions>>().Value.StateDirectory,
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger<ManagementStateStore>(),
            sp.GetRequiredService<StateFileHealth>()));
        services.TryAddSingleton(sp => new DecisionJournal(
            sp.GetRequiredService<IOptions<AgentOptions>>().Value.StateDirectory,
            sp.GetRequiredService<IOptions<ManagementOptions>>().Value.JournalMaxBytes));
        services.TryAddSingleton<MarketData>();
        services.TryAddSingleton<ManagementMetrics>();
        services.TryAddSingleton<MutationPath>();
        services.TryAddSingleton<Reconciler>();
        services.TryAddSingleton<ManagementService>();
        return services;
    }
}
