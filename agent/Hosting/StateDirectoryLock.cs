using System.Globalization;
using System.Text;

namespace VastHostAgent.Hosting;

/// <summary>
/// <c>{agent.stateDirectory}/agent.lock</c>, held by the daemon for its whole life (across reloads) so that a
/// second daemon on the same state directory refuses to start instead of running next to the first one (two
/// reconcile loops, two writers of the state files). On Unix .NET takes <c>flock(LOCK_EX | LOCK_NB)</c> for
/// <see cref="FileShare.None"/>; the kernel releases it when the process ends, however it ends. The one-shot
/// commands (<c>plan</c>, <c>apply --once</c>, <c>maint</c>, <c>status</c>) do not take it: they run next to the daemon.
/// </summary>
public sealed class StateDirectoryLock : IDisposable
{
    public const string FileName = "agent.lock";

    private readonly FileStream _stream;

    private StateDirectoryLock(FileStream stream, string path)
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
        try
        {
            Directory.CreateDirectory(stateDirectory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (null, null, $"cannot create the state directory {stateDirectory} ({Reason(ex)}): running without {FileName}, a second agent on it would not be noticed");
        }

        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (UnauthorizedAccessException ex)
        {
            return (null, null, $"cannot open {path} ({Reason(ex)}): running without it, a second agent on {stateDirectory} would not be noticed");
        }
        catch (IOException ex)
        {
            // flock(2) said EWOULDBLOCK (.NET: a sharing violation with the errno as HResult): another process holds it.
            const int EWouldBlock = 11; // EAGAIN on Linux
            return ex.HResult == EWouldBlock
                ? (null, $"another vast-host-agent is running on the state directory {stateDirectory} (it holds {path}): stop it first, or give this one its own agent.stateDirectory", null)
                : (null, null, $"cannot open {path} ({ex.Message}): running without it, a second agent on {stateDirectory} would not be noticed");
        }

        try
        {
            // For a human who wonders who holds it (cat does not take the lock).
            stream.SetLength(0);
            stream.Write(Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n"));
            stream.Flush();
        }
        catch (IOException)
        {
            // The pid is a courtesy: the lock is what counts.
        }

        return (new StateDirectoryLock(stream, path), null, null);
    }

    public void Dispose() => _stream.Dispose();

    private static string Reason(Exception ex) => ex is UnauthorizedAccessException ? "permission denied" : ex.Message;
}
