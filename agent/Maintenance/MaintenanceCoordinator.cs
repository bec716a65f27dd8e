using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;
using VastHostAgent.Management;
using VastHostAgent.Vast;

namespace VastHostAgent.Maintenance;

/// <summary>
/// Runs the maintenance windows' state machines and the fault guard inside each reconcile. Every step is
/// persisted before the next (maintenance.json, fault-guard.json). Calls to Vast (dnotify, cancel_maint,
/// cleanup) are reconciled with what the machine shows first: a window already on Vast is not scheduled
/// again, one already gone is not cancelled again, so a crash or a lost answer never repeats a call.
/// </summary>
public sealed class MaintenanceCoordinator(
    MutationPath mutations,
    MaintenanceHookRunner hooks,
    MaintenanceStore windows,
    FaultGuardStore guardStore,
    ManagementStateStore managementState,
    DecisionJournal journal,
    MaintenanceMetrics metrics,
    SnapshotStore snapshots,
    IOptions<MaintenanceOptions> maintenanceOptions,
    IOptions<FaultGuardOptions> guardOptions,
    IOptions<ManagementOptions> managementOptions,
    TimeProvider time,
    ILogger<MaintenanceCoordinator> logger) : IListingConstraintSource
{
    private static readonly TimeSpan StartTolerance = TimeSpan.FromMinutes(2);
    private string? _healthUnknown;

    /// <summary>Why the fault guard held at the last step for lack of rig health (null when health was known).</summary>
    public string? HealthUnknown => _healthUnknown;

    /// <summary>The guard's state as persisted (for status and doctor).</summary>
    public FaultGuardState GuardState() => guardStore.Load();

    /// <inheritdoc />
    public IReadOnlyList<string> Recover(VastMachine machine, ManagementState management, bool apply)
    {
        var now = time.GetUtcNow();
        var recovered = new List<string>();
        var book = windows.Read();
        if (book.Recovery is { } lostBook)
        {
            var adopted = WindowBook.AdoptFromVast(machine, management, now, maintenanceOptions.Value);
            recovered.Add($"{MaintenanceStore.FileName} ({lostBook.Problem}; set aside as {lostBook.SetAsideAs ?? "-"}): "
                + $"{adopted.Count} window(s) taken back from Vast ({(adopted.Count == 0 ? "none scheduled there" : string.Join(", ", adopted.Select(w => $"{w.Id} {w.State}")))}); "
                + "configured windows come back from the configuration; windows scheduled with `maint schedule` that were not yet on Vast are lost: schedule them again");
            if (apply)
            {
                windows.Resolve(b => b with { Windows = [.. b.Windows.Where(w => !adopted.Any(a => a.Id == w.Id)), .. adopted] });
            }
        }

        var guard = guardStore.Read();
        if (guard.Recovery is { } lostGuard)
        {
            var g = guardOptions.Value;
            var defaultJob = managementOptions.Value.DefaultJob;
            // A lost trip errs towards keeping the machine off the market: held as tripped while the agent holds
            // it unlisted (policy unlist) or its configured default job is missing (policy defaultJob).
            var holds = g.Enabled && (g.Policy == FaultGuardPolicy.Unlist
                ? machine.Listed != true && management.UnlistedByAgentReason is not null
                : string.IsNullOrEmpty(machine.BidImage) && defaultJob.Mode == DefaultJobMode.Present);
            var reason = $"{FaultGuardStore.FileName} was unusable ({lostGuard.Problem}): held as tripped until every condition has stayed clear for faultGuard.clearFor";
            var state = holds ? new FaultGuardState { Tripped = true, TrippedAt = now, Reason = reason, Trips = [now] } : new FaultGuardState();
            recovered.Add($"{FaultGuardStore.FileName} ({lostGuard.Problem}; set aside as {lostGuard.SetAsideAs ?? "-"}): "
                + (holds ? "the machine is held as if the guard had tripped" : g.Enabled ? "not holding the machine: conditions must hold again for faultGuard.holdFor" : "the guard is off"));
            if (apply)
            {
                guardStore.Resolve(_ => state);
            }
        }

        return recovered;
    }

    /// <summary>Advances windows and the guard (persisting when <paramref name="apply"/>; Vast calls go through the cycle's mutation path) and returns the listing constraints.</summary>
    public async Task<ListingConstraints> StepAsync(VastMachine machine, RigObservation? health, MutationCycle cycle, bool apply, CancellationToken cancellationToken)
    {
        var rig = health ?? RigObservations.FromSnapshot(snapshots.Current);
        var now = time.GetUtcNow();
        var o = maintenanceOptions.Value;
        var dryRun = cycle.DryRun;
        var live = apply && !dryRun;
        var book = apply ? windows.Update(b => WindowBook.Sync(b, now, o)) : WindowBook.Sync(windows.Load(), now, o);

        if (live)
        {
            var cancelledOnVast = false;
            foreach (var window in book.Windows.Where(w => w.State.IsOpen).OrderBy(w => w.Start).ToList())
            {
                var step = await AdvanceAsync(window, machine, now, o, live, cycle, cancellationToken).ConfigureAwait(false);
                cancelledOnVast |= step.CancelledOnVast;
                if (!step.Next.Equals(window))
                {
                    // Persist before anything else happens (a CLI cancel that arrived meanwhile is kept).
                    book = windows.Update(b => b with { Windows = [.. b.Windows.Select(w => w.Id == window.Id ? step.Next with { CancelRequested = w.CancelRequested || step.Next.CancelRequested } : w)] });
                }

                if (step.Next.State == WindowState.Active && window.State != WindowState.Active && window.ListedBefore)
                {
                    // The agent now holds the listing: it relists after the window even if Vast ended the offer at the window's start.
                    managementState.Update(s => s with { UnlistedByAgentReason = s.UnlistedByAgentReason ?? $"maintenance {window.Id}" });
                }

                if (step.Hook is { } hook)
                {
                    await hooks.RunAsync(hook.Command, step.Next, hook.When, o.HookTimeout, now, cancellationToken).ConfigureAwait(false);
                }
            }

            if (cancelledOnVast)
            {
                // cancel_maint removes every window of the machine on Vast: the others are scheduled again.
                book = windows.Update(b => b with
                {
                    Windows = [.. b.Windows.Select(w => w.State == WindowState.Scheduled && w is { ScheduledOnVast: true, CancelRequested: false } && w.Start > now
                        ? Transition(w with { ScheduledOnVast = false }, WindowState.Planned, now, "cancel_maint removed every window on Vast: scheduling this one again", live)
                        : w)],
                });
            }
        }
        else if (apply)
        {
            // Dry-run: say once per cycle what the next step of each window would be; nothing moves.
            foreach (var window in book.Windows.Where(w => w.State.IsOpen).OrderBy(w => w.Start))
            {
                await AdvanceAsync(window, machine, now, o, live, cycle, cancellationToken).ConfigureAwait(false);
            }
        }

        var current = book.Current;
        var inWindow = current?.State == WindowState.Active;
        var vastWindowNow = machine.MachineMaintenance?.Any(m => m.StartTime is { } s && m.EffectiveEnd is { } e && s <= now.ToUnixTimeSeconds() && now.ToUnixTimeSeconds() < e) == true;
        var suspended = inWindow;
        var unlist = inWindow && o.UnlistDuring ? $"maintenance window {current!.Id}" : null;
        var removeDefaultJob = false;
        var guard = guardOptions.Value;
        var guardState = guardStore.Load();
        if (guard.Enabled)
        {
            var verdict = FaultGuard.Evaluate(guardState, rig, guard, now, inWindow || vastWindowNow);
            guardState = verdict.State;
            if (verdict.Unknown != _healthUnknown)
            {
                if (verdict.Unknown is { } why)
                {
                    MaintenanceLog.GuardHolding(logger, cycle.MachineId, why);
                }
                else
                {
                    MaintenanceLog.GuardHealthKnown(logger, cycle.MachineId);
                }

                _healthUnknown = verdict.Unknown;
            }

            if (verdict.RequestCleanup && apply)
            {
                await CleanupAsync(cycle, cancellationToken).ConfigureAwait(false);
            }

            if (verdict.Tripped is { } reason)
            {
                guardState = guardState with { SavedDefaultJob = Saved(machine) ?? guardState.SavedDefaultJob };
                if (apply)
                {
                    MaintenanceLog.GuardTripped(logger, reason, guard.Policy.ConfigName());
                    journal.Write([JournalEntries.Entry(now, "fault guard", "trip", guard.Policy == FaultGuardPolicy.Unlist ? "unlist" : "remove_default_job", dryRun, reason, machineId: cycle.MachineId)]);
                    metrics.GuardTrip();
                }
            }
            else if (verdict.Cleared && apply)
            {
                MaintenanceLog.GuardCleared(logger);
                journal.Write([JournalEntries.Entry(now, "fault guard", "clear", "conditions_cleared", dryRun, "every condition stayed clear for faultGuard.clearFor: restoring the listing", machineId: cycle.MachineId)]);
            }

            if (apply)
            {
                guardStore.Save(guardState);
            }

            metrics.Guard(guardState.Tripped, verdict.Active.Keys);
            if (guardState.Tripped)
            {
                if (guard.Policy == FaultGuardPolicy.Unlist)
                {
                    suspended = true;
                    unlist ??= "fault guard: " + guardState.Reason;
                }
                else
                {
                    removeDefaultJob = true;
                }
            }
        }

        // A default job taken off for a window or by the guard goes back once nothing holds the machine.
        SavedDefaultJob? restore = null;
        if (!suspended && !removeDefaultJob)
        {
            var saved = book.Windows.Where(w => !w.State.IsOpen).Select(w => w.SavedDefaultJob).Append(guardState.Tripped ? null : guardState.SavedDefaultJob).Where(j => j is not null).ToList();
            restore = saved.FirstOrDefault(j => j!.Image != machine.BidImage);
            if (live && saved.Any(j => j!.Image == machine.BidImage))
            {
                // Back on the machine (restored, or put back by hand): forget it.
                book = windows.Update(b => b with { Windows = [.. b.Windows.Select(w => !w.State.IsOpen && w.SavedDefaultJob?.Image == machine.BidImage ? w with { SavedDefaultJob = null } : w)] });
                if (guardState.SavedDefaultJob?.Image == machine.BidImage)
                {
                    guardStore.Save(guardState with { SavedDefaultJob = null });
                }
            }
        }

        if (live && !suspended && machine.Listed == true && managementState.Load().UnlistedByAgentReason is not null)
        {
            managementState.Update(s => s with { UnlistedByAgentReason = null }); // listed again: the agent no longer holds it
        }

        var cap = current is not null && current.State != WindowState.Active ? current.Start.ToUnixTimeSeconds() : (double?)null;
        metrics.Windows(book);
        return new ListingConstraints(cap, suspended, unlist, removeDefaultJob, restore);
    }

    private sealed record Step(MaintenanceWindow Next, (string Command, string When)? Hook = null, bool CancelledOnVast = false);

    private static SavedDefaultJob? Saved(VastMachine machine) =>
        string.IsNullOrEmpty(machine.BidImage) ? null : new SavedDefaultJob(machine.BidImage, machine.DefaultJobArgs(), machine.BidGpuCost);

    private async Task<Step> AdvanceAsync(MaintenanceWindow w, VastMachine machine, DateTimeOffset now, MaintenanceOptions o, bool live, MutationCycle cycle, CancellationToken cancellationToken)
    {
        var onVast = machine.MachineMaintenance?.Any(m => m.StartTime is { } s && Math.Abs(s - w.Start.ToUnixTimeSeconds()) <= StartTolerance.TotalSeconds) == true;
        if (w.CancelRequested)
        {
            var called = false;
            if (w.ScheduledOnVast && onVast)
            {
                if (!await CallAsync(cycle, new PlannedMutation(VastEndpoint.CancelMaintenance, $"cancel_maint for window {w.Id}"), cancellationToken).ConfigureAwait(false))
                {
                    return new(w);
                }

                called = true;
            }

            var why = called ? "cancelled: Vast maintenance cancelled (cancel_maint), listing restored" : "cancelled: listing restored";
            return new(Transition(w, WindowState.Cancelled, now, w.Why is { } reason && reason.StartsWith("removed from", StringComparison.Ordinal) ? $"{why} ({reason})" : why, live),
                w.State == WindowState.Active ? (o.EndHook, "end") : null, called);
        }

        if (w.State.IsBeforeScheduling)
        {
            if (now >= w.End)
            {
                return new(Transition(w, WindowState.Done, now, "the window passed before it could be scheduled (the agent was not running or in dry-run)", live));
            }

            w = w with { ListedBefore = machine.Listed == true };
            if (w.State == WindowState.Planned && (machine.Listed != true || (machine.EndDate is { } end && end <= w.Start.ToUnixTimeSeconds() + StartTolerance.TotalSeconds)))
            {
                w = Transition(w, WindowState.Clamped, now, machine.Listed == true ? "offer end date clamped to the window's start: no new contract can outlive it" : "not listed: no new contract can start", live);
            }

            if (now < w.Start - o.NoticePeriod && !onVast)
            {
                return new(w);
            }

            var conflict = machine.ClientEndDate is { } clientEnd && clientEnd > w.Start.ToUnixTimeSeconds() ? clientEnd : (double?)null;
            if (conflict is { } until && o.ConflictPolicy == ConflictPolicy.Defer && !onVast)
            {
                var newStart = DateTimeOffset.FromUnixTimeSeconds((long)Math.Ceiling(until / 3600.0) * 3600);
                var why = $"a client contract runs until {Stamp(until)}: deferred from {w.Start:yyyy-MM-dd HH:mm}Z to {newStart:yyyy-MM-dd HH:mm}Z (conflictPolicy defer)";
                if (!live)
                {
                    if (w.State != WindowState.Deferred || w.Start != newStart)
                    {
                        journal.Write([JournalEntries.Entry(now, "maintenance window", "skip", "dry_run", true, $"{w.Id}: would defer: {why}", machineId: cycle.MachineId)]);
                    }

                    return new(w);
                }

                metrics.Deferred();
                MaintenanceLog.WindowDeferred(logger, w.Id, why);
                return new(Transition(w with { Start = newStart, OriginalStart = w.OriginalStart ?? w.Start, Deferrals = w.Deferrals + 1 }, WindowState.Deferred, now, why, live));
            }

            if (onVast)
            {
                // Already on Vast (our earlier dnotify whose answer was lost, or a restart): never sent twice.
                return new(Transition(w with { ScheduledOnVast = true }, WindowState.Scheduled, now, "found scheduled on Vast (not sent again)", live));
            }

            if (!await CallAsync(cycle, new PlannedMutation(VastEndpoint.ScheduleMaintenance,
                    FormattableString.Invariant($"dnotify for window {w.Id} at {w.Start:yyyy-MM-dd HH:mm}Z for {w.Duration.TotalHours:0.##} h ({w.Category})"),
                    Window: new WindowRequest(w.Start, w.Duration, w.Category)), cancellationToken).ConfigureAwait(false))
            {
                return new(w);
            }

            return new(Transition(w with { ScheduledOnVast = true }, WindowState.Scheduled, now,
                conflict is { } c ? $"scheduled on Vast (dnotify); renters until {Stamp(c)} notified (conflictPolicy proceed)" : "scheduled on Vast (dnotify); renters notified", live));
        }

        if (w.State == WindowState.Scheduled)
        {
            if (now < w.Start)
            {
                if (!onVast && w.ScheduledOnVast)
                {
                    // Gone from Vast without the agent cancelling it: the host cancelled it in the console. Respect that.
                    return new(Transition(w, WindowState.Cancelled, now, "no longer scheduled on Vast (cancelled outside the agent): listing restored", live));
                }

                return new(w);
            }

            var started = Transition(w with { SavedDefaultJob = Saved(machine) }, WindowState.Active, now,
                o.UnlistDuring ? "window started: in maintenance, default job removed, machine unlisted" : "window started: in maintenance, default job removed", live);
            return new(started, (o.StartHook, "start"));
        }

        if (w.State == WindowState.Active && now >= w.End)
        {
            return new(Transition(w, WindowState.Done, now, "window over: listing, end date and default job restored", live), (o.EndHook, "end"));
        }

        return new(w);
    }

    private MaintenanceWindow Transition(MaintenanceWindow w, WindowState to, DateTimeOffset now, string why, bool live)
    {
        if (live)
        {
            MaintenanceLog.WindowTransitioned(logger, w.Id, w.State.ToString(), to.ToString(), why);
            journal.Write([JournalEntries.Entry(now, "maintenance window", to.ToString(), $"{w.State}_to_{to}", false, $"{w.Id}: {why}")]);
        }

        return w.To(to, now, why);
    }

    /// <summary>One call to Vast through the mutation path; true only when Vast answered that it was done.</summary>
    private async Task<bool> CallAsync(MutationCycle cycle, PlannedMutation mutation, CancellationToken cancellationToken) =>
        await mutations.ExecuteAsync(cycle, mutation, cancellationToken).ConfigureAwait(false) == MutationResult.Applied;

    private async Task CleanupAsync(MutationCycle cycle, CancellationToken cancellationToken)
    {
        if (await CallAsync(cycle, new PlannedMutation(VastEndpoint.Cleanup, "cleanup: delete expired storage contracts (Docker's disk is nearly full)"), cancellationToken).ConfigureAwait(false))
        {
            MaintenanceLog.DiskCleanupRequested(logger);
        }
    }

    private static string Stamp(double epoch) => DateTimeOffset.FromUnixTimeSeconds((long)epoch).ToString("yyyy-MM-dd HH:mm'Z'", CultureInfo.InvariantCulture);
}
