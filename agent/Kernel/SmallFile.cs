using System.Globalization;

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

    /// <summary>
    /// The whole number on the line <c>key value</c> of a small key-value file (cgroup <c>memory.stat</c>, sysfs
    /// <c>aer_dev_*</c>); null when the file cannot be read or has no such line.
    /// </summary>
    public static ulong? ReadValue(string path, string key, byte[] buffer)
    {
        var length = Read(path, buffer);
        if (length < 0)
        {
            return null;
        }

        var text = buffer.AsSpan(0, length);
        Span<byte> prefix = stackalloc byte[key.Length + 1];
        var written = System.Text.Encoding.ASCII.GetBytes(key, prefix);
        prefix[written] = (byte)' ';
        foreach (var range in text.Split((byte)'\n'))
        {
            var line = text[range];
            if (line.StartsWith(prefix)
                && ulong.TryParse(line[prefix.Length..].Trim((byte)' '), NumberStyles.None, CultureInfo.InvariantCulture, out var v))
            {
                return v;
            }
        }

        return null;
    }
}
