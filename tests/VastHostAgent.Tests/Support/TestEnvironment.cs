using System.Diagnostics;

namespace VastHostAgent.Tests.Support;

/// <summary>Locations of the repository, the built agent and the fake NVML library.</summary>
public static class TestEnvironment
{
    private static readonly Lock Gate = new();
    private static string? s_fakeNvml;
    private static string? s_fakeNvmlLegacy;

    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>
    /// The agent to start: <c>AGENT_UNDER_TEST</c> (e.g. a NativeAOT build) when set, else the
    /// framework-dependent build copied next to the tests (started through <c>dotnet</c>).
    /// </summary>
    public static (string FileName, string[] PrefixArgs) AgentCommand
    {
        get
        {
            var binary = Environment.GetEnvironmentVariable("AGENT_UNDER_TEST");
            if (!string.IsNullOrEmpty(binary))
            {
                return (binary, []);
            }

            var dll = Path.Combine(AppContext.BaseDirectory, "vast-host-agent.dll");
            return ("dotnet", [dll]);
        }
    }

    /// <summary>The fake libnvidia-ml.so.1 (built with gcc on first use when scripts/test.sh has not built it).</summary>
    public static string FakeNvml => s_fakeNvml ??= BuildFakeNvml(legacy: false);

    /// <summary>The fake library without the newer versioned exports.</summary>
    public static string FakeNvmlLegacy => s_fakeNvmlLegacy ??= BuildFakeNvml(legacy: true);

    public static string NewTempDirectory(string prefix)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"vha-{prefix}-{Guid.NewGuid():N}"[..32]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string BuildFakeNvml(bool legacy)
    {
        lock (Gate)
        {
            // Built from every .c file there, as scripts/lib.sh build_fake_nvml does; rebuilt when a source or the header is newer.
            var sourceDir = Path.Combine(RepositoryRoot, "tests", "fake-nvml");
            var sources = Directory.GetFiles(sourceDir, "*.c").Order(StringComparer.Ordinal).ToList();
            var dir = Path.Combine(sourceDir, "build", legacy ? "legacy" : "");
            var output = Path.Combine(dir, "libnvidia-ml.so.1");
            var newest = sources.Concat(Directory.GetFiles(sourceDir, "*.h")).Max(File.GetLastWriteTimeUtc);
            if (File.Exists(output) && File.GetLastWriteTimeUtc(output) >= newest)
            {
                return output;
            }

            Directory.CreateDirectory(dir);
            string[] variant = legacy ? ["-DFAKE_NVML_LEGACY"] : [];
            string[] args = ["-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", .. variant, "-Wl,-soname,libnvidia-ml.so.1", "-o", output, .. sources, "-lm", "-lpthread"];
            var psi = new ProcessStartInfo("gcc") { RedirectStandardError = true };
            foreach (var arg in args)
            {
                psi.ArgumentList.Add(arg);
            }

            using var gcc = Process.Start(psi)!;
            var errors = gcc.StandardError.ReadToEnd();
            gcc.WaitForExit();
            if (gcc.ExitCode != 0)
            {
                throw new InvalidOperationException($"gcc failed building the fake NVML library: {errors}");
            }

            return output;
        }
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "VastHostAgent.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("VastHostAgent.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>Polls a condition until it holds or a deadline passes (never a fixed sleep).</summary>
public static class Poll
{
    public static async Task<T> UntilAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.StartNew();
        T last = default!;
        Exception? lastError = null;
        while (deadline.Elapsed < timeout)
        {
            try
            {
                last = await probe();
                lastError = null;
                if (done(last))
                {
                    return last;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
            {
                lastError = ex;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0}s waiting for {what}. Last value: {last}{(lastError is null ? "" : $"; last error: {lastError.Message}")}");
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        UntilAsync(() => Task.FromResult(condition()), ok => ok, timeout, what);
}
