using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.Host;
using VastHostAgent.Hosting;
using VastHostAgent.Kernel;
using VastHostAgent.Metrics;
using VastHostAgent.Tests.Support;
using VastHostAgent.Vast;

namespace VastHostAgent.Tests.Hosting;

/// <summary>
/// A host who mistypes the configuration gets one clear line naming the key and the problem, exit code 2,
/// no stack trace, and the daemon never starts.
/// </summary>
public sealed partial class ConfigurationTests
{
    public static TheoryData<string, string, string> BadFiles => new()
    {
        { "syntax error", """{ "agent": { "sampleInterval": "00:00:05", } "metrics": {} }""", "is not valid JSON at line 1" },
        { "duration not a duration", """{ "agent": { "sampleInterval": "5 seconds" } }""", "agent.sampleInterval: '5 seconds' is not a valid duration" },
        { "duration out of range", """{ "agent": { "sampleInterval": "00:00:00" } }""", "agent.sampleInterval: must be between 00:00:01 and 00:05:00 (got '00:00:00')" },
        { "duration too long", """{ "agent": { "sampleInterval": "01:00:00" } }""", "agent.sampleInterval: must be between 00:00:01 and 00:05:00 (got '01:00:00')" },
        { "listen address without port", """{ "metrics": { "listenAddress": "127.0.0.1" } }""", "metrics.listenAddress: '127.0.0.1' is not an IP address with a port" },
        { "listen address host name", """{ "metrics": { "listenAddress": "localhost:9470" } }""", "metrics.listenAddress: 'localhost:9470' is not an IP address with a port" },
        { "listen port out of range", """{ "metrics": { "listenAddress": "127.0.0.1:70000" } }""", "metrics.listenAddress: '127.0.0.1:70000' is not an IP address with a port" },
        { "misspelt key", """{ "gpu": { "nvmlLibary": "/x/libnvidia-ml.so.1" } }""", "gpu.nvmlLibary: unknown key (known: enabled, nvmlLibrary, xidEvents, kmsgPath, processes)" },
        { "misspelt section", """{ "metric": { "listenAddress": "127.0.0.1:9470" } }""", "metric: unknown section (known: agent, docker, economics, faultGuard, fleet, gpu, host, maintenance, management, metrics, vast)" },
        { "boolean as word", """{ "gpu": { "enabled": "yes" } }""", "gpu.enabled: 'yes' is not true or false" },
        { "relative sysfs root", """{ "host": { "sysfsRoot": "sys" } }""", "host.sysfsRoot: must be an absolute path (got 'sys')" },
        { "empty library", """{ "gpu": { "nvmlLibrary": "" } }""", "gpu.nvmlLibrary:" },
        { "relative kernel log path", """{ "gpu": { "kmsgPath": "kmsg" } }""", "gpu.kmsgPath: must be an absolute path without spaces, or empty to turn the kernel log source off" },
        { "section as value", """{ "gpu": 5 }""", "gpu: must be an object with settings, not a single value" },
        { "duplicate key", """{ "agent": { "sampleInterval": "00:00:05", "sampleInterval": "00:00:06" } }""", "duplicate key" },
        { "state directory relative", """{ "agent": { "stateDirectory": "state" } }""", "agent.stateDirectory: must be an absolute path (got 'state')" },
        { "management without vast", """{ "management": { "enabled": true } }""", "management.enabled: needs vast.enabled=true" },
        { "dcgm host-name label spelt otherwise", """{ "metrics": { "dcgmHostnameLabel": "HOSTNAME" } }""", "metrics.dcgmHostnameLabel: must be Hostname (released dcgm-exporter versions) or hostname (newer ones) (got 'HOSTNAME')" },
        { "unknown role", """{ "agent": { "role": "boss" } }""", "agent.role: must be standalone, rig or controller (got 'boss')" },
        { "rig with the Vast API", """{ "agent": { "role": "rig" }, "vast": { "enabled": true } }""", "vast.enabled: agent.role is rig: a rig agent holds no API key" },
        { "controller without the Vast API", """{ "agent": { "role": "controller" } }""", "agent.role: controller manages the account through the Vast API" },
        { "two entries claim one machine", """{ "agent": { "role": "controller" }, "fleet": { "machines": [ { "ids": [48211] }, { "ids": [48212, 48211] } ] } }""", "fleet.machines.1.ids: machine 48211 is also claimed by fleet.machines.0" },
        { "an entry selecting nothing", """{ "agent": { "role": "controller" }, "fleet": { "machines": [ { "profile": "" } ] } }""", "fleet.machines.0: selects nothing: give ids, hostname (a glob) or gpuModel" },
        { "an unknown profile", """{ "agent": { "role": "controller" }, "fleet": { "machines": [ { "hostname": "rig-*", "profile": "cheap" } ] } }""", "fleet.machines.0.profile: no profile 'cheap' in fleet.profiles (known: none)" },
        { "a misspelt key in a profile", """{ "agent": { "role": "controller" }, "fleet": { "profiles": { "p": { "management": { "pricng": {} } } } } }""", "fleet.profiles.p.management.pricng: unknown key" },
        { "negative tariff", """{ "economics": { "enabled": true, "pricePerKwh": -0.1 } }""", "economics.pricePerKwh: must" },
        { "absurd tariff", """{ "economics": { "enabled": true, "pricePerKwh": 270 } }""", "economics.pricePerKwh: 270 USD/kWh is 270 $/kWh, above the 5 $/kWh no tariff reaches" },
        { "unknown time zone", """{ "economics": { "enabled": true, "pricePerKwh": 0.3, "timeZone": "Europe/Atlantis" } }""", "economics.timeZone: unknown time zone 'Europe/Atlantis'" },
        { "a bad schedule period", """{ "economics": { "enabled": true, "pricePerKwh": 0.3, "schedule": [ { "days": "weekdays", "from": "07:00", "to": "23:00", "pricePerKwh": 0.4 } ] } }""", "economics.schedule[0].days: 'weekdays' is not a weekday list" },
        { "powerCost min bid without economics", """{ "management": { "minBid": { "mode": "powerCost" } } }""", "economics.enabled: must be true when management.minBid.mode is powerCost" },
        { "a bad rule in a profile", """{ "agent": { "role": "controller" }, "fleet": { "profiles": { "p": { "management": { "pricing": { "floor": 5, "ceiling": 1 } } } } } }""", "fleet.profiles.p.management.pricing.floor: must not exceed pricing.ceiling" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public async Task A_bad_configuration_file_exits_2_with_one_line_naming_the_key(string why, string json, string expected)
    {
        var dir = TestEnvironment.NewTempDirectory("badcfg");
        var path = Path.Combine(dir, "agent.json");
        await File.WriteAllTextAsync(path, json);

        // The daemon itself: if validation wrongly passed it would start serving (on a free port, not 9470) and time out.
        string[] args = json.Contains("listenAddress", StringComparison.Ordinal)
            ? ["run", "--config", path]
            : ["run", "--config", path, "--listen", $"127.0.0.1:{AgentProcess.FreePort()}"];
        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(args, timeout: TimeSpan.FromSeconds(20));

        Assert.True(exit == 2, $"{why}: exit {exit}, stderr: {stderr}");
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.StartsWith($"error: invalid configuration ({path}): ", l, StringComparison.Ordinal));
        if (!json.Contains("\"role\"", StringComparison.Ordinal))
        {
            Assert.Single(lines); // the fleet cases also have the controller's missing Vast API: one line per problem
        }

        Assert.Contains(lines, l => l.Contains(expected, StringComparison.Ordinal));
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", stderr, StringComparison.Ordinal);
        Assert.Equal("", stdout.Trim());
    }

    [Fact]
    public void Every_option_of_every_section_is_in_the_hints_and_an_unknown_key_lists_them_all()
    {
        // The hints come from each options type's metadata: an option missing there (or a section whose keys are
        // hand-kept) fails here, for every section and every nested object or list entry.
        var services = new ServiceCollection().AddLogging();
        var empty = new ConfigurationBuilder().Build();
        services.AddAgent(empty);
        using var provider = services.BuildServiceProvider();
        var sections = provider.GetServices<IOptionsSection>().ToList();
        Assert.Equal(["agent", "docker", "economics", "faultGuard", "fleet", "gpu", "host", "maintenance", "management", "metrics", "vast"], sections.Select(s => s.Name).Order(StringComparer.Ordinal));

        var checkedTypes = 0;
        foreach (var section in sections)
        {
            var pending = new Queue<(string Path, System.Text.Json.Serialization.Metadata.JsonTypeInfo Info)>([(section.Name, section.Schema)]);
            while (pending.TryDequeue(out var next))
            {
                var (path, info) = next;
                var expected = info.Type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).Select(p => OptionsSchema.Camel(p.Name)).Order(StringComparer.Ordinal).ToList();
                Assert.Equal(expected, OptionsSchema.Keys(info).Order(StringComparer.Ordinal).ToList());
                checkedTypes++;

                // What a host sees for a typo at this level.
                var typo = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [path.Replace('.', ':') + ":notAnOption"] = "1" }).Build();
                var problem = Assert.Single(OptionsSchema.Walk(path, typo.GetSection(path.Replace('.', ':')), info));
                Assert.StartsWith($"{path}.notAnOption: unknown key (known: ", problem, StringComparison.Ordinal);
                Assert.All(expected, key => Assert.Contains(key, problem, StringComparison.Ordinal));

                foreach (var property in info.Properties)
                {
                    var child = info.Options.GetTypeInfo(property.PropertyType);
                    if (child.Kind == System.Text.Json.Serialization.Metadata.JsonTypeInfoKind.Object)
                    {
                        pending.Enqueue(($"{path}.{property.Name}", child));
                    }
                    else if (child is { Kind: System.Text.Json.Serialization.Metadata.JsonTypeInfoKind.Enumerable, ElementType: { } element }
                             && info.Options.GetTypeInfo(element) is { Kind: System.Text.Json.Serialization.Metadata.JsonTypeInfoKind.Object } item)
                    {
                        pending.Enqueue(($"{path}.{property.Name}.0", item));
                    }
                }
            }
        }

        Assert.True(checkedTypes >= 15, $"only {checkedTypes} options types checked");
    }

    [Fact]
    public async Task A_bad_environment_variable_names_the_key()
    {
        var (exit, _, stderr) = await AgentProcess.RunToExitAsync(
            ["metrics"],
            new Dictionary<string, string?> { ["VASTHOST_AGENT__SAMPLEINTERVAL"] = "soon", ["VASTHOST_GPU__ENABLED"] = "false" });
        Assert.Equal(2, exit);
        Assert.Contains("agent.sampleInterval: 'soon' is not a valid duration", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_explicit_file_is_an_error_but_a_missing_default_file_is_not()
    {
        var (exit, _, stderr) = await AgentProcess.RunToExitAsync(["metrics", "--config", "/nonexistent/agent.json"]);
        Assert.Equal(2, exit);
        Assert.Contains("configuration file /nonexistent/agent.json does not exist", stderr, StringComparison.Ordinal);

        var viaEnv = await AgentProcess.RunToExitAsync(["metrics"], new Dictionary<string, string?> { ["VASTHOST_CONFIG"] = "/nonexistent/other.json" });
        Assert.Equal(2, viaEnv.ExitCode);
        Assert.Contains("/nonexistent/other.json does not exist", viaEnv.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Several_problems_give_one_line_each()
    {
        var dir = TestEnvironment.NewTempDirectory("multi");
        var path = Path.Combine(dir, "agent.json");
        await File.WriteAllTextAsync(path, """{ "agent": { "sampleInterval": "00:00:00" }, "metrics": { "listenAddress": "nowhere" } }""");
        var (exit, _, stderr) = await AgentProcess.RunToExitAsync(["doctor", "--config", path]);
        Assert.Equal(2, exit);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Contains(lines, l => l.Contains("agent.sampleInterval", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("metrics.listenAddress", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Unknown_command_line_arguments_exit_2()
    {
        var (exit, _, stderr) = await AgentProcess.RunToExitAsync(["run", "--lisen", "x"]);
        Assert.Equal(2, exit);
        Assert.Contains("--lisen", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void The_example_file_loads_validates_and_equals_the_built_in_defaults()
    {
        var path = Path.Combine(TestEnvironment.RepositoryRoot, "packaging", "config", "agent.example.json");
        var configuration = AgentConfiguration.Build(new AgentConfiguration.Source(path, true));
        Assert.Empty(AgentRuntime.Validate(configuration));

        var services = new ServiceCollection().AddLogging().AddAgent(configuration).BuildServiceProvider();
        AssertSameValues(new AgentOptions(), services.GetRequiredService<IOptions<AgentOptions>>().Value);
        AssertSameValues(new MetricsOptions(), services.GetRequiredService<IOptions<MetricsOptions>>().Value);
        AssertSameValues(new GpuOptions(), services.GetRequiredService<IOptions<GpuOptions>>().Value);
        AssertSameValues(new HostSensorOptions(), services.GetRequiredService<IOptions<HostSensorOptions>>().Value);
        AssertSameValues(new DockerOptions(), services.GetRequiredService<IOptions<DockerOptions>>().Value);
        AssertSameValues(new VastOptions(), services.GetRequiredService<IOptions<VastOptions>>().Value);
        AssertSameValues(new VastHostAgent.Economics.EconomicsOptions(), services.GetRequiredService<IOptions<VastHostAgent.Economics.EconomicsOptions>>().Value, "Schedule");
        Assert.Empty(services.GetRequiredService<IOptions<VastHostAgent.Economics.EconomicsOptions>>().Value.Schedule);
        var management = services.GetRequiredService<IOptions<VastHostAgent.Management.ManagementOptions>>().Value;
        AssertSameValues(new VastHostAgent.Management.ManagementOptions(), management, "Listing", "Pricing", "MinBid", "DefaultJob");
        AssertSameValues(new VastHostAgent.Management.ListingOptions(), management.Listing);
        AssertSameValues(new VastHostAgent.Management.PricingOptions(), management.Pricing, "Market", "Occupancy");
        AssertSameValues(new VastHostAgent.Management.MarketPricingOptions(), management.Pricing.Market);
        AssertSameValues(new VastHostAgent.Management.OccupancyPricingOptions(), management.Pricing.Occupancy);
        AssertSameValues(new VastHostAgent.Management.MinBidOptions(), management.MinBid);
        AssertSameValues(new VastHostAgent.Management.DefaultJobOptions(), management.DefaultJob);
        AssertSameValues(new VastHostAgent.Maintenance.MaintenanceOptions(), services.GetRequiredService<IOptions<VastHostAgent.Maintenance.MaintenanceOptions>>().Value);
        AssertSameValues(new VastHostAgent.Maintenance.FaultGuardOptions(), services.GetRequiredService<IOptions<VastHostAgent.Maintenance.FaultGuardOptions>>().Value);
    }

    [Fact]
    public void A_configured_list_replaces_the_default_list_instead_of_adding_to_it()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["faultGuard:criticalXids:0"] = "79",
            ["faultGuard:criticalXids:1"] = "48",
        }).Build();
        var services = new ServiceCollection().AddLogging().AddAgent(configuration).BuildServiceProvider();
        Assert.Equal([79, 48], services.GetRequiredService<IOptions<VastHostAgent.Maintenance.FaultGuardOptions>>().Value.CriticalXids);

        var defaults = new ServiceCollection().AddLogging().AddAgent(new ConfigurationBuilder().Build()).BuildServiceProvider();
        Assert.Equal([48, 62, 64, 74, 79, 95, 119, 120], defaults.GetRequiredService<IOptions<VastHostAgent.Maintenance.FaultGuardOptions>>().Value.CriticalXids);
    }

    [Fact]
    public void The_example_file_documents_every_option()
    {
        var text = File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "packaging", "config", "agent.example.json"));
        foreach (var (section, type) in new (string, Type)[]
                 {
                     (AgentOptions.SectionName, typeof(AgentOptions)),
                     (MetricsOptions.SectionName, typeof(MetricsOptions)),
                     (GpuOptions.SectionName, typeof(GpuOptions)),
                     (HostSensorOptions.SectionName, typeof(HostSensorOptions)),
                     (DockerOptions.SectionName, typeof(DockerOptions)),
                     (VastOptions.SectionName, typeof(VastOptions)),
                     (VastHostAgent.Economics.EconomicsOptions.SectionName, typeof(VastHostAgent.Economics.EconomicsOptions)),
                     (VastHostAgent.Management.ManagementOptions.SectionName, typeof(VastHostAgent.Management.ManagementOptions)),
                     ("listing", typeof(VastHostAgent.Management.ListingOptions)),
                     ("pricing", typeof(VastHostAgent.Management.PricingOptions)),
                     ("market", typeof(VastHostAgent.Management.MarketPricingOptions)),
                     ("occupancy", typeof(VastHostAgent.Management.OccupancyPricingOptions)),
                     ("minBid", typeof(VastHostAgent.Management.MinBidOptions)),
                     ("defaultJob", typeof(VastHostAgent.Management.DefaultJobOptions)),
                     (VastHostAgent.Maintenance.MaintenanceOptions.SectionName, typeof(VastHostAgent.Maintenance.MaintenanceOptions)),
                     (VastHostAgent.Maintenance.FaultGuardOptions.SectionName, typeof(VastHostAgent.Maintenance.FaultGuardOptions)),
                     (VastHostAgent.Fleet.FleetOptions.SectionName, typeof(VastHostAgent.Fleet.FleetOptions)),
                     ("prometheus", typeof(VastHostAgent.Fleet.PrometheusOptions)),
                 })
        {
            Assert.Contains($"\"{section}\": {{", text, StringComparison.Ordinal);
            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
            {
                var key = OptionsSchema.Camel(property.Name);
                Assert.True(Regex.IsMatch(text, $"\"{key}\":"), $"{section}.{key} is not in agent.example.json");
            }
        }

        // List entries are shown as commented examples.
        foreach (var type in new[] { typeof(VastHostAgent.Maintenance.WindowOptions), typeof(VastHostAgent.Maintenance.RecurringWindowOptions), typeof(VastHostAgent.Economics.TariffPeriodOptions) })
        {
            foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
            {
                var key = OptionsSchema.Camel(property.Name);
                Assert.True(Regex.IsMatch(text, $"//.*\"{key}\": [\"0-9]"), $"{type.Name}.{key} has no example in agent.example.json");
            }
        }
    }

    private static void AssertSameValues<T>(T expected, T actual, params string[] skip)
    {
        foreach (var property in typeof(T).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && !skip.Contains(p.Name)))
        {
            var (e, a) = (property.GetValue(expected), property.GetValue(actual));
            if (e is System.Collections.IEnumerable es && e is not string && a is System.Collections.IEnumerable @as)
            {
                Assert.Equal(es.Cast<object>(), @as.Cast<object>());
                continue;
            }

            Assert.True(Equals(e, a),
                $"{typeof(T).Name}.{property.Name}: example has {property.GetValue(actual)}, default is {property.GetValue(expected)}");
        }
    }
}
