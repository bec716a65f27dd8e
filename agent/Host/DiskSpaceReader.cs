using System.Runtime.InteropServices;
using VastHostAgent.Interop;

namespace VastHostAgent.Host;

/// <summary>Reads free and total space of the filesystem holding a path.</summary>
public interface IDiskSpaceReader
{
    /// <summary>Measures the filesystem of <paramref name="path"/>, or of its nearest existing parent when the path does not exist yet.</summary>
    DiskSpace Read(string path);
}

internal sealed class StatVfsDiskSpaceReader : IDiskSpaceReader
{
    public DiskSpace Read(string path)
    {
        var measured = NearestExisting(path);
        if (Libc.statvfs(measured, out var st) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"statvfs({measured}) failed: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        var unit = st.FragmentSize != 0 ? st.FragmentSize : st.BlockSize;
        return new DiskSpace(path, measured, st.Blocks * unit, st.BlocksFree * unit, st.BlocksAvailable * unit);
    }

    private static string NearestExisting(string path)
    {
        var current = Path.GetFullPath(path);
        while (!Directory.Exists(current) && !File.Exists(current))
        {
            var parent = Path.GetDirectoryName(current);
            if (parent is null)
            {
                return "/";
            }

            current = parent;
        }

        return current;
    }
}
