using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using VastHostAgent.Hosting;
using VastHostAgent.Vast;

namespace VastHostAgent.Cli;

/// <summary><c>vast-host-agent machine</c>: this machine as Vast sees it (one read of the API).</summary>
internal static class MachineCommand
{
    public static async Task<int> RunAsync(string? configPath, bool json, TextWriter output, CancellationToken cancellationToken)
    {
        await using var services = await AgentCommandLine.VastServicesAsync(configPath).ConfigureAwait(false);
        if (services is null)
        {
            return ExitCodes.InvalidConfiguration;
        }

        try
        {
            var identity = await services.GetRequiredService<VastMachineLocator>().IdentifyAsync(cancellationToken).ConfigureAwait(false);
            if (!identity.Identified)
            {
                await Console.Error.WriteLineAsync($"error: {identity.Problem}").ConfigureAwait(false);
                return ExitCodes.Failure;
            }

            var machine = await services.GetRequiredService<IVastClient>().GetMachineAsync(identity.MachineId!.Value, cancellationToken).ConfigureAwait(false);
            await output.WriteAsync(json ? JsonSerializer.Serialize(machine, VastJsonContext.Default.VastMachine) + "\n" : Render(machine, DateTimeOffset.UtcNow)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        catch (VastApiException ex)
        {
            await Console.Error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }
    }

    internal static string Render(VastMachine m, DateTimeOffset now)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        var online = m.Online ? "online" : string.Create(inv, $"OFFLINE (no contact for {m.Timeout:0} s)");
        sb.Append(inv, $"Machine {m.EffectiveId} \"{m.Hostname}\" ({m.GpuName} x{m.NumGpus}), {m.Verification ?? "unknown verification"}, {online}, reliability {m.Reliability2:0.000}\n");
        if (m.ErrorDescription is { Length: > 0 } error)
        {
            sb.Append(inv, $"Error shown on Vast: {error}\n");
        }

        sb.Append(inv, $"Listed: {(m.Listed == true ? "yes" : "no")}{(m.EndDate is { } end ? ", offers until " + Date(end) : "")}\n");
        sb.Append(inv, $"  GPU price        {Money(m.ListedGpuCost, "/GPU-h")}    min bid   {Money(m.MinBidPrice, "/GPU-h")}\n");
        sb.Append(inv, $"  storage          {Money(m.ListedStorageCost, "/GB-month")}    min chunk {m.ListedMinGpuCount?.ToString(inv) ?? "-"}\n");
        sb.Append(inv, $"  upload/download  {Money(m.ListedInetUpCost, "/GB")} / {Money(m.ListedInetDownCost, "/GB")}    discount max {(m.CreditDiscountMax is { } d ? d.ToString("P0", inv) : "-")}\n");
        if (m.VolumeTotalSize is > 0)
        {
            sb.Append(inv, $"  volume           {m.VolumeTotalSize:0} GB at {Money(m.ListedVolumeCost, "/GB-month")}\n");
        }

        var occupancy = m.OccupancyCounts();
        sb.Append(inv, $"GPUs: {occupancy["on_demand"]} on-demand, {occupancy["interruptible"]} interruptible, {occupancy["reserved"]} reserved, {occupancy["free"]} free ({m.GpuOccupancy?.Trim()})\n");
        sb.Append(inv, $"Rentals: {m.CurrentRentalsRunning ?? 0} running ({m.CurrentRentalsRunningOnDemand ?? 0} on-demand), {m.CurrentRentalsResident ?? 0} resident");
        sb.Append(m.ClientEndDate is { } clientEnd && clientEnd > now.ToUnixTimeSeconds() ? $"; clients until {Date(clientEnd)}\n" : "\n");
        sb.Append(string.IsNullOrEmpty(m.BidImage)
            ? "Default job: none\n"
            : string.Create(inv, $"Default job: {m.BidImage} {string.Join(' ', m.DefaultJobArgs())} at {Money(m.BidGpuCost, "/GPU-h")}\n"));
        var windows = m.MachineMaintenance ?? [];
        sb.Append(windows.Count == 0
            ? "Maintenance: none scheduled\n"
            : "Maintenance: " + string.Join("; ", windows.Select(w => string.Create(inv, $"{(w.StartTime is { } s ? Date(s) : "?")} for {w.DurationHours:0.#} h ({w.MaintenanceCategory})"))) + "\n");
        sb.Append(inv, $"Reports: {m.NumReports ?? 0}    Earnings (24 h): {Money(m.EarnDay, "")}\n");
        return sb.ToString();
    }

    private static string Money(double? value, string unit) =>
        value is { } v ? "$" + v.ToString("0.000", CultureInfo.InvariantCulture) + unit : "-";

    private static string Date(double epochSeconds) =>
        DateTimeOffset.FromUnixTimeMilliseconds((long)(epochSeconds * 1000)).ToString("yyyy-MM-dd HH:mm'Z'", CultureInfo.InvariantCulture);
}
