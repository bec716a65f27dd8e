using System.Runtime.InteropServices;
using System.Text;
using VastHostAgent.Interop;

namespace VastHostAgent.Gpu;

/// <summary>The kernel log cannot be opened or read; <see cref="Exception.Message"/> says why, in a few words.</summary>
internal sealed class KernelLogUnavailableException(string problem) : Exception(problem);

/// <summary>
/// Reads the kernel log from its end on: <c>/dev/kmsg</c> (a record device: each <c>read()</c> returns one record) or
/// a regular text file (tailed: appended lines are read, a truncation restarts at its start). Which one is decided
/// by the file itself: a file that can seek to its current position is a text file; <c>/dev/kmsg</c> cannot.
/// </summary>
internal abstract class KernelLogReader : IDisposable
{
    /// <summary>Opens <paramref name="path"/> positioned at its end. Throws <see cref="KernelLogUnavailableException"/>.</summary>
    public static KernelLogReader Open(string path)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new KernelLogUnavailableException("not found");
        }
        catch (UnauthorizedAccessException)
        {
            throw new KernelLogUnavailableException("permission denied");
        }
        catch (IOException ex)
        {
            throw new KernelLogUnavailableException(ex.Message);
        }

        if (stream.CanSeek)
        {
            return new TextFileTail(stream);
        }

        stream.Dispose();
        return KmsgDevice.OpenDevice(path);
    }

    /// <summary>A text file waits between reads (the agent polls it); a record device waits in <c>poll()</c>.</summary>
    public abstract bool NeedsPolling { get; }

    /// <summary>Adds the lines or records available now to <paramref name="lines"/>. Throws <see cref="KernelLogUnavailableException"/> when reading fails.</summary>
    public abstract void Read(List<string> lines);

    public abstract void Dispose();

    /// <summary>A regular file, tailed.</summary>
    private sealed class TextFileTail(FileStream stream) : KernelLogReader
    {
        private const int MaxLine = 64 * 1024;
        private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
        private readonly StringBuilder _partial = new();
        private readonly byte[] _bytes = new byte[64 * 1024];
        private readonly char[] _chars = new char[Encoding.UTF8.GetMaxCharCount(64 * 1024)];
        private long _position = stream.Length;

        public override bool NeedsPolling => true;

        /// <summary>Set when the last read found the file shorter than what was read of it.</summary>
        public bool Truncated { get; private set; }

        public override void Read(List<string> lines)
        {
            try
            {
                var length = stream.Length;
                if (length < _position)
                {
                    _position = 0;
                    _partial.Clear();
                    _decoder.Reset();
                    Truncated = true;
                }

                stream.Position = _position;
                int n;
                while ((n = stream.Read(_bytes, 0, _bytes.Length)) > 0)
                {
                    _position += n;
                    var count = _decoder.GetChars(_bytes, 0, n, _chars, 0);
                    Split(_chars.AsSpan(0, count), lines);
                }
            }
            catch (IOException ex)
            {
                throw new KernelLogUnavailableException(ex.Message);
            }
        }

        /// <summary>Whether a truncation was seen since the last call (for one log line).</summary>
        public bool TakeTruncated()
        {
            var truncated = Truncated;
            Truncated = false;
            return truncated;
        }

        private void Split(ReadOnlySpan<char> chars, List<string> lines)
        {
            while (chars.Length > 0)
            {
                var newline = chars.IndexOf('\n');
                if (newline < 0)
                {
                    if (_partial.Length + chars.Length <= MaxLine)
                    {
                        _partial.Append(chars);
                    }

                    return;
                }

                _partial.Append(chars[..newline]);
                lines.Add(_partial.ToString());
                _partial.Clear();
                chars = chars[(newline + 1)..];
            }
        }

        public override void Dispose() => stream.Dispose();
    }

    /// <summary>
    /// <c>/dev/kmsg</c>: opened non-blocking and positioned after the last record (<c>lseek(SEEK_END)</c>), so only records
    /// written after the agent opened it are read. Each <c>read()</c> returns one record; EPIPE means records were
    /// overwritten before they were read (the next read goes on with the oldest one left).
    /// </summary>
    private sealed unsafe class KmsgDevice : KernelLogReader
    {
        private const int PollTimeoutMs = 500;
        private readonly byte[] _buffer = new byte[8192];
        private readonly string _path;
        private int _fd;

        private KmsgDevice(string path, int fd)
        {
            _path = path;
            _fd = fd;
        }

        public override bool NeedsPolling => false;

        /// <summary>Records overwritten before they were read, since the last call.</summary>
        public int Overruns { get; private set; }

        public static KmsgDevice OpenDevice(string path)
        {
            var fd = Libc.open(path, Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
            if (fd < 0)
            {
                throw new KernelLogUnavailableException(Problem(Marshal.GetLastPInvokeError()));
            }

            if (Libc.lseek(fd, 0, Libc.SEEK_END) < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                _ = Libc.close(fd);
                throw new KernelLogUnavailableException("cannot seek to its end: " + Problem(errno));
            }

            return new KmsgDevice(path, fd);
        }

        public override void Read(List<string> lines)
        {
            var pfd = new Libc.PollFd { Fd = _fd, Events = Libc.POLLIN };
            var ready = Libc.poll(&pfd, 1, PollTimeoutMs);
            if (ready < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EINTR)
                {
                    return;
                }

                throw new KernelLogUnavailableException("poll: " + Problem(errno));
            }

            if (ready == 0)
            {
                return;
            }

            // Drain what is there: one record per read, until EAGAIN.
            for (var i = 0; i < 10_000; i++)
            {
                nint n;
                fixed (byte* b = _buffer)
                {
                    n = Libc.read(_fd, b, (nuint)_buffer.Length);
                }

                if (n > 0)
                {
                    var record = Encoding.UTF8.GetString(_buffer, 0, (int)n);
                    var end = record.IndexOf('\n', StringComparison.Ordinal);
                    lines.Add(end < 0 ? record : record[..end]); // continuation lines (" KEY=value") follow the first
                    continue;
                }

                if (n == 0)
                {
                    return;
                }

                var errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EAGAIN)
                {
                    return;
                }

                if (errno == Libc.EPIPE)
                {
                    Overruns++;
                    continue;
                }

                if (errno == Libc.EINTR)
                {
                    continue;
                }

                throw new KernelLogUnavailableException($"read {_path}: " + Problem(errno));
            }
        }

        /// <summary>Whether records were overwritten since the last call.</summary>
        public bool TakeOverrun()
        {
            var overrun = Overruns > 0;
            Overruns = 0;
            return overrun;
        }

        private static string Problem(int errno) => errno switch
        {
            1 or 13 => "permission denied",
            2 => "not found",
            _ => Marshal.GetPInvokeErrorMessage(errno),
        };

        public override void Dispose()
        {
            if (_fd >= 0)
            {
                _ = Libc.close(_fd);
                _fd = -1;
            }
        }
    }

    /// <summary>What happened since the last call that deserves a log line: "truncated", "overrun", or null.</summary>
    public string? TakeEvent() => this switch
    {
        TextFileTail t when t.TakeTruncated() => "truncated",
        KmsgDevice d when d.TakeOverrun() => "overrun",
        _ => null,
    };
}
