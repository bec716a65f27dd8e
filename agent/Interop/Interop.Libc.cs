using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace VastHostAgent.Interop;

/// <summary>libc calls the agent makes directly (x86_64 glibc layouts).</summary>
[SuppressMessage("Style", "IDE1006:Naming Styles", Justification = "Native names kept as in the C headers.")]
internal static unsafe partial class Libc
{
    private const string LibraryName = "libc";

    /// <summary><c>struct statvfs</c> on x86_64 glibc: 112 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct StatVfs
    {
        public ulong BlockSize;          // f_bsize
        public ulong FragmentSize;       // f_frsize: the unit of the block counts
        public ulong Blocks;             // f_blocks
        public ulong BlocksFree;         // f_bfree
        public ulong BlocksAvailable;    // f_bavail: free to unprivileged users
        public ulong Files;              // f_files
        public ulong FilesFree;          // f_ffree
        public ulong FilesAvailable;     // f_favail
        public ulong FileSystemId;       // f_fsid
        public ulong Flags;              // f_flag
        public ulong NameMax;            // f_namemax
        private fixed int _spare[6];     // __f_spare
    }

    [LibraryImport(LibraryName, EntryPoint = "statvfs", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int statvfs(string path, out StatVfs buffer);

    public const int O_RDONLY = 0;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int SEEK_END = 2;
    public const short POLLIN = 0x1;
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int EPIPE = 32;

    /// <summary><c>struct pollfd</c>: 8 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport(LibraryName, EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int open(string path, int flags);

    [LibraryImport(LibraryName, EntryPoint = "close", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(LibraryName, EntryPoint = "read", SetLastError = true)]
    public static partial nint read(int fd, byte* buffer, nuint count);

    [LibraryImport(LibraryName, EntryPoint = "lseek", SetLastError = true)]
    public static partial long lseek(int fd, long offset, int whence);

    [LibraryImport(LibraryName, EntryPoint = "poll", SetLastError = true)]
    public static partial int poll(PollFd* fds, nuint count, int timeoutMs);
}
