using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using VastHostAgent.Containers;
using VastHostAgent.Economics;
using VastHostAgent.Fleet;
using VastHostAgent.Gpu;
using VastHostAgent.GpuCount;
using VastHostAgent.Host;
using VastHostAgent.Kernel;
using VastHostAgent.Maintenance;
using VastHostAgent.Management;
using VastHostAgent.Metrics;
using VastHostAgent.Rentals;
using VastHostAgent.Vast;

namespace VastHostAgent.Hosting;

public static class HostingServiceCollectionExtensions
{
    /// <summary>Every feature of the agent, as the daemon and the one-shot commands use them.</summary>
    public static IServiceCollection AddAgent(this IServiceCollection services, IConfiguration configuration) =>
        services
            .AddKernel(configuration)
            .AddGpuTelemetry(configuration)
            .AddHostSensors(configuration)
            .AddContainers(configuration)
            .AddRentals(configuration)
            .AddVast(configuration)
            .AddEconomics(configuration)
            .AddGpuCount()
            .AddManagement(configuration)
            .AddMaintenance(configuration)
            .AddFleet(configuration)
            .AddAgentMetrics(configuration);
}
