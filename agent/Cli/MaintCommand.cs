using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using VastHostAgent.Hosting;
using VastHostAgent.Kernel;
using VastHostAgent.Maintenance;
using VastHostAgent.Management;

namespace VastHostAgent.Cli;

/// <summary>
/// <c>maint schedule | list | cancel</c>: ad hoc maintenance windows. The commands only edit the book in the
/// state directory (under its lock); the running daemon takes changes up at its next reconcile and carries
/// them out (clamp, dnotify, maintenance, restore, cancel_maint). Nothing here calls the Vast API.
/// </summary>
internal static partial class MaintCommand
{
    private static readonly string[] Categories = ["power", "internet", "disk", "gpu", "software", "other"];
    private static readonly string[] ListHeader = ["ID", "STATE", "START (UTC)", "END (UTC)", "CATEGORY", "SOURCE", "ON VAST", "WHY"];

    private static readonly string[] FleetListHeader = ["MACHINE", "HOST", "ID", "STATE", "START (UTC)", "END (UTC)", "CATEGORY", "ON VAST", "WHY"];

    public static async Task<int> ScheduleAsync(string? configPath, string at, string duration, string category, string? id, TextWriter output, string? machine = null)
    {
        var (services, problem) = await OpenAsync(configPath, machine: machine).ConfigureAwait(false);
        if (services is null)
        {
            return problem;
        }

        await using var _ = services;
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        if (!DateTimeOffset.TryParse(at, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var start))
        {
            return await Fail($"--at: '{at}' is not a date and time (ISO 8601, e.g. 2026-12-01T02:00:00Z; without an offset it is UTC)").ConfigureAwait(false);
        }

        if (ParseDuration(duration) is not { } length || length < TimeSpan.FromMinutes(5) || length > TimeSpan.FromDays(14))
        {
            return await Fail($"--duration: '{duration}' must be between 5m and 14d (e.g. 90m, 2h, 1d, 02:30:00)").ConfigureAwait(false);
        }

        if (!Categories.Contains(category, StringComparer.Ordinal))
        {
            return await Fail($"--category: '{category}' must be one of {string.Join(", ", Categories)}").ConfigureAwait(false);
        }

        if (start + length <= now)
        {
            return await Fail($"--at: the window {start:yyyy-MM-dd HH:mm}Z + {Human(length)} is already over").ConfigureAwait(false);
        }

        id ??= string.Create(CultureInfo.InvariantCulture, $"cli-{start:yyyyMMddTHHmm}Z");
        if (!WindowId().IsMatch(id))
        {
            return await Fail($"--id: '{id}' must be 1-40 letters, digits, '_', '.', '-'").ConfigureAwait(false);
        }

        var o = services.GetRequiredService<IOptions<MaintenanceOptions>>().Value;
        var store = Store(services);
        string? clash = null;
        try
        {
            store.Update(book =>
            {
                var synced = WindowBook.Sync(book, now, o);
                if (synced.Windows.FirstOrDefault(w => w.Id == id) is { } existing)
                {
                    clash = $"--id: a window '{id}' already exists ({existing.State}); pick another id";
                    return book;
                }

                var window = new MaintenanceWindow { Id = id, Source = WindowSource.Cli, Start = start, Duration = length, Category = category }
                    .To(WindowState.Planned, now, "scheduled from the command line");
                return book with { Windows = [.. book.Windows, window] };
            });
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return await CannotWrite(services, ex).ConfigureAwait(false);
        }

        if (clash is not null)
        {
            return await Fail(clash).ConfigureAwait(false);
        }

        var notice = start - o.NoticePeriod;
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"""
            Window {id}: {start:yyyy-MM-dd HH:mm}Z to {start + length:yyyy-MM-dd HH:mm}Z ({Human(length)}, {category}) added.
            The running agent takes it up at its next reconcile: offers are clamped to end by {start:yyyy-MM-dd HH:mm}Z now,
            renters are notified on Vast (dnotify) from {(notice > now ? notice : now):yyyy-MM-dd HH:mm}Z (maintenance.noticePeriod {Human(o.NoticePeriod)}),
            conflicting contracts: {(o.ConflictPolicy == ConflictPolicy.Defer ? "the window is deferred until they end" : "the window proceeds and renters are notified")}.
            Follow it with `vast-host-agent maint list`; cancel with `vast-host-agent maint cancel {id}`.
            """)).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    public static async Task<int> CancelAsync(string? configPath, string id, TextWriter output, string? machine = null)
    {
        var (services, problem) = await OpenAsync(configPath, machine: machine).ConfigureAwait(false);
        if (services is null)
        {
            return problem;
        }

        await using var _ = services;
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        var o = services.GetRequiredService<IOptions<MaintenanceOptions>>().Value;
        MaintenanceWindow? found = null;
        try
        {
            Store(services).Update(book =>
            {
                var synced = WindowBook.Sync(book, now, o);
                found = synced.Windows.FirstOrDefault(w => w.Id == id);
                return found is { } w && w.State.IsOpen && !w.CancelRequested
                    ? synced with { Windows = [.. synced.Windows.Select(x => x.Id == id ? x with { CancelRequested = true } : x)] }
                    : book;
            });
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return await CannotWrite(services, ex).ConfigureAwait(false);
        }

        switch (found)
        {
            case null:
                return await Fail($"no window '{id}' (see `vast-host-agent maint list`)").ConfigureAwait(false);
            case { State.IsOpen: false }:
                return await Fail($"window '{id}' is already {found.State}").ConfigureAwait(false);
        }

        var what = found.ScheduledOnVast ? "cancels it on Vast (cancel_maint) and restores the listing" : "restores the listing";
        await output.WriteLineAsync($"Cancel requested for window {id} ({found.State}): the running agent {what} at its next reconcile.").ConfigureAwait(false);
        if (found.Source == WindowSource.Config)
        {
            await output.WriteLineAsync("It comes from the configuration: remove it there as well, or it stays cancelled only until its entry is changed.").ConfigureAwait(false);
        }

        return ExitCodes.Ok;
    }

    public static async Task<int> ListAsync(string? configPath, bool json, TextWriter output, string? machine = null)
    {
        var (services, problem) = await OpenAsync(configPath, requireManagement: false, machine: machine).ConfigureAwait(false);
        if (services is null)
        {
            return problem;
        }

        await using var _ = services;
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        var agent = services.GetRequiredService<IOptions<AgentOptions>>().Value;
        if (machine is null && agent.Role == AgentRole.Controller)
        {
            return await ListFleetAsync(services, agent, json, now, output).ConfigureAwait(false);
        }

        MaintenanceStatus status;
        try
        {
            status = MaintenanceStatus.Read(services, now);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return await CannotWrite(services, ex).ConfigureAwait(false);
        }

        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(status, MaintenanceStatusJsonContext.Default.MaintenanceStatus)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        var o = services.GetRequiredService<IOptions<MaintenanceOptions>>().Value;
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.Append(inv, $"Maintenance windows (notice {Human(o.NoticePeriod)}, conflicts: {o.ConflictPolicy.ConfigName()}, unlist during: {(o.UnlistDuring ? "yes" : "no")}){(status.ManagementEnabled ? "" : " - management.enabled is false: nothing acts on them")}\n");
        var rows = new List<string[]> { ListHeader };
        rows.AddRange(status.Windows.Select(w => WindowCells(w, withSource: true)));
        if (rows.Count == 1)
        {
            sb.Append("  (none; add one with `vast-host-agent maint schedule` or maintenance.windows in the configuration)\n");
        }
        else
        {
            Table(sb, rows);
        }

        foreach (var w in status.Windows.Where(w => w.History.Count > 0))
        {
            sb.Append(inv, $"\n{w.Id}:\n");
            foreach (var t in w.History)
            {
                sb.Append(inv, $"  {t.At:yyyy-MM-dd HH:mm:ss}Z  {(t.From == t.To ? t.To : $"{t.From} -> {t.To}"),-22}  {t.Why}\n");
            }
        }

        sb.Append('\n').Append(GuardLine(status.Guard, now)).Append('\n');
        foreach (var stateProblem in status.StateProblems)
        {
            sb.Append("STATE: ").Append(stateProblem).Append('\n');
        }

        await output.WriteAsync(sb.ToString()).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    /// <summary>
    /// A controller without --machine: one table of every machine's windows (open ones, and those closed in the last
    /// 7 days) and one line per machine whose guard has tripped or whose state is being re-established.
    /// </summary>
    private static async Task<int> ListFleetAsync(IServiceProvider services, AgentOptions agent, bool json, DateTimeOffset now, TextWriter output)
    {
        var o = services.GetRequiredService<IOptions<MaintenanceOptions>>().Value;
        var guard = services.GetRequiredService<IOptions<FaultGuardOptions>>().Value;
        var enabled = services.GetRequiredService<IOptions<ManagementOptions>>().Value.Enabled;
        List<MachineMaintenanceStatus> machines;
        try
        {
            machines = [.. Fleet.FleetMachines.OnDisk(agent.StateDirectory).Select(m => new MachineMaintenanceStatus(m.Id, m.Hostname, MaintenanceStatus.Read(m.Directory, o, guard, enabled, now)))];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return await CannotWrite(services, ex).ConfigureAwait(false);
        }

        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(machines, MaintenanceStatusJsonContext.Default.ListMachineMaintenanceStatus)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }

        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"Maintenance windows of {machines.Count} machine(s) (notice {Human(o.NoticePeriod)}, conflicts: {o.ConflictPolicy.ConfigName()}; per machine: maint list --machine ID|HOSTNAME)\n");
        var rows = new List<string[]> { FleetListHeader };
        foreach (var m in machines)
        {
            rows.AddRange(m.Status.Windows.Select(w => (string[])[m.MachineId.ToString(inv), m.Hostname ?? "-", .. WindowCells(w, withSource: false)]));
        }

        if (rows.Count == 1)
        {
            sb.Append(machines.Count == 0
                ? "  (no machine yet: the controller keeps state for each machine it has reconciled)\n"
                : "  (none; add one with `vast-host-agent maint schedule --machine ID|HOSTNAME`)\n");
        }
        else
        {
            Table(sb, rows);
        }

        var tripped = machines.Where(m => m.Status.Guard.Tripped).ToList();
        sb.Append(inv, $"\nFault guard: {(guard.Enabled ? $"{tripped.Count} of {machines.Count} machine(s) tripped" : "off (faultGuard.enabled)")}\n");
        foreach (var m in tripped)
        {
            sb.Append(inv, $"  {m.MachineId} ({m.Hostname ?? "-"}): {GuardLine(m.Status.Guard, now)}\n");
        }

        foreach (var m in machines)
        {
            foreach (var stateProblem in m.Status.StateProblems)
            {
                sb.Append(inv, $"STATE {m.MachineId} ({m.Hostname ?? "-"}): {stateProblem}\n");
            }
        }

        await output.WriteAsync(sb.ToString()).ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    /// <summary>One window's cells in <c>maint list</c> (ID, STATE, START, END, CATEGORY, [SOURCE,] ON VAST, WHY).</summary>
    private static string[] WindowCells(WindowStatus w, bool withSource)
    {
        var inv = CultureInfo.InvariantCulture;
        string[] head =
        [
            w.Id,
            w.CancelRequested && w.State.IsOpen ? w.State + " (cancelling)" : w.State.ToString(),
            w.Start.ToString("yyyy-MM-dd HH:mm", inv),
            w.End.ToString("yyyy-MM-dd HH:mm", inv),
            w.Category,
        ];
        string[] tail =
        [
            w.ScheduledOnVast ? "yes" : "no",
            (w.Deferrals > 0 ? string.Create(inv, $"[deferred {w.Deferrals}x from {w.OriginalStart:yyyy-MM-dd HH:mm}Z] ") : "") + (w.Why ?? ""),
        ];
        return withSource ? [.. head, w.Source.ToString(), .. tail] : [.. head, .. tail];
    }

    /// <summary>Two lines for <c>status</c>: the next window and the guard.</summary>
    internal static string Summary(MaintenanceStatus status, DateTimeOffset now)
    {
        var inv = CultureInfo.InvariantCulture;
        var next = status.Windows.Where(w => w.State.IsOpen).OrderBy(w => w.Start).FirstOrDefault();
        var window = next is null
            ? "Maintenance: no window planned"
            : string.Create(inv, $"Maintenance: {next.Id} {next.State}{(next.CancelRequested ? " (cancelling)" : "")}, {next.Start:yyyy-MM-dd HH:mm}Z to {next.End:yyyy-MM-dd HH:mm}Z ({next.Category}){(next.Why is { } why ? ": " + why : "")}");
        var more = status.Windows.Count(w => w.State.IsOpen) - (next is null ? 0 : 1);
        return window + (more > 0 ? string.Create(inv, $" (+{more} more: maint list)") : "") + "\n" + GuardLine(status.Guard, now) + "\n"
            + string.Concat(status.StateProblems.Select(p => "STATE: " + p + "\n"));
    }

    private static string GuardLine(GuardStatus guard, DateTimeOffset now)
    {
        var inv = CultureInfo.InvariantCulture;
        if (!guard.Enabled)
        {
            return "Fault guard: off (faultGuard.enabled)";
        }

        if (guard.Tripped)
        {
            return string.Create(inv, $"Fault guard: TRIPPED since {guard.TrippedAt:yyyy-MM-dd HH:mm}Z (policy {guard.Policy}): {guard.Reason}{(guard.ClearSince is { } c ? $"; clear since {c:HH:mm}Z" : "")}");
        }

        return guard.Conditions.Count == 0
            ? "Fault guard: ok (watching)"
            : "Fault guard: ok, watching " + string.Join(", ", guard.Conditions.Select(c => string.Create(inv, $"{c.Key} for {Human(now - c.Value)}")));
    }

    internal static TimeSpan? ParseDuration(string text)
    {
        var m = DurationPattern().Match(text.Trim());
        if (m.Success)
        {
            var value = double.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture);
            return m.Groups["u"].Value switch
            {
                "m" => TimeSpan.FromMinutes(value),
                "h" => TimeSpan.FromHours(value),
                _ => TimeSpan.FromDays(value),
            };
        }

        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var span) ? span : null;
    }

    private static string Human(TimeSpan span) =>
        span.TotalDays >= 1 && span.TotalHours % 24 == 0 ? $"{span.TotalDays:0}d"
        : span.TotalHours >= 1 ? span.TotalMinutes % 60 == 0 ? $"{span.TotalHours:0}h" : $"{(int)span.TotalHours}h{span.Minutes:D2}m"
        : $"{Math.Max(0, span.TotalMinutes):0}m";

    private static MaintenanceStore Store(IServiceProvider services) =>
        new(services.GetRequiredService<IOptions<AgentOptions>>().Value.StateDirectory);

    private static async Task<(ServiceProvider? Services, int Problem)> OpenAsync(string? configPath, bool requireManagement = true, string? machine = null)
    {
        var (configuration, _) = AgentCommandLine.LoadConfiguration(configPath);
        if (configuration is null)
        {
            return (null, ExitCodes.InvalidConfiguration);
        }

        if (machine is not null)
        {
            // A controller keeps each managed machine's windows in its own state directory: point this command there.
            var agent = configuration.GetSection(AgentOptions.SectionName).Get<AgentOptions>() ?? new AgentOptions();
            if (agent.Role != AgentRole.Controller)
            {
                return (null, await Fail("--machine: a standalone agent keeps only its own machine's windows; --machine is for agent.role controller").ConfigureAwait(false));
            }

            if (Fleet.FleetMachines.Resolve(agent.StateDirectory, machine) is not { } machineId)
            {
                return (null, await Fail($"--machine: '{machine}' is not a machine id, nor the host name of a machine the controller manages (it learns host names as it reconciles)").ConfigureAwait(false));
            }

            configuration[$"{AgentOptions.SectionName}:stateDirectory"] = Fleet.FleetMachines.DirectoryFor(agent.StateDirectory, machineId);
        }

        var services = AgentRuntime.BuildOneShot(configuration);
        if (requireManagement && !services.GetRequiredService<IOptions<ManagementOptions>>().Value.Enabled)
        {
            await services.DisposeAsync().ConfigureAwait(false);
            await Console.Error.WriteLineAsync("error: management.enabled is false: maintenance windows are carried out by the listing reconcile (set management.enabled and vast.enabled to true)").ConfigureAwait(false);
            return (null, ExitCodes.InvalidConfiguration);
        }

        return (services, ExitCodes.Ok);
    }

    private static async Task<int> Fail(string message)
    {
        await Console.Error.WriteLineAsync("error: " + message).ConfigureAwait(false);
        return ExitCodes.InvalidConfiguration;
    }

    private static async Task<int> CannotWrite(IServiceProvider services, Exception ex)
    {
        var dir = services.GetRequiredService<IOptions<AgentOptions>>().Value.StateDirectory;
        await Console.Error.WriteLineAsync($"error: cannot use the state directory {dir}: {ex.Message} (run with sudo, or as the agent's service user)").ConfigureAwait(false);
        return ExitCodes.Failure;
    }

    private static void Table(StringBuilder sb, List<string[]> rows)
    {
        var widths = Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
        foreach (var row in rows)
        {
            sb.Append(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd()).Append('\n');
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,40}$")]
    private static partial Regex WindowId();

    [GeneratedRegex("^(?<n>[0-9]+(\\.[0-9]+)?)(?<u>[mhd])$")]
    private static partial Regex DurationPattern();
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[System.Text.Json.Serialization.JsonSerializable(typeof(MaintenanceStatus))]
[System.Text.Json.Serialization.JsonSerializable(typeof(List<MachineMaintenanceStatus>))]
internal sealed partial class MaintenanceStatusJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
