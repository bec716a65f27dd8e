namespace VastHostAgent.Vast;

/// <summary>What the agent last read from the Vast API about this machine and account. Immutable.</summary>
public sealed record VastState
{
    /// <summary>The last machine poll succeeded.</summary>
    public bool Up { get; init; }

    public string? Problem { get; init; }

    /// <summary>This machine's Vast id, once identified.</summary>
    public long? MachineId { get; init; }

    /// <summary>Why the machine is not identified: not_found, ambiguous, not_owned (null when it is).</summary>
    public string? IdentificationProblem { get; init; }

    public VastMachine? Machine { get; init; }

    public DateTimeOffset? MachineReadAt { get; init; }

    public VastEarnings? Earnings { get; init; }

    public IReadOnlyList<VastReport>? Reports { get; init; }

    public VastUser? User { get; init; }

    public DateTimeOffset? AccountReadAt { get; init; }

    /// <summary>Every machine of the account (controller role: one <c>GET /machines</c> per cycle); null otherwise.</summary>
    public IReadOnlyList<VastMachine>? Machines { get; init; }

    public DateTimeOffset? MachinesReadAt { get; init; }
}
