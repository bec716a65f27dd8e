using System.Globalization;
using System.Text;

namespace VastHostAgent.Kernel;

/// <summary>
/// An exclusive lock file held for a process's life: on Unix .NET takes <c>flock(LOCK_EX | LOCK_NB)</c> for
/// <see cref="FileShare.None"/>, and the kernel releases it when the process ends, however it ends. The file holds
/// the holder's pid for a human who wonders (cat does not take the lock).
/// </summary>
public static class ProcessLock
{
    /// <summary>
    /// Takes the lock on <paramref name="path"/> (creating its directory). <c>Busy</c>: another process holds it.
    /// <c>Problem</c>: it could not be taken for another reason (in words).
    /// </summary>
    public static (IDisposable? Lock, bool Busy, string? Problem) Acquire(string path)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (null, false, $"cannot create the directory of {path} ({Reason(ex)})");
        }

        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex) when (ex.HResult == EWouldBlock)
        {
            return (null, true, null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (null, false, $"cannot open {path} ({Reason(ex)})");
        }

        try
        {
            stream.SetLength(0);
            stream.Write(Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n"));
            stream.Flush();
        }
        catch (IOException)
        {
            // The pid is a courtesy: the lock is what counts.
        }

        return (stream, false, null);
    }

    /// <summary>flock(2) said EWOULDBLOCK (.NET: a sharing violation with the errno as HResult; EAGAIN on Linux).</summary>
    private const int EWouldBlock = 11;

    private static string Reason(Exception ex) => ex is UnauthorizedAccessException ? "permission denied" : ex.Message;
}
