namespace VastHostAgent.Management;

/// <summary>
/// One machine the reconcile manages, with everything that is its own: the policy (options, possibly a fleet
/// profile's), its state file, its mutation path (write-ahead note, quarantine, hourly budget) and its maintenance
/// windows and fault guard. Standalone has one (this rig); a controller has one per managed machine.
/// </summary>
/// <param name="Id">The Vast machine id.</param>
/// <param name="Hostname">The host name Vast reports (null when unknown).</param>
/// <param name="Profile">The policy profile's name (empty: the top-level sections).</param>
/// <param name="Options">The management policy.</param>
/// <param name="State">Its management state file.</param>
/// <param name="Mutations">Its one mutation path.</param>
/// <param name="Constraints">Its maintenance windows and fault guard (null when not registered).</param>
public sealed record ManagedMachine(
    long Id,
    string? Hostname,
    string Profile,
    ManagementOptions Options,
    ManagementStateStore State,
    MutationPath Mutations,
    IListingConstraintSource? Constraints);

/// <summary>Runs reconciles: one machine (standalone) or every managed machine of the account (controller).</summary>
public interface IReconcileDriver
{
    /// <summary>
    /// Runs one reconcile cycle. With <paramref name="apply"/> false (plan) nothing is changed and nothing is journaled.
    /// Returns one report per machine decided (a problem report without a machine when nothing could be read).
    /// </summary>
    Task<IReadOnlyList<ReconcileReport>> RunCycleAsync(bool apply, bool dryRun, CancellationToken cancellationToken);
}
