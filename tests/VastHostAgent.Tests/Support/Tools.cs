using System.Diagnostics;

namespace VastHostAgent.Tests.Support;

/// <summary>Runs a real tool (systemd-analyze, lintian, dpkg-deb, shellcheck, promtool, ...) to completion.</summary>
public static class Tools
{
    public static Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string file, params string[] args) =>
        RunAsync(file, args, null, null);

    /// <summary>
    /// Runs <paramref name="file"/> to completion (killed after <paramref name="timeout"/>, 5 minutes by default),
    /// reading both streams at once; <paramref name="standardInput"/> is written to its stdin, and
    /// <paramref name="configure"/> may adjust the start info last (e.g. an isolated environment).
    /// </summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(
        string file, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment, string? workingDirectory, TimeSpan? timeout = null,
        string? standardInput = null, Action<ProcessStartInfo>? configure = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in environment ?? new Dictionary<string, string?>())
        {
            psi.Environment[k] = v;
        }

        configure?.Invoke(psi);

        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"{file} is not installed: run scripts/test.sh (it installs what the tests need)", ex);
        }

        using (process)
        {
            if (standardInput is not null)
            {
                await process.StandardInput.WriteAsync(standardInput);
            }

            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(5));
            try
            {
                await process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in {timeout ?? TimeSpan.FromMinutes(5)}");
            }

            return (process.ExitCode, await stdout, await stderr);
        }
    }
}
