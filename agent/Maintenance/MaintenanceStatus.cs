using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;
using VastHostAgent.Management;

namespace VastHostAgent.Maintenance;

/// <summary>One window as <c>status</c> and <c>maint list</c> show it.</summary>
public sealed record WindowStatus(
    string Id,
    WindowSource Source,
    WindowState State,
    DateTimeOffset Start,
    DateTimeOffset End,
    string Category,
    DateTimeOffset? OriginalStart,
    int Deferrals,
    bool ScheduledOnVast,
    bool CancelRequested,
    string? Why,
    IReadOnlyList<WindowTransition> History);

/// <summary>The fault guard as <c>status</c> shows it.</summary>
public sealed record GuardStatus(bool Enabled, string Policy, bool Tripped, DateTimeOffset? TrippedAt, string? Reason, IReadOnlyDictionary<string, DateTimeOffset> Conditions, DateTimeOffset? ClearSince);

/// <summary>Maintenance windows and the fault guard, read from the state directory.</summary>
/// <param name="ManagementEnabled">Whether the listing reconcile (which carries windows out) runs.</param>
/// <param name="Windows">The windows.</param>
/// <param name="Guard">The fault guard.</param>
/// <param name="StateProblems">State files found unusable and set aside whose recovery from Vast is still pending, in words.</param>
public sealed record MaintenanceStatus(bool ManagementEnabled, IReadOnlyList<WindowStatus> Windows, GuardStatus Guard, IReadOnlyList<string> StateProblems)
{
    /// <summary>As <see cref="Read(IServiceProvider, DateTimeOffset, bool)"/>, or null when the state directory cannot be read.</summary>
    public static MaintenanceStatus? TryRead(IServiceProvider services, DateTimeOffset now)
    {
        try
        {
            return Read(services, now);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Reads the book and the guard's state (without changing them); configured windows the daemon has not taken up yet are shown as planned.</summary>
    public static MaintenanceStatus Read(IServiceProvider services, DateTimeOffset now, bool includeClosed = true) =>
        Read(services.GetRequiredService<IOptions<AgentOptions>>().Value.StateDirectory,
            services.GetRequiredService<IOptions<MaintenanceOptions>>().Value,
            services.GetRequiredService<IOptions<FaultGuardOptions>>().Value,
            services.GetRequiredService<IOptions<ManagementOptions>>().Value.Enabled,
            now,
            includeClosed);

    /// <summary>As <see cref="Read(IServiceProvider, DateTimeOffset, bool)"/>, for one state directory (a controller's machine).</summary>
    public static MaintenanceStatus Read(string stateDirectory, MaintenanceOptions o, FaultGuardOptions guard, bool managementEnabled, DateTimeOffset now, bool includeClosed = true)
    {
        var bookRead = new MaintenanceStore(stateDirectory).Read();
        var book = WindowBook.Sync(bookRead.Value, now, o);
        var windows = book.Windows
            .Where(w => includeClosed ? w.State.IsOpen || now - w.End < TimeSpan.FromDays(7) : w.State.IsOpen)
            .OrderBy(w => w.Start)
            .Select(w => new WindowStatus(w.Id, w.Source, w.State, w.Start, w.End, w.Category, w.OriginalStart, w.Deferrals, w.ScheduledOnVast, w.CancelRequested, w.Why, w.History))
            .ToList();
        var guardRead = new FaultGuardStore(stateDirectory).Read();
        var state = guardRead.Value;
        var problems = new List<string>();
        void Note(string file, StateFileRecovery? r)
        {
            if (r is not null)
            {
                problems.Add($"{file} was unusable ({r.Problem}) at {r.At:yyyy-MM-dd HH:mm}Z and set aside as {r.SetAsideAs ?? "-"}: "
                    + "the agent re-establishes it from Vast at its next reconcile and changes nothing on Vast until then");
            }
        }

        Note(MaintenanceStore.FileName, bookRead.Recovery);
        Note(FaultGuardStore.FileName, guardRead.Recovery);
        Note(ManagementStateStore.FileName, new ManagementStateStore(stateDirectory).Read().Recovery);
        return new MaintenanceStatus(managementEnabled, windows,
            new GuardStatus(guard.Enabled, guard.Policy.ConfigName(), state.Tripped, state.TrippedAt, state.Reason, state.Since, state.ClearSince), problems);
    }
}

/// <summary>One machine of a controller, as <c>maint list</c> shows it for the whole fleet.</summary>
public sealed record MachineMaintenanceStatus(long MachineId, string? Hostname, MaintenanceStatus Status);
