using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using VastHostAgent.Containers;

namespace VastHostAgent.Rentals;

public static class RentalsServiceCollectionExtensions
{
    /// <summary>The rental ledger (options <c>docker.ledger</c>, <c>docker.ledgerMaxBytes</c>, <c>docker.ledgerFiles</c>), after the containers feature.</summary>
    public static IServiceCollection AddRentals(this IServiceCollection services, IConfiguration configuration)
    {
        _ = configuration; // its options live in the docker section (AddContainers binds and checks them)
        services.TryAddSingleton<IDockerEngineFactory, DockerDotNetEngineFactory>();
        services.TryAddSingleton<RentalMetrics>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, RentalLedgerService>());
        return services;
    }
}
