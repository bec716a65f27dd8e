using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using VastHostAgent.Management;

namespace VastHostAgent.Maintenance;

/// <summary>
/// Runs a window's start or end hook (<c>maintenance.startHook</c>, <c>endHook</c>): <c>/bin/sh -c</c> with the
/// window in its environment, killed with its process tree after <c>maintenance.hookTimeout</c> or when the agent
/// stops; its exit and output are logged and journaled.
/// </summary>
public sealed class MaintenanceHookRunner(DecisionJournal journal, TimeProvider time, ILogger<MaintenanceHookRunner> logger)
{
    public async Task RunAsync(string command, MaintenanceWindow w, string when, TimeSpan timeout, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(command))
        {
            return;
        }

        var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(command);
        psi.Environment["VASTHOST_WINDOW_ID"] = w.Id;
        psi.Environment["VASTHOST_WINDOW_EVENT"] = when;
        psi.Environment["VASTHOST_WINDOW_START"] = w.Start.ToString("o", CultureInfo.InvariantCulture);
        psi.Environment["VASTHOST_WINDOW_END"] = w.End.ToString("o", CultureInfo.InvariantCulture);
        psi.Environment["VASTHOST_WINDOW_CATEGORY"] = w.Category;
        string result;
        try
        {
            using var process = Process.Start(psi)!;
            var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
            using var timeoutCts = new CancellationTokenSource(timeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeoutCts.Token, cancellationToken);
            try
            {
                await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
                result = $"exit {process.ExitCode}";
            }
            catch (OperationCanceledException)
            {
                // Timed out, or the agent is stopping: a hook never outlives either.
                process.Kill(entireProcessTree: true);
                result = cancellationToken.IsCancellationRequested ? "killed: the agent is stopping" : $"killed after {timeout.TotalSeconds:0} s";
            }

            var output = ((await stdout.ConfigureAwait(false)) + (await stderr.ConfigureAwait(false))).Trim();
            result += output.Length == 0 ? "" : ": " + (output.Length > 2000 ? output[..2000] + "…" : output);
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            result = "could not start: " + ex.Message;
        }

        MaintenanceLog.HookRan(logger, when, w.Id, result);
        journal.Write([JournalEntries.Entry(now, "maintenance hook", when, "hook", false, $"{w.Id} {when} hook `{command}`: {result}")]);
        cancellationToken.ThrowIfCancellationRequested();
    }
}
