using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using VastHostAgent.Containers;
using VastHostAgent.Hosting;
using VastHostAgent.Kernel;
using VastHostAgent.Rentals;

namespace VastHostAgent.Cli;

/// <summary>
/// <c>vast-host-agent rentals</c>: the rental ledger, one row per Vast instance run. Reads <c>rentals.jsonl</c> in the
/// state directory (the daemon need not run); damaged lines are skipped and counted on stderr.
/// </summary>
internal static partial class RentalsCommand
{
    public static async Task<int> RunAsync(string? configPath, string? since, bool json, TextWriter output)
    {
        var now = DateTimeOffset.UtcNow;
        DateTimeOffset? from = null;
        if (since is not null)
        {
            if (ParseSince(since, now) is not { } parsed)
            {
                await Console.Error.WriteLineAsync($"error: --since {since}: not a date (2026-12-01, 2026-12-01T02:00Z) or an age (90m, 24h, 7d)").ConfigureAwait(false);
                return ExitCodes.InvalidConfiguration;
            }

            from = parsed;
        }

        var (configuration, _) = AgentCommandLine.LoadConfiguration(configPath);
        if (configuration is null)
        {
            return ExitCodes.InvalidConfiguration;
        }

        var agent = configuration.GetSection(AgentOptions.SectionName).Get<AgentOptions>() ?? new AgentOptions();
        var docker = configuration.GetSection(DockerOptions.SectionName).Get<DockerOptions>() ?? new DockerOptions();
        var file = new RentalLedgerFile(agent.StateDirectory, docker.LedgerMaxBytes, docker.LedgerFiles);
        LedgerRead read;
        try
        {
            read = file.Read();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"error: cannot read {file.Path}: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }

        if (read.Damaged > 0)
        {
            await Console.Error.WriteLineAsync($"warning: {read.Damaged} damaged line(s) in the ledger skipped (first: {read.FirstProblem})").ConfigureAwait(false);
        }

        var runs = Select(read.Runs(), from);
        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(runs.ToList(), RentalJson.Default.ListRentalRecord)).ConfigureAwait(false);
        }
        else
        {
            await output.WriteAsync(Render(runs, now, file.Path)).ConfigureAwait(false);
        }

        return ExitCodes.Ok;
    }

    /// <summary>Runs that were running at or after <paramref name="from"/>: ended after it, or still running.</summary>
    internal static IReadOnlyList<RentalRecord> Select(IReadOnlyList<RentalRecord> runs, DateTimeOffset? from) =>
        from is { } f ? [.. runs.Where(r => r.StoppedAt is not { } stop || stop >= f)] : runs;

    /// <summary>An ISO 8601 date or time (UTC without an offset), or an age: 90m, 24h, 7d.</summary>
    internal static DateTimeOffset? ParseSince(string text, DateTimeOffset now)
    {
        var age = Age().Match(text.Trim());
        if (age.Success)
        {
            var n = int.Parse(age.Groups[1].ValueSpan, CultureInfo.InvariantCulture);
            return now - (age.Groups[2].Value switch { "m" => TimeSpan.FromMinutes(n), "h" => TimeSpan.FromHours(n), _ => TimeSpan.FromDays(n) });
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) ? at.ToUniversalTime() : null;
    }

    internal static string Render(IReadOnlyList<RentalRecord> runs, DateTimeOffset now, string path)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        var rows = runs.Select(r =>
        {
            var duration = r.Duration(now);
            var gpuHours = r.Running ? r.Gpus.Count * duration.TotalHours : r.GpuHours;
            var end = r.Running ? "running" : (r.StopEstimated ? "~" : "") + Time(r.StoppedAt!.Value);
            var exit = r.Running ? "-" : (r.ExitCode?.ToString(inv) ?? "?") + (r.OomKilled ? " OOM" : "");
            return new[]
            {
                r.InstanceId.ToString(inv),
                r.Image.Length > 40 ? r.Image[..39] + "…" : r.Image,
                Gpus(r.Gpus),
                Time(r.StartedAt),
                end,
                Duration(duration),
                gpuHours.ToString("0.00", inv),
                (r.EnergyJoules / 3.6e6).ToString("0.000", inv),
                exit,
            };
        }).ToList();
        StatusCommand.Table(sb, ["INSTANCE", "IMAGE", "GPUS", "START", "END", "DURATION", "GPU-H", "KWH", "EXIT"], rows);
        var ended = runs.Where(r => !r.Running).ToList();
        sb.Append(inv, $"{runs.Count} run(s), {runs.Count - ended.Count} running; {rows.Sum(r => double.Parse(r[6], inv)):0.00} GPU-h, {runs.Sum(r => r.EnergyJoules) / 3.6e6:0.000} kWh measured ({path})\n");
        if (ended.Any(r => r.StopEstimated))
        {
            sb.Append("~ end not seen (removed while the agent was away): the last time the agent knew it running\n");
        }

        return sb.ToString();
    }

    private static string Gpus(IReadOnlyList<string> gpus) =>
        gpus.Count == 0 ? "0" : $"{gpus.Count} ({string.Join(',', gpus.Select(g => g.StartsWith("GPU-", StringComparison.Ordinal) && g.Length >= 12 ? g[4..12] : g))})";

    private static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static string Duration(TimeSpan t) =>
        t.TotalDays >= 1 ? $"{(int)t.TotalDays}d{t.Hours}h" : t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : $"{t.Minutes}m{t.Seconds:D2}s";

    [GeneratedRegex(@"^(\d{1,6})([mhd])$")]
    private static partial Regex Age();
}
