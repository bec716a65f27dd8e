using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using VastEmulator;
using VastHostAgent.Fleet;
using VastHostAgent.Kernel;
using VastHostAgent.Management;
using VastHostAgent.Tests.Support;
using VastHostAgent.Tests.Vast;

namespace VastHostAgent.Tests.Fleet;

/// <summary>
/// The controller over an account of 1,000 machines (four GPU models, three sizes) on a simulated clock shared
/// with the emulator (real per-endpoint thresholds, real HTTP): it converges, then makes no mutation for hours,
/// and its reads per hour do not grow with the machine count.
/// </summary>
public sealed class FleetSteadyStateTests(ITestOutputHelper output)
{
    private static readonly string[] Models = ["RTX 4090", "RTX 3090", "A100 SXM4", "H100 SXM"];

    [Fact]
    public async Task A_controller_converges_1000_machines_then_makes_no_mutation_with_reads_that_do_not_grow_with_the_fleet()
    {
        const int machines = 1000;
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-27T00:00:00Z", CultureInfo.InvariantCulture));
        await using var emulator = await EmulatorApp.StartAsync(new EmulatorOptions
        {
            TimeProvider = clock,
            OfferCount = 1500,
            MachineHostnames = EmulatorOptions.FleetHostnames(machines),
            MachineGpuModels = Models,
            MachineGpuCounts = [8, 4, 1],
        });
        var state = TestEnvironment.NewTempDirectory("fleet-steady");
        var settings = ControllerSettings.Create(state);
        settings["fleet:mutationBudgetPerHour"] = "5000";
        settings["fleet:profiles:market:management:pricing:strategy"] = "market";
        settings["fleet:profiles:market:management:pricing:minChange"] = "0.5";
        settings["fleet:profiles:market:management:pricing:maxChangePerStep"] = "0.5";
        settings["fleet:profiles:market:management:pricing:cooldown"] = "00:30:00";
        settings["fleet:profiles:market:management:pricing:market:minPeers"] = "3";
        settings["fleet:machines:0:gpuModel"] = "RTX 4090";
        settings["fleet:machines:0:profile"] = "market";
        for (var i = 1; i < Models.Length; i++)
        {
            settings[$"fleet:machines:{i}:gpuModel"] = Models[i];
        }

        var check = Stopwatch.StartNew();
        var listedAll = false;
        bool Converged()
        {
            // Counting the request log is not free: at most four times a real second.
            if (!listedAll && check.ElapsedMilliseconds >= 250)
            {
                check.Restart();
                listedAll = emulator.State.Requests.Count(r => r.Endpoint == Endpoints.CreateAsks && r.Applied) >= machines;
            }

            return listedAll;
        }

        await using var host = VastTestClient.Create(settings, emulator.BaseUrl, emulator.ApiKey, clock);
        var sampling = host.Services.GetRequiredService<SamplingService>();
        var management = host.Services.GetRequiredService<ManagementService>();
        using var stop = new CancellationTokenSource();
        await sampling.StartAsync(stop.Token);
        await management.StartAsync(stop.Token);

        var pace = TimeSpan.FromMilliseconds(100);
        // Convergence: 1,000 create_asks paced by the API's spacing (about 35 simulated minutes; more on a busy
        // machine, where each call's real time runs the clock at `pace`), then an hour to settle.
        await FakeClock.PumpUntilAsync(Converged, clock, pace, TimeSpan.FromHours(12), "every machine listed as configured",
            () => host.InFlight || management.Reconciling);
        await FakeClock.RunForAsync(clock, TimeSpan.FromHours(1), pace, () => host.InFlight || management.Reconciling);
        var converged = emulator.State.Requests.Count(r => r.Mutation && r.Applied);
        var warmupEnd = emulator.State.Now;
        const double steadyHours = 3;
        await FakeClock.RunForAsync(clock, TimeSpan.FromHours(steadyHours), pace, () => host.InFlight || management.Reconciling);
        await management.StopAsync(default);
        await sampling.StopAsync(default);

        var fleet = host.Services.GetRequiredService<FleetReconciler>();
        Assert.Equal(machines, fleet.Selection!.Managed);
        var own = emulator.State.OwnMachineIds.Select(id => emulator.State.MachineJson(id)!).ToList();
        Assert.All(own, m => Assert.Equal(0.2, m["credit_discount_max"]!.GetValue<double>(), 6));
        Assert.All(own, m => Assert.Equal(30 * 86400, m["duration"]!.GetValue<double>()));   // the end date rolls on Vast: no refresh calls, ever
        Assert.True(converged >= machines, $"{converged} mutations to converge {machines} machines");

        var steady = emulator.State.Requests.Where(r => r.Time > warmupEnd).ToList();
        foreach (var group in steady.GroupBy(r => r.Endpoint).OrderByDescending(g => g.Count()))
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{group.Key,-16} {group.Count() / steadyHours,6:0.0} calls/hour"));
        }

        var perHour = steady.Count / steadyHours;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{machines} machines: converged with {converged} mutations; steady {perHour:0.0} calls/hour; 429s overall: {emulator.State.Requests.Count(r => r.Status == 429)}"));
        Assert.DoesNotContain(steady, r => r.Mutation);
        Assert.DoesNotContain(emulator.State.Requests, r => r.Status == 429);
        Assert.InRange(perHour, 1, 40);
    }
}
