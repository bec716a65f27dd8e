using System.Globalization;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using VastHostAgent.Hosting;
using VastHostAgent.Kernel;
using VastHostAgent.Management;

namespace VastHostAgent.Cli;

/// <summary>
/// <c>plan</c>: one reconcile against the real API without changing anything, printed as a table of what
/// would change and why. <c>apply --once</c>: one reconcile that changes the listing (still dry-run when
/// management.dryRun is true, unless <c>--no-dry-run</c> is given).
/// </summary>
internal static class PlanCommand
{
    private static readonly string[] Header = ["FIELD", "CURRENT", "DESIRED", "ACTION", "WHY"];

    public static async Task<int> RunAsync(string? configPath, bool apply, bool noDryRun, TextWriter output, CancellationToken cancellationToken, string? machine = null)
    {
        await using var services = await AgentCommandLine.VastServicesAsync(configPath).ConfigureAwait(false);
        if (services is null)
        {
            return ExitCodes.InvalidConfiguration;
        }

        var management = services.GetRequiredService<IOptions<ManagementOptions>>().Value;
        var dryRun = !apply || (management.DryRun && !noDryRun);
        if (services.GetRequiredService<IOptions<AgentOptions>>().Value.Role == AgentRole.Controller)
        {
            // The controller: one table per managed machine (or the one --machine names), from one read of the account.
            var reports = await services.GetRequiredService<Fleet.FleetReconciler>().RunAsync(apply, dryRun, machine, cancellationToken).ConfigureAwait(false);
            if (reports.Count == 0)
            {
                await output.WriteLineAsync(machine is null
                    ? "No machine of the account is managed: add fleet.machines entries (machines no entry selects are read-only)."
                    : $"No managed machine is {machine} (by id or host name).").ConfigureAwait(false);
                return machine is null ? ExitCodes.Ok : ExitCodes.Failure;
            }

            var journal = services.GetRequiredService<DecisionJournal>().Path;
            foreach (var one in reports)
            {
                await output.WriteAsync(Render(one, apply, management, journal) + "\n").ConfigureAwait(false);
            }

            return reports.Any(r => r.Problem is not null || r.Results.Any(x => x.Result is not (MutationResult.Applied or MutationResult.DryRun))) ? ExitCodes.Failure : ExitCodes.Ok;
        }

        if (machine is not null)
        {
            await Console.Error.WriteLineAsync("error: --machine: a standalone agent manages only its own machine; --machine is for agent.role controller").ConfigureAwait(false);
            return ExitCodes.InvalidConfiguration;
        }

        if (services.GetRequiredService<IOptions<Economics.EconomicsOptions>>().Value.Enabled)
        {
            // The powerCost min bid and the break-even guard need one GPU sample (no Vast call: only NVML and the economics).
            var sampling = services.GetRequiredService<SamplingService>();
            foreach (var source in services.GetServices<ISnapshotSource>().Where(s => s.Enabled && s.Name is "gpu" or "economics"))
            {
                await sampling.RunOnceAsync(source, cancellationToken).ConfigureAwait(false);
            }
        }

        var report = await services.GetRequiredService<Reconciler>().RunAsync(apply, dryRun, cancellationToken).ConfigureAwait(false);
        var text = Render(report, apply, management, services.GetRequiredService<DecisionJournal>().Path);
        if (report.Problem is null && Maintenance.MaintenanceStatus.TryRead(services, report.At) is { } maintenance)
        {
            var blank = text.IndexOf("\n\n", StringComparison.Ordinal);
            text = blank < 0 ? text + MaintCommand.Summary(maintenance, report.At) : text[..(blank + 1)] + MaintCommand.Summary(maintenance, report.At) + text[(blank + 1)..];
        }

        await output.WriteAsync(text).ConfigureAwait(false);
        if (report.Problem is not null)
        {
            return ExitCodes.Failure;
        }

        return report.Results.Any(r => r.Result is not (MutationResult.Applied or MutationResult.DryRun)) ? ExitCodes.Failure : ExitCodes.Ok;
    }

    internal static string Render(ReconcileReport report, bool apply, ManagementOptions o, string journalPath)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        if (report.Problem is { } problem)
        {
            sb.Append(inv, $"Cannot reconcile: {problem}\n");
            return sb.ToString();
        }

        var plan = report.Plan!;
        var m = plan.Machine;
        var mode = !apply ? "PLAN (nothing is changed)"
            : report.DryRun ? "APPLY, DRY RUN (management.dryRun=true: nothing is changed; --no-dry-run to apply once)"
            : "APPLY";
        sb.Append(inv, $"{mode}: machine {m.EffectiveId} \"{m.Hostname}\" ({m.GpuName} x{m.NumGpus}), {(m.Listed == true ? "listed" : "not listed")}, {report.At:yyyy-MM-dd HH:mm}Z\n");
        if (!report.DryRun && !apply)
        {
            sb.Append('\n');
        }

        sb.Append(inv, $"Pricing: {o.Pricing.Strategy.ConfigName()}, bounds [{o.Pricing.Floor:0.####}, {o.Pricing.Ceiling:0.####}] $/GPU-h, at most {o.Pricing.MaxChangePerStep:P0} per step, min change {o.Pricing.MinChange:P0}, cooldown {o.Pricing.Cooldown.TotalMinutes:0} min\n");
        if (plan.Power is { } power)
        {
            var guard = o.Pricing.AllowBelowBreakEven ? "pricing.allowBelowBreakEven: no price guard" : "no on-demand price below it";
            sb.Append(inv, $"Power: a GPU-hour under load costs {power.LoadCostPerGpuHour:0.####} $ ({power.Explanation}); {guard}\n");
        }
        else if (o.MinBid.Mode == MinBidMode.PowerCost)
        {
            sb.Append("Power: unknown (economics off, no GPU power reading, or no rig series in Prometheus): the powerCost min bid is kept as it is\n");
        }

        if (plan.Market is { } market)
        {
            var peers = market.PeerPrices;
            var spread = peers.Count > 0
                ? string.Create(inv, $"p10 {PricingEngine.Percentile(peers, 10):0.####}, median {PricingEngine.Percentile(peers, 50):0.####}, p90 {PricingEngine.Percentile(peers, 90):0.####}")
                : "no peers";
            sb.Append(inv, $"Market: {peers.Count} comparable offers ({market.Description}); {spread}; {market.OwnExcluded} of your own excluded, {market.Malformed} malformed; searched {market.FetchedAt:HH:mm}Z\n");
        }

        foreach (var recovered in report.Recovered)
        {
            sb.Append(inv, $"STATE RECOVERED (no change on Vast this cycle): {recovered}\n");
        }

        sb.Append('\n');
        var rows = new List<string[]> { Header };
        rows.AddRange(plan.Items.Select(i => new[] { i.Field, i.Current, i.Desired, i.Action, i.Explanation }));
        var widths = Enumerable.Range(0, 4).Select(c => rows.Max(r => r[c].Length)).ToArray();
        foreach (var row in rows)
        {
            sb.Append(string.Join("  ", row.Select((cell, c) => c < 4 ? cell.PadRight(widths[c]) : cell)).TrimEnd()).Append('\n');
        }

        sb.Append('\n');
        if (plan.Mutations.Count == 0)
        {
            sb.Append("In sync: no call to make.\n");
        }
        else if (report.Results.Count == 0)
        {
            sb.Append("Would call:\n");
            foreach (var mutation in plan.Mutations)
            {
                sb.Append(inv, $"  {mutation.Summary}\n");
            }
        }
        else
        {
            foreach (var record in report.Results)
            {
                sb.Append(inv, $"  {record.Result.Name(),-18} {record.Detail}\n");
            }
        }

        if (apply)
        {
            sb.Append(inv, $"Journal: {journalPath}\n");
        }

        return sb.ToString();
    }
}
