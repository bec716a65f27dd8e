namespace VastHostAgent.Kernel;

/// <summary>
/// Reads small /proc and /sys (pseudo-)files into a caller's buffer: one open, reads to end of file, one close, no
/// stream, string or decoder on the way (sampling paths read dozens of such files every few seconds).
/// </summary>
public static class SmallFile
{
    /// <summary>Reads the file into <paramref name="buffer"/> (at most its length); -1 when it cannot be read.</summary>
    public static int Read(string path, byte[] buffer)
    {
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            var total = 0;
            while (total < buffer.Length)
            {
                // /proc and /sys files report size 0: read until end of file.
                var n = RandomAccess.Read(handle, buffer.AsSpan(total), total);
                if (n == 0)
                {
                    break;
                }

                total += n;
            }

            return total;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return -1; // gone between listing and reading (a process exited, a device left): normal
        }
    }
}
