namespace VastHostAgent.Tests.Support;

/// <summary>Runs the real promtool (Debian's prometheus package; scripts/test.sh installs it).</summary>
public static class Promtool
{
    public static async Task<(int ExitCode, string Output)> CheckMetricsAsync(string exposition)
    {
        var (exit, stdout, stderr) = await Tools.RunAsync("promtool", ["check", "metrics"], null, null, standardInput: exposition);
        return (exit, (stdout + stderr).Trim());
    }
}
