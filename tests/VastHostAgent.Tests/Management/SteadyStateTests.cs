using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using VastEmulator;
using VastHostAgent.Kernel;
using VastHostAgent.Management;
using VastHostAgent.Tests.Support;
using VastHostAgent.Tests.Vast;

namespace VastHostAgent.Tests.Management;

/// <summary>
/// The agent's own loops (machine poller and management) with their default intervals, on a simulated
/// clock shared with the emulator (real thresholds, real HTTP): hours of steady state in seconds. The
/// emulator's request log counts the API calls per hour and proves no mutation once in sync.
/// </summary>
public sealed class SteadyStateTests(ITestOutputHelper output)
{
    [Fact]
    public async Task In_steady_state_the_agent_makes_no_mutation_and_a_bounded_number_of_calls_per_hour()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-27T00:00:00Z", CultureInfo.InvariantCulture));
        await using var emulator = await EmulatorApp.StartAsync(new EmulatorOptions { TimeProvider = clock, OfferCount = 1500 });
        var price = emulator.State.MachineJson(emulator.State.OwnMachineIds[0])!["listed_gpu_cost"]!.GetValue<double>();
        await using var host = VastTestClient.Create(new()
        {
            ["vast:machineId"] = "0",
            ["vast:hostname"] = "rig-01",
            ["gpu:enabled"] = "false",
            ["host:hwmon"] = "false",
            ["host:disk"] = "false",
            ["agent:stateDirectory"] = TestEnvironment.NewTempDirectory("steady"),
            ["management:enabled"] = "true",
            ["management:dryRun"] = "false",
            ["management:pricing:strategy"] = "market",
            ["management:pricing:floor"] = price.ToString(CultureInfo.InvariantCulture),   // the market decides, the bounds pin it: in sync
            ["management:pricing:ceiling"] = price.ToString(CultureInfo.InvariantCulture),
        }, emulator.BaseUrl, emulator.ApiKey, clock);

        var sampling = host.Services.GetRequiredService<SamplingService>();
        var management = host.Services.GetRequiredService<ManagementService>();
        using var stop = new CancellationTokenSource();
        await sampling.StartAsync(stop.Token);
        await management.StartAsync(stop.Token);

        // While a call to the emulator is in flight the clock runs at 100 ms per real millisecond: its 30 s timeout is 300 ms away.
        var pace = TimeSpan.FromMilliseconds(100);
        await FakeClock.RunForAsync(clock, TimeSpan.FromHours(1), pace, () => host.InFlight);   // warm-up: identify, first reads, market, convergence
        var warmupEnd = emulator.State.Now;
        await FakeClock.RunForAsync(clock, TimeSpan.FromHours(2), pace, () => host.InFlight);
        await management.StopAsync(default);
        await sampling.StopAsync(default);

        var steady = emulator.State.Requests.Where(r => r.Time > warmupEnd).ToList();
        var perHour = steady.Count / 2.0;
        foreach (var group in steady.GroupBy(r => r.Endpoint).OrderByDescending(g => g.Count()))
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{group.Key,-16} {group.Count() / 2.0,6:0.0} calls/hour"));
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"total            {perHour,6:0.0} calls/hour; 429s: {steady.Count(r => r.Status == 429)}"));
        Assert.DoesNotContain(steady, r => r.Mutation);
        Assert.DoesNotContain(steady, r => r.Status == 429);
        Assert.InRange(perHour, 1, 30);
    }
}
