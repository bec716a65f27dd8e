using System.Globalization;
using VastEmulator;
using VastHostAgent.Management;
using VastHostAgent.Tests.Maintenance;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Management;

/// <summary>
/// Defect 12.6: a slow server applies a create_asks long after the client gave up. The agent must not decide and
/// send again until a read taken after the quarantine shows what happened, so the late call can never overwrite a
/// newer price.
/// </summary>
public sealed class UnknownOutcomeTests
{
    private static Dictionary<string, string?> Settings(double price) => new()
    {
        ["vast:requestTimeout"] = "00:00:03",
        ["management:pricing:maxChangePerStep"] = "1.0",
        ["management:defaultJob:mode"] = "unmanaged",
        ["management:pricing:fixedPrice"] = price.ToString(CultureInfo.InvariantCulture),
    };

    [Fact]
    public async Task A_change_applied_after_the_timeout_is_never_followed_by_a_second_one_until_a_read_after_the_quarantine()
    {
        await using var rig = await MaintenanceRig.StartAsync(Settings(0.40));
        rig.Emulator.State.AddFault(new FaultSpec(Endpoints.CreateAsks, DelayMs: 10_000, PassThrough: true));

        var first = await rig.ReconcileAsync();
        Assert.Equal(MutationResult.OutcomeUnknown, Assert.Single(first.Results).Result);
        var unknown = new ManagementStateStore(rig.StateDirectory).Load().Unknown!;
        Assert.True(unknown.Until - rig.Now >= TimeSpan.FromMinutes(4), $"quarantine ends {unknown.Until}, now {rig.Now}");

        // The market moved (a restart with a new price): the machine still shows the old listing, since the
        // server has not applied the first call yet. Nothing may be sent.
        await rig.RestartWithAsync(s =>
        {
            s["management:pricing:fixedPrice"] = "0.45";
            return s;
        });
        for (var i = 1; i <= 3; i++)
        {
            var held = await rig.ReconcileAtAsync(rig.Now.AddMinutes(1));
            var record = Assert.Single(held.Results);
            Assert.Equal(MutationResult.HeldQuarantine, record.Result);
            Assert.NotNull(held.BackOff);
        }

        await Poll.UntilAsync(() => rig.Applied(Endpoints.CreateAsks) == 1, TimeSpan.FromSeconds(20), "the slow server to apply the first create_asks");
        Assert.Equal(1, rig.Requests(Endpoints.CreateAsks));   // the emulator logs a request once it is handled
        Assert.Equal(0.40, rig.Machine["listed_gpu_cost"]!.GetValue<double>());

        // After the quarantine: the read shows what the server did, and the newer price goes out once.
        var after = await rig.ReconcileAtAsync(unknown.Until);
        Assert.Equal(MutationResult.Applied, Assert.Single(after.Results).Result);
        Assert.Equal(0.45, rig.Machine["listed_gpu_cost"]!.GetValue<double>());
        Assert.Equal(2, rig.Requests(Endpoints.CreateAsks));
        Assert.Contains(rig.Journal(), e => e.Reason == "re_read_after_unknown_outcome");
        Assert.Contains(rig.Journal(), e => e.Kind == "mutation" && e.Result == "held_quarantine" && e.Endpoint == "create_asks");
        Assert.Null(new ManagementStateStore(rig.StateDirectory).Load().Unknown);

        // And nothing more: in sync.
        await rig.ReconcileAtAsync(rig.Now.AddMinutes(5));
        Assert.Equal(2, rig.Requests(Endpoints.CreateAsks));
    }

    [Fact]
    public async Task The_quarantine_is_at_least_three_request_timeouts_whatever_is_configured()
    {
        await using var rig = await MaintenanceRig.StartAsync(new()
        {
            ["vast:requestTimeout"] = "00:01:00",
            ["management:unknownOutcomeQuarantine"] = "00:00:10",
        });
        var path = rig.Host.Services.GetService(typeof(MutationPath)) as MutationPath;
        Assert.Equal(TimeSpan.FromMinutes(3), path!.Quarantine);
    }
}
