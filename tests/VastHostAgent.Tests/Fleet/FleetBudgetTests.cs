using Microsoft.Extensions.DependencyInjection;
using VastEmulator;
using VastHostAgent.Fleet;
using VastHostAgent.Management;
using VastHostAgent.Tests.Support;
using VastHostAgent.Tests.Vast;

namespace VastHostAgent.Tests.Fleet;

/// <summary>The account's hourly mutation budget (fleet.mutationBudgetPerHour) holds across machines and across a restart.</summary>
public sealed class FleetBudgetTests
{
    [Fact]
    public async Task The_account_budget_stops_mutations_across_machines_and_still_counts_them_after_a_restart()
    {
        await using var emulator = await EmulatorApp.StartAsync(new EmulatorOptions { MachineHostnames = EmulatorOptions.FleetHostnames(5), OfferCount = 100, RateLimitsEnabled = false });
        var state = TestEnvironment.NewTempDirectory("fleet-budget");
        var settings = ControllerSettings.Create(state);
        settings["vast:spacingScale"] = "0.01";
        settings["fleet:mutationBudgetPerHour"] = "2";
        settings["fleet:machines:0:hostname"] = "*";

        async Task<IReadOnlyList<ReconcileReport>> CycleAsync()
        {
            await using var host = VastTestClient.Create(settings, emulator.BaseUrl, emulator.ApiKey);
            return await host.Services.GetRequiredService<FleetReconciler>().RunAsync(apply: true, dryRun: false, only: null, default);
        }

        var first = await CycleAsync();
        Assert.True(first.Count == 5, string.Join(" | ", first.Select(r => $"{r.MachineId} {r.Problem} {string.Join(",", r.Results.Select(m => m.Result + " " + m.Detail))}")));
        Assert.Equal(2, first.Count(r => r.Results.Any(m => m.Result == MutationResult.Applied)));
        Assert.Equal(3, first.Count(r => r.Results.Any(m => m.Result == MutationResult.SkippedBudget)));
        Assert.Contains("fleet.mutationBudgetPerHour", first[^1].Results.Single().Detail, StringComparison.Ordinal);
        Assert.Equal(2, emulator.State.Requests.Count(r => r.Mutation));

        // A new controller process within the hour: the two mutations still count, nothing is sent.
        var second = await CycleAsync();
        Assert.All(second, r => Assert.DoesNotContain(r.Results, m => m.Result.Sent()));
        Assert.Equal(2, emulator.State.Requests.Count(r => r.Mutation));
    }
}
