namespace VastHostAgent.Kernel;

/// <summary>Holds the latest <see cref="HostSnapshot"/>. Writers swap in a new value atomically; readers never block.</summary>
public sealed class SnapshotStore
{
    private HostSnapshot _current = HostSnapshot.Empty;

    /// <summary>Raised after every publish, on the publishing thread.</summary>
    public event Action<HostSnapshot>? Published;

    public HostSnapshot Current => Volatile.Read(ref _current);

    /// <summary>Applies <paramref name="change"/> to the latest snapshot (retrying if another sampler published meanwhile).</summary>
    public HostSnapshot Update(Func<HostSnapshot, HostSnapshot> change)
    {
        while (true)
        {
            var before = Volatile.Read(ref _current);
            var after = change(before) with { Generation = before.Generation + 1 };
            if (ReferenceEquals(Interlocked.CompareExchange(ref _current, after, before), before))
            {
                Published?.Invoke(after);
                return after;
            }
        }
    }
}
