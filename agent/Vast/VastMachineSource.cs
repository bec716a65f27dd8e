using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;

namespace VastHostAgent.Vast;

/// <summary>
/// Polls the Vast API for this machine every <c>vast.pollInterval</c> (listing, prices, occupancy, rentals,
/// reliability, maintenance) and for earnings, reports and the account every <c>vast.accountPollInterval</c>.
/// A failed machine read makes the collector fail and removes the machine series; account figures keep
/// their last good value (they change slowly) until the next successful read.
/// </summary>
internal sealed class VastMachineSource(
    IVastClient client,
    VastMachineLocator locator,
    SnapshotStore snapshots,
    IOptions<VastOptions> options,
    IOptions<AgentOptions> agent,
    TimeProvider time,
    ILogger<VastMachineSource> logger) : ISnapshotSource
{
    private DateTimeOffset _nextAccountRead = DateTimeOffset.MinValue;
    private VastState _account = new();
    private string? _lastProblem;

    public string Name => "vast";

    public bool Enabled => options.Value.Enabled;

    public TimeSpan Interval => options.Value.PollInterval;

    public async ValueTask<SourceResult> CollectAsync(CancellationToken cancellationToken)
    {
        if (agent.Value.Role == AgentRole.Controller)
        {
            return await CollectAccountAsync(cancellationToken).ConfigureAwait(false);
        }

        MachineIdentity identity;
        try
        {
            identity = await locator.IdentifyAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (VastApiException ex)
        {
            return Failed(ex.Message, new VastState { Up = false, Problem = ex.Message });
        }

        if (!identity.Identified)
        {
            // The API answered; the machine is the problem. Account data still flows.
            var account = await ReadAccountAsync(null, cancellationToken).ConfigureAwait(false);
            return Failed(identity.Problem!, account with { Up = false, Problem = identity.Problem, IdentificationProblem = identity.ProblemKind });
        }

        var id = identity.MachineId!.Value;
        VastMachine machine;
        var readAt = time.GetUtcNow();
        var known = snapshots.Current.Vast;
        try
        {
            // Another reader (the listing reconcile) read this machine recently: use that instead of a new call.
            if (known is { Up: true, Machine: { } recent, MachineReadAt: { } at } && known.MachineId == id
                && readAt - at < options.Value.PollInterval - TimeSpan.FromSeconds(5))
            {
                machine = recent;
                readAt = at;
            }
            else
            {
                machine = await client.GetMachineAsync(id, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (VastApiException ex) when (ex.Failure is VastFailure.Rejected || (ex.Failure == VastFailure.Authentication && ex.StatusCode is 403 or 404))
        {
            locator.Reset();
            var problem = $"machine {id} is not a machine of this account ({ex.Message}); check vast.machineId";
            return Failed(problem, new VastState { Up = false, Problem = problem, MachineId = id, IdentificationProblem = "not_owned" });
        }
        catch (VastApiException ex)
        {
            return Failed(ex.Message, new VastState { Up = false, Problem = ex.Message, MachineId = id });
        }

        var state = await ReadAccountAsync(id, cancellationToken).ConfigureAwait(false);
        state = state with { Up = true, Problem = null, MachineId = id, Machine = machine, MachineReadAt = readAt };
        if (_lastProblem is not null)
        {
            VastLog.PollRecovered(logger);
            _lastProblem = null;
        }

        return SourceResult.Success(s => s.WithVast(state));
    }

    public HostSnapshot Clear(HostSnapshot snapshot) => snapshot.WithVast(null);

    /// <summary>
    /// The controller's poll: every machine of the account in one <c>GET /machines</c> (skipped when the fleet
    /// reconcile read them recently), and the account's earnings and user at account cadence. Reports are per
    /// machine and not read here (they would make reads grow with the machine count).
    /// </summary>
    private async Task<SourceResult> CollectAccountAsync(CancellationToken cancellationToken)
    {
        var readAt = time.GetUtcNow();
        var known = snapshots.Current.Vast;
        IReadOnlyList<VastMachine> machines;
        if (known is { Up: true, Machines: { } recent, MachinesReadAt: { } at } && readAt - at < options.Value.PollInterval - TimeSpan.FromSeconds(5))
        {
            machines = recent;
            readAt = at;
        }
        else
        {
            try
            {
                machines = await client.GetMachinesAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (VastApiException ex)
            {
                return Failed(ex.Message, (known ?? new VastState()) with { Up = false, Problem = ex.Message, Machines = null });
            }
        }

        var state = await ReadAccountAsync(null, cancellationToken).ConfigureAwait(false);
        state = state with { Up = true, Problem = null, Machines = machines, MachinesReadAt = readAt };
        if (_lastProblem is not null)
        {
            VastLog.PollRecovered(logger);
            _lastProblem = null;
        }

        return SourceResult.Success(s => s.WithVast(state));
    }

    private SourceResult Failed(string problem, VastState state)
    {
        if (problem != _lastProblem)
        {
            VastLog.PollFailed(logger, problem);
            _lastProblem = problem;
        }

        return SourceResult.Failure(problem, s => s.WithVast(state));
    }

    /// <summary>Earnings (last 7 days), reports and the account, when due; otherwise the last values.</summary>
    private async Task<VastState> ReadAccountAsync(long? machineId, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (now < _nextAccountRead)
        {
            return _account;
        }

        var account = _account;
        var complete = true;
        try
        {
            var today = Math.Floor(now.ToUnixTimeSeconds() / 86400.0);
            var earnings = await client.GetEarningsAsync(today - 6, today + 1, machineId, cancellationToken).ConfigureAwait(false);
            account = account with { Earnings = earnings };
        }
        catch (VastApiException)
        {
            complete = false;
        }

        if (machineId is { } id)
        {
            try
            {
                account = account with { Reports = await client.GetReportsAsync(id, cancellationToken).ConfigureAwait(false) };
            }
            catch (VastApiException)
            {
                complete = false;
            }
        }

        try
        {
            account = account with { User = await client.GetCurrentUserAsync(cancellationToken).ConfigureAwait(false) };
        }
        catch (VastApiException)
        {
            complete = false;
        }

        // A failed part is tried again at the next machine poll; a complete read waits a full account interval.
        _nextAccountRead = complete ? now + options.Value.AccountPollInterval : now;
        _account = account with { AccountReadAt = complete ? now : account.AccountReadAt };
        return _account;
    }
}
