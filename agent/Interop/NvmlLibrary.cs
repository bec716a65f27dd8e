using System.Reflection;
using System.Runtime.InteropServices;

namespace VastHostAgent.Interop;

/// <summary>
/// Owns the process-wide load of the NVML shared library. <see cref="Nvml"/>'s imports name the soname;
/// a resolver maps it to the handle loaded here, so the library path is configurable (tests and the demo
/// load the fake library by absolute path) without changing the import declarations.
/// </summary>
internal static class NvmlLibrary
{
    private static readonly Lock Gate = new();
    private static nint s_handle;
    private static string? s_loadedFrom;
    private static bool s_resolverInstalled;

    /// <summary>The path the library was loaded from, or null.</summary>
    public static string? LoadedFrom => s_loadedFrom;

    /// <summary>Loads the library once per process. A second call with another path keeps the first load.</summary>
    public static bool TryLoad(string path, out string? error)
    {
        lock (Gate)
        {
            if (s_handle != 0)
            {
                error = null;
                return true;
            }

            if (!NativeLibrary.TryLoad(path, out var handle))
            {
                error = path.Contains('/', StringComparison.Ordinal)
                    ? $"cannot load {path} (file missing or not a loadable library)"
                    : $"{path} not found in the library search path (is the NVIDIA driver installed?)";
                return false;
            }

            s_handle = handle;
            s_loadedFrom = path;
            if (!s_resolverInstalled)
            {
                NativeLibrary.SetDllImportResolver(typeof(Nvml).Assembly, Resolve);
                s_resolverInstalled = true;
            }

            error = null;
            return true;
        }
    }

    /// <summary>True when the loaded library exports <paramref name="name"/>.</summary>
    public static bool HasExport(string name) =>
        s_handle != 0 && NativeLibrary.TryGetExport(s_handle, name, out _);

    private static nint Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) =>
        libraryName == Nvml.LibraryName ? s_handle : 0;
}
