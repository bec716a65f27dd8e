using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;
using VastHostAgent.Maintenance;
using VastHostAgent.Management;

namespace VastHostAgent.Fleet;

public static class FleetServiceCollectionExtensions
{
    /// <summary>The named HTTP client of the Prometheus reader.</summary>
    public const string PrometheusHttpClientName = "prometheus";

    /// <summary>
    /// The controller role: section <c>fleet</c>, the fleet reconcile (which replaces the one-machine reconcile as the
    /// management loop's driver when <c>agent.role</c> is controller), the shared market and rig health from Prometheus.
    /// </summary>
    public static IServiceCollection AddFleet(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<FleetOptions>().Bind(configuration.GetSection(FleetOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck(configuration, FleetOptions.SectionName, FleetOptionsJson.Default.FleetOptions);
        services.TryAddSingleton(_ => new FleetPolicies(configuration));
        services.AddHttpClient(PrometheusHttpClientName, client => client.Timeout = Timeout.InfiniteTimeSpan); // the source's own timeout, on the TimeProvider
        services.TryAddSingleton<IRigHealthSource>(sp => new PrometheusRigHealthSource(
            sp.GetRequiredService<IHttpClientFactory>().CreateClient(PrometheusHttpClientName),
            sp.GetRequiredService<IOptions<FleetOptions>>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<PrometheusRigHealthSource>>()));
        services.TryAddSingleton<FleetMachines>();
        services.TryAddSingleton<FleetMarket>();
        services.TryAddSingleton<FleetMetrics>();
        // The per-machine reconcile without the standalone machine's maintenance: each managed machine brings its own.
        services.TryAddSingleton(sp => new FleetReconciler(
            sp.GetRequiredService<Vast.IVastClient>(),
            new Reconciler(
                sp.GetRequiredService<Vast.IVastClient>(),
                sp.GetRequiredService<Vast.VastMachineLocator>(),
                sp.GetRequiredService<MarketData>(),
                sp.GetRequiredService<ManagementStateStore>(),
                sp.GetRequiredService<MutationPath>(),
                sp.GetRequiredService<DecisionJournal>(),
                sp.GetRequiredService<ManagementMetrics>(),
                sp.GetRequiredService<SnapshotStore>(),
                sp.GetRequiredService<IOptions<ManagementOptions>>(),
                sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<Reconciler>>(),
                maintenance: null),
            sp.GetRequiredService<FleetMachines>(),
            sp.GetRequiredService<FleetMarket>(),
            sp.GetRequiredService<FleetMetrics>(),
            sp.GetRequiredService<SnapshotStore>(),
            sp.GetRequiredService<IOptions<FleetOptions>>(),
            sp.GetRequiredService<FleetPolicies>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<FleetReconciler>>(),
            sp.GetService<IRigHealthSource>()));
        services.TryAddSingleton<IFleetStatusSource>(sp => sp.GetRequiredService<FleetReconciler>());
        services.Replace(ServiceDescriptor.Singleton<IReconcileDriver>(sp =>
            sp.GetRequiredService<IOptions<AgentOptions>>().Value.Role == AgentRole.Controller
                ? sp.GetRequiredService<FleetReconciler>()
                : sp.GetRequiredService<Reconciler>()));
        return services;
    }

    /// <summary>The controller's rules across sections: entries, profiles, the rig health source. One line per problem, naming the key.</summary>
    public static IEnumerable<string> ConfigurationProblems(IConfiguration configuration)
    {
        FleetOptions fleet;
        FleetPolicies policies;
        try
        {
            fleet = configuration.GetSection(FleetOptions.SectionName).Get<FleetOptions>() ?? new FleetOptions();
            policies = new FleetPolicies(configuration);
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or ArgumentException or OverflowException)
        {
            yield break; // the sections' own checks say what does not bind
        }

        var owner = new Dictionary<long, int>();
        for (var i = 0; i < fleet.Machines.Count; i++)
        {
            var entry = fleet.Machines[i];
            var key = string.Create(CultureInfo.InvariantCulture, $"fleet.machines.{i}");
            if (entry.Ids.Count == 0 && string.IsNullOrWhiteSpace(entry.Hostname) && string.IsNullOrWhiteSpace(entry.GpuModel))
            {
                yield return $"{key}: selects nothing: give ids, hostname (a glob) or gpuModel";
            }

            if (entry.Profile.Trim() is { Length: > 0 } profile && !policies.Contains(profile))
            {
                yield return $"{key}.profile: no profile '{profile}' in fleet.profiles (known: {(policies.Names.Any() ? string.Join(", ", policies.Names.Order(StringComparer.Ordinal)) : "none")})";
            }

            foreach (var id in entry.Ids)
            {
                if (id <= 0)
                {
                    yield return string.Create(CultureInfo.InvariantCulture, $"{key}.ids: {id} is not a machine id");
                }
                else if (owner.TryGetValue(id, out var first) && first != i)
                {
                    yield return string.Create(CultureInfo.InvariantCulture, $"{key}.ids: machine {id} is also claimed by fleet.machines.{first}; one machine, one entry");
                }
                else
                {
                    owner[id] = i;
                }
            }
        }

        foreach (var name in policies.Names.Prepend(""))
        {
            var policy = policies[name];
            var prefix = name.Length == 0 ? "" : $"fleet.profiles.{name}.";
            if (name.Length > 0)
            {
                // The top-level sections report their own problems; a profile's effective policy is checked here.
                var management = new ManagementOptionsValidator().Validate(null, policy.Management);
                foreach (var failure in management.Failed ? management.Failures : [])
                {
                    yield return prefix + failure;
                }

                var maintenance = new MaintenanceOptionsValidator().Validate(null, policy.Maintenance);
                foreach (var failure in maintenance.Failed ? maintenance.Failures : [])
                {
                    yield return prefix + failure;
                }
            }

            if (policy.FaultGuard.Enabled && string.IsNullOrWhiteSpace(fleet.Prometheus.Url))
            {
                yield return $"fleet.prometheus.url: required when {prefix}faultGuard.enabled is true (the controller reads rig health from the Prometheus that scrapes the rig agents)";
            }
        }
    }
}

