using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using VastHostAgent.Economics;
using VastHostAgent.Hosting;
using VastHostAgent.Kernel;
using VastHostAgent.Maintenance;
using VastHostAgent.Metrics;

namespace VastHostAgent.Cli;

/// <summary>
/// <c>vast-host-agent status</c>: GPUs and containers at a glance. Asks the running daemon for its
/// snapshot (<c>/api/status</c>); when no daemon answers, samples once itself.
/// </summary>
internal static class StatusCommand
{
    public static async Task<int> RunAsync(string? configPath, bool json, TextWriter output, CancellationToken cancellationToken)
    {
        var (configuration, _) = AgentCommandLine.LoadConfiguration(configPath, new Dictionary<string, string?> { ["gpu:xidEvents"] = "false" });
        if (configuration is null)
        {
            return ExitCodes.InvalidConfiguration;
        }

        await using var services = AgentRuntime.BuildOneShot(configuration);
        var metrics = services.GetRequiredService<IOptions<MetricsOptions>>().Value;
        // Behind metrics.webConfigFile the daemon wants TLS or credentials this command does not hold: sample once.
        var protectedEndpoint = !string.IsNullOrEmpty(metrics.WebConfigFile);
        var report = (protectedEndpoint ? null : await FromDaemonAsync(metrics.ParseListenAddress(), cancellationToken).ConfigureAwait(false))
            ?? await SampleOnceAsync(services, protectedEndpoint ? "sampled once (the daemon's endpoint is behind metrics.webConfigFile)" : "sampled once (no daemon answering)", cancellationToken).ConfigureAwait(false);

        if (json)
        {
            await output.WriteLineAsync(JsonSerializer.Serialize(report, AgentJsonContext.Default.StatusReport)).ConfigureAwait(false);
        }
        else
        {
            await output.WriteAsync(Render(report)).ConfigureAwait(false);
        }

        return ExitCodes.Ok;
    }

    private static async Task<StatusReport?> FromDaemonAsync(IPEndPoint listen, CancellationToken cancellationToken)
    {
        var host = listen.Address.Equals(IPAddress.Any) ? IPAddress.Loopback
            : listen.Address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback
            : listen.Address;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            var url = new Uri($"http://{new IPEndPoint(host, listen.Port)}/api/status");
            await using var stream = await http.GetStreamAsync(url, cancellationToken).ConfigureAwait(false);
            return await JsonSerializer.DeserializeAsync(stream, AgentJsonContext.Default.StatusReport, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException)
        {
            return null; // no daemon (or not ours): sample once instead
        }
    }

    private static async Task<StatusReport> SampleOnceAsync(ServiceProvider services, string source, CancellationToken cancellationToken)
    {
        var snapshot = await AgentRuntime.SampleOnceAsync(services, cancellationToken).ConfigureAwait(false);
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        return StatusReport.From(snapshot, source, now) with { Maintenance = MaintenanceStatus.TryRead(services, now) };
    }

    internal static string Render(StatusReport report)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.Append(inv, $"vast-host-agent {report.Version} on {Environment.MachineName}: {report.Source}, {report.GeneratedAt:yyyy-MM-dd HH:mm:ss}Z\n");
        var nvml = report.NvmlUp ? $"up, driver {report.DriverVersion}, {report.Gpus.Count(g => g.Up)}/{report.Gpus.Count} GPU(s) up" : "DOWN";
        var docker = report.DockerUp switch
        {
            true => $"up, {report.Containers.Count(c => c.State == "running")} running, {report.Containers.Count(c => c.InstanceId is not null && c.State == "running")} instance(s)",
            false => "DOWN",
            null => "not watched",
        };
        sb.Append(inv, $"NVML: {nvml}    Docker: {docker}\n");
        if (report.GpuCount is { } count)
        {
            sb.Append(count.Line()).Append('\n');
        }
        if (report.Problem is { } problem)
        {
            sb.Append(inv, $"problem: {problem}\n");
        }

        if (report.Economics is { } economics)
        {
            sb.Append(EconomicsLines(economics));
        }

        if (report.Maintenance is { } maintenance)
        {
            sb.Append(MaintCommand.Summary(maintenance, report.GeneratedAt));
        }

        if (report.Fleet is { } fleet)
        {
            sb.Append(Fleet(fleet));
        }

        sb.Append('\n');
        var gpuRows = report.Gpus.Select(g => new[]
        {
            g.Index.ToString(inv),
            g.Name,
            g.Up ? Value(g.TemperatureCelsius, "0", "°C") : g.Passthrough ? "VM" : "LOST",
            g.Up ? Value(g.UtilizationRatio * 100, "0", "%") : "-",
            g.MemoryTotalBytes is { } total ? $"{Gib(g.MemoryUsedBytes)}/{Gib(total)} GiB" : "-",
            g.PowerWatts is { } power ? $"{power.ToString("0", inv)}/{Value(g.PowerLimitWatts, "0", "")} W" : "-",
            g.InstanceId is { } id ? id.ToString(inv) : g.Container ?? "-",
        });
        Table(sb, ["GPU", "MODEL", "TEMP", "UTIL", "MEMORY", "POWER", "INSTANCE"], gpuRows);
        sb.Append('\n');

        if (report.DockerUp is null)
        {
            return sb.ToString();
        }

        var containerRows = report.Containers.Select(c => new[]
        {
            c.InstanceId?.ToString(inv) ?? "-",
            c.Name,
            c.Health is { } h ? $"{c.State} ({h})" : c.State,
            c.UptimeSeconds is { } up ? Duration(up) : "-",
            c.Gpus.Count > 0 ? string.Join(',', c.Gpus) : "-",
            Value(c.CpuCores, "0.00", ""),
            c.MemoryBytes is { } mem ? (c.MemoryLimitBytes is { } lim ? $"{Gib(mem)}/{Gib(lim)} GiB" : $"{Gib(mem)} GiB") : "-",
        });
        Table(sb, ["INSTANCE", "NAME", "STATE", "UPTIME", "GPUS", "CPU", "MEMORY"], containerRows);
        return sb.ToString();
    }

    /// <summary>Two lines: what the rig's electricity costs, what Vast pays, the margin and the break-even price.</summary>
    internal static string EconomicsLines(EconomicsSample e)
    {
        var inv = CultureInfo.InvariantCulture;
        static string Usd(double? v, string format = "0.00") => v is { } x ? (x < 0 ? "-$" : "$") + Math.Abs(x).ToString(format, CultureInfo.InvariantCulture) : "-";
        var sb = new StringBuilder();
        var draw = e.MachineWatts is { } w ? w.ToString("0", inv) + " W" : "no power reading";
        sb.Append(inv, $"Power: {draw} costs {Usd(e.CostPerHour, "0.000")}/h, {Usd(e.CostPerDay)}/day at {e.PricePerKwh:0.####} {e.Currency}/kWh{(e.TimeOfUse ? " (time of use)" : "")}; {Usd(e.CostToday)} today so far\n");
        var revenue = e.RevenuePerDay is { } r ? $"{Usd(r)}/day (mean of {e.RevenueDays} day(s))" : "not known yet";
        sb.Append(inv, $"Revenue: {revenue}    Margin: {Usd(e.MarginPerDay)}/day, {Usd(e.MarginPerGpuHour, "0.000")}/GPU-h rented    Break-even: {Usd(e.BreakEvenListed, "0.000")}/GPU-h listed ({Usd(e.BreakEvenRenter, "0.000")} renter)\n");
        return sb.ToString();
    }

    /// <summary>A controller's lines: the account, rig health, and the machines the fault guard holds.</summary>
    internal static string Fleet(FleetStatus fleet)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(fleet.LastCycleAt is { } at
            ? string.Create(inv, $"Fleet: {fleet.Machines} machine(s) on the account: {fleet.Managed} managed, {fleet.ReadOnly} read-only{(fleet.Conflicts > 0 ? $", {fleet.Conflicts} claimed twice (left alone)" : "")}; last cycle {at:yyyy-MM-dd HH:mm:ss}Z\n")
            : "Fleet: no cycle yet\n");
        if (fleet.RigHealth is { } health)
        {
            sb.Append(health.Up
                ? string.Create(inv, $"Rig health (fleet.prometheus): up, {health.Known} rig(s) known at {health.At:HH:mm:ss}Z\n")
                : string.Create(inv, $"Rig health (fleet.prometheus): UNAVAILABLE at {health.At:HH:mm:ss}Z: {health.Problem}: the fault guard holds (no unlist, no relist)\n"));
        }

        if (fleet.HeldCount > 0)
        {
            sb.Append(inv, $"Held (rig health unknown): {fleet.HeldCount} machine(s)\n");
            foreach (var m in fleet.Held)
            {
                sb.Append(inv, $"  {m.MachineId} ({m.Hostname ?? "-"}): {m.Why}\n");
            }

            if (fleet.HeldCount > fleet.Held.Count)
            {
                sb.Append(inv, $"  ... and {fleet.HeldCount - fleet.Held.Count} more (vasthost_fleet_rig_health_known == 0)\n");
            }
        }

        return sb.ToString();
    }

    /// <summary>A plain-text table, columns padded to their widest cell ("(none)" without rows); also used by <c>rentals</c>.</summary>
    internal static void Table(StringBuilder sb, string[] header, IEnumerable<string[]> rows)
    {
        var all = new List<string[]> { header };
        all.AddRange(rows);
        if (all.Count == 1)
        {
            all.Add([.. header.Select((_, i) => i == 0 ? "(none)" : "")]);
        }

        var widths = Enumerable.Range(0, header.Length).Select(i => all.Max(r => r[i].Length)).ToArray();
        foreach (var row in all)
        {
            sb.Append(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd()).Append('\n');
        }
    }

    private static string Value(double? value, string format, string unit) =>
        value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) + unit : "-";

    private static string Gib(ulong? bytes) => bytes is { } b ? (b / 1073741824.0).ToString("0.0", CultureInfo.InvariantCulture) : "?";

    private static string Duration(double seconds)
    {
        var t = TimeSpan.FromSeconds(seconds);
        return t.TotalDays >= 1 ? $"{(int)t.TotalDays}d{t.Hours}h" : t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : $"{t.Minutes}m{t.Seconds:D2}s";
    }
}
