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
}
