using System.Globalization;
using VastHostAgent.Management;
using VastHostAgent.Vast;

namespace VastHostAgent.Maintenance;

/// <summary>
/// The book of windows as the configuration and Vast describe it (pure: no I/O): which windows the configuration
/// adds or takes away, and which windows are taken back from Vast after the book was unusable.
/// </summary>
public static class WindowBook
{
    private static readonly TimeSpan StartTolerance = TimeSpan.FromMinutes(2);

    /// <summary>Adds windows from the configuration (one-off, and the next occurrence of each recurring one) and cancels configured ones that were removed before they started.</summary>
    public static MaintenanceBook Sync(MaintenanceBook book, DateTimeOffset now, MaintenanceOptions o)
    {
        var list = book.Windows.ToList();
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var w in o.Windows)
        {
            wanted.Add(w.Id);
            if (!list.Any(x => x.Id == w.Id) && w.Start + w.Duration > now)
            {
                list.Add(new MaintenanceWindow { Id = w.Id, Source = WindowSource.Config, Start = w.Start.ToUniversalTime(), Duration = w.Duration, Category = w.Category }
                    .To(WindowState.Planned, now, "from the configuration (maintenance.windows)"));
            }
        }

        foreach (var r in o.Recurring)
        {
            if (list.Any(x => x.Source == WindowSource.Recurring && x.Id.StartsWith(r.Id + "@", StringComparison.Ordinal) && x.State.IsOpen))
            {
                wanted.UnionWith(list.Where(x => x.Id.StartsWith(r.Id + "@", StringComparison.Ordinal)).Select(x => x.Id));
                continue;
            }

            if (Schedule.Next(r, now) is { } start)
            {
                var id = $"{r.Id}@{start:yyyyMMddTHHmm}Z";
                wanted.Add(id);
                if (!list.Any(x => x.Id == id))
                {
                    list.Add(new MaintenanceWindow { Id = id, Source = WindowSource.Recurring, Start = start, Duration = r.Duration, Category = r.Category }
                        .To(WindowState.Planned, now, $"next occurrence of '{r.Cron}' in {r.TimeZone} (maintenance.recurring)"));
                }
            }
        }

        for (var i = 0; i < list.Count; i++)
        {
            var w = list[i];
            if (!w.Source.IsOutsideConfiguration && !wanted.Contains(w.Id) && (w.State.IsBeforeScheduling || w.State == WindowState.Scheduled) && !w.CancelRequested)
            {
                list[i] = w with { CancelRequested = true, Why = "removed from the configuration" };
            }
        }

        // Keep the book small: closed windows older than 30 days go.
        list.RemoveAll(w => !w.State.IsOpen && now - w.End > TimeSpan.FromDays(30) && w.SavedDefaultJob is null);
        return book with { Windows = list };
    }

    /// <summary>
    /// Windows Vast shows for the machine (current or ahead), taken back after maintenance.json was unusable: a
    /// configured or recurring window keeps its id; others become <c>vast-&lt;start&gt;</c> windows. Each is scheduled
    /// on Vast, or active when it has started.
    /// </summary>
    public static List<MaintenanceWindow> AdoptFromVast(VastMachine machine, ManagementState managementNow, DateTimeOffset now, MaintenanceOptions o)
    {
        var adopted = new List<MaintenanceWindow>();
        foreach (var m in machine.MachineMaintenance ?? [])
        {
            if (m.StartTime is not { } s || m.EffectiveEnd is not { } e || e <= now.ToUnixTimeSeconds() || e <= s)
            {
                continue;
            }

            var start = DateTimeOffset.FromUnixTimeMilliseconds((long)(s * 1000));
            var duration = TimeSpan.FromSeconds(Math.Round(e - s));
            string id;
            WindowSource source;
            if (o.Windows.FirstOrDefault(w => (w.Start - start).Duration() <= StartTolerance) is { } configured)
            {
                (id, source) = (configured.Id, WindowSource.Config);
            }
            else if (o.Recurring.FirstOrDefault(r => Schedule.Next(r, start - StartTolerance) is { } next && (next - start).Duration() <= StartTolerance) is { } recurring)
            {
                (id, source) = ($"{recurring.Id}@{Schedule.Next(recurring, start - StartTolerance):yyyyMMddTHHmm}Z", WindowSource.Recurring);
            }
            else
            {
                (id, source) = (string.Create(CultureInfo.InvariantCulture, $"vast-{start:yyyyMMddTHHmm}Z"), WindowSource.Vast);
            }

            if (adopted.Any(w => w.Id == id))
            {
                continue;
            }

            var state = now >= start ? WindowState.Active : WindowState.Scheduled;
            adopted.Add(new MaintenanceWindow
            {
                Id = id,
                Source = source,
                Start = start,
                Duration = duration,
                Category = string.IsNullOrWhiteSpace(m.MaintenanceCategory) ? "other" : m.MaintenanceCategory,
                ScheduledOnVast = true,
                ListedBefore = machine.Listed == true || managementNow.UnlistedByAgentReason?.StartsWith("maintenance", StringComparison.Ordinal) == true,
            }.To(state, now, "taken back from Vast after maintenance.json was unusable"));
        }

        return adopted;
    }
}
