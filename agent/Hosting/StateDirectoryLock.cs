using VastHostAgent.Kernel;

namespace VastHostAgent.Hosting;

/// <summary>
/// <c>{agent.stateDirectory}/agent.lock</c>, held by the daemon for its whole life (across reloads) so that a
/// second daemon on the same state directory refuses to start instead of running next to the first one (two
/// reconcile loops, two writers of the state files); a <see cref="ProcessLock"/>. The one-shot
/// commands (<c>plan</c>, <c>apply --once</c>, <c>maint</c>, <c>status</c>) do not take it: they run next to the daemon.
/// </summary>
public sealed class StateDirectoryLock : IDisposable
{
    public const string FileName = "agent.lock";

    private readonly IDisposable _stream;

    private StateDirectoryLock(IDisposable stream, string path)
    {
        _stream = stream;
        Path = path;
    }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>
    /// Takes the lock. <c>Busy</c>: another process holds it (one line saying so). <c>Warning</c>: the lock
    /// could not be taken for another reason (the directory cannot be created or written, e.g. a run from a
    /// checkout as a user without access to the default /var/lib/vast-host-agent): the agent runs on without it.
    /// </summary>
    public static (StateDirectoryLock? Lock, string? Busy, string? Warning) Acquire(string stateDirectory)
    {
        var path = System.IO.Path.Combine(stateDirectory, FileName);
        var (held, busy, problem) = ProcessLock.Acquire(path);
        return held is not null ? (new StateDirectoryLock(held, path), null, null)
            : busy ? (null, $"another vast-host-agent is running on the state directory {stateDirectory} (it holds {path}): stop it first, or give this one its own agent.stateDirectory", null)
            : (null, null, $"{problem}: running without {FileName}, a second agent on {stateDirectory} would not be noticed");
    }

    public void Dispose() => _stream.Dispose();
}
