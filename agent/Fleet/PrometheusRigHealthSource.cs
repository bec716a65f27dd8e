using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;

namespace VastHostAgent.Fleet;

/// <summary>
/// The controller's rig health: a few instant queries against the host's Prometheus (which scrapes every rig
/// agent), each joined to the machine through <c>vasthost_rig_info</c> on <c>instance</c>, <c>job</c> and
/// aggregated by the mapping label (<c>fleet.prometheus.machineLabel</c>), so one read costs the same handful of
/// queries however many rigs there are. Any failed query (unreachable, HTTP error, timeout, a body that is not an
/// instant vector, <c>"status":"error"</c>) makes the whole report down: a partial read would let missing data look
/// healthy. A rig whose newest sample is older than <c>maxAge</c> is unknown; a rig Prometheus has no series for is
/// absent from the report, which <see cref="RigHealthReport.For"/> turns into unknown.
/// </summary>
public sealed class PrometheusRigHealthSource(
    HttpClient http,
    IOptions<FleetOptions> options,
    TimeProvider time,
    ILogger<PrometheusRigHealthSource> logger) : IRigHealthSource
{
    /// <summary>
    /// How long the machine mapping of a rig whose agent stopped answering is kept. A target that fails its scrape
    /// still has <c>up</c> (0) with the target labels, but its <c>vasthost_rig_info</c> goes stale at once, so a join
    /// on the live series alone would drop exactly the rig whose agent died and the guard could never see it.
    /// <c>last_over_time(vasthost_rig_info[1h])</c> keeps the last mapping of a target for an hour (range selectors
    /// skip staleness markers); after that the rig is absent (unknown, never healthy). The live series wins whenever
    /// the target has one (<c>or on(instance, job)</c>), so a renamed rig is not mapped twice, and <c>topk by
    /// (instance, job) (1, …)</c> keeps the join one-to-one even for a dead target renamed within the hour.
    /// </summary>
    internal const string MappingWindow = "1h";

    private readonly Lock _gate = new();
    private bool? _wasUp;
    private string? _lastProblem;
    private HashSet<string> _stale = new(StringComparer.Ordinal);

    public async Task<RigHealthReport> ReadAsync(CancellationToken cancellationToken)
    {
        var o = options.Value.Prometheus;
        var at = time.GetUtcNow();
        if (!PrometheusEndpoint.TryParse(o.Url, out var endpoint, out var urlProblem))
        {
            return Down(at, urlProblem);
        }

        var queries = RigHealthQueries.Build(o.MachineLabel, o.Selector);
        using var timeout = new CancellationTokenSource(o.Timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        QueryAnswer[] answers;
        try
        {
            answers = await Task.WhenAll(queries.All.Select(q => QueryAsync(endpoint, q.Name, q.PromQl, linked.Token))).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Down(at, $"Prometheus at {endpoint.Display} did not answer within {o.Timeout} (fleet.prometheus.timeout)");
        }

        if (answers.FirstOrDefault(a => a.Problem is not null) is { Problem: { } problem })
        {
            return Down(at, problem);
        }

        var byKey = Assemble(answers, queries, o.MaxAge, out var stale);
        LogUp(endpoint, byKey, stale);
        return new RigHealthReport(true, null, at, byKey);
    }

    private static Dictionary<string, RigObservation> Assemble(QueryAnswer[] answers, RigHealthQueries q, TimeSpan maxAge, out Dictionary<string, string> stale)
    {
        var label = q.MachineLabel;
        IEnumerable<(string Key, PromSample Sample)> Keyed(int index) =>
            answers[index].Samples!.Select(s => (Key: s.Label(label), Sample: s)).Where(k => k.Key.Length > 0);

        // Which rigs there are, and how fresh: the newest scrape of each rig (timestamp(up), joined like the rest)
        // against the query's evaluation time (Prometheus's clock, the one that stamped the samples: no skew).
        var fresh = new HashSet<string>(StringComparer.Ordinal);
        stale = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, s) in Keyed(q.Freshness))
        {
            var ageSeconds = s.EvaluatedAt - s.Value;
            if (!double.IsFinite(ageSeconds))
            {
                stale[key] = $"Prometheus has no usable sample time for rig {key}";
            }
            else if (ageSeconds > maxAge.TotalSeconds)
            {
                stale[key] = $"Prometheus's newest sample of rig {key} is {Format(ageSeconds)} old (more than fleet.prometheus.maxAge {maxAge})";
            }
            else
            {
                fresh.Add(key);
            }
        }

        fresh.ExceptWith(stale.Keys);
        var builders = fresh.ToDictionary(k => k, _ => new Builder(), StringComparer.Ordinal);
        Builder? For(string key) => builders.GetValueOrDefault(key);

        foreach (var (key, s) in Keyed(q.Up))
        {
            if (s.Value == 0 && For(key) is { } b)
            {
                b.AgentDown.Add(s.Label("instance"));
            }
        }

        foreach (var (key, s) in Keyed(q.Components))
        {
            if (s.Value == 0 && For(key) is { } b)
            {
                switch (s.Label("component"))
                {
                    case "nvml":
                        b.NvmlDown = "NVML is unavailable on the rig (vasthost_nvml_up 0)";
                        break;
                    case "docker":
                        b.DockerDown = "Docker does not answer on the rig (vasthost_docker_up 0)";
                        break;
                }
            }
        }

        foreach (var (key, s) in Keyed(q.LostGpus))
        {
            if (For(key) is { } b && int.TryParse(s.Label("gpu"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var gpu))
            {
                b.LostGpus.Add(gpu);
            }
        }

        foreach (var (key, s) in Keyed(q.Xids))
        {
            if (For(key) is { } b && double.IsFinite(s.Value)
                && ulong.TryParse(s.Label("xid"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var xid)
                && int.TryParse(s.Label("gpu"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var gpu))
            {
                b.Xids.Add(new RigXid(xid, gpu, DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(s.Value * 1000))));
            }
        }

        foreach (var (key, s) in Keyed(q.Ecc))
        {
            var uuid = s.Label("uuid");
            if (For(key) is { } b && uuid.Length > 0 && ToCount(s.Value) is { } count)
            {
                b.Ecc[uuid] = Math.Max(count, b.Ecc.GetValueOrDefault(uuid));
            }
        }

        foreach (var (key, s) in Keyed(q.MissingGpus))
        {
            if (For(key) is { } b && ToCount(s.Value) is { } missing)
            {
                b.MissingGpus = Math.Max(b.MissingGpus, missing);
            }
        }

        foreach (var (key, s) in Keyed(q.Disk))
        {
            if (For(key) is { } b && ToCount(s.Value) is { } bytes)
            {
                var path = s.Label("path");
                var (available, total) = b.Disk.GetValueOrDefault(path);
                b.Disk[path] = s.Label("quantity") switch
                {
                    "available" => (bytes, total),
                    "total" => (available, bytes),
                    _ => (available, total),
                };
            }
        }

        foreach (var (key, s) in Keyed(q.PowerCost))
        {
            if (For(key) is { } b && double.IsFinite(s.Value) && s.Value >= 0)
            {
                b.PowerCost = new RigPowerCost(
                    s.Value, string.Create(CultureInfo.InvariantCulture, $"{s.Value:0.####} $/GPU-h (the rig's vasthost_economics_load_cost_dollars_per_gpu_hour)"),
                    DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(s.EvaluatedAt * 1000)));
            }
        }

        var byKey = new Dictionary<string, RigObservation>(StringComparer.Ordinal);
        foreach (var (key, problem) in stale)
        {
            byKey[key] = RigObservation.Unknown(problem);
        }

        foreach (var (key, b) in builders)
        {
            byKey[key] = b.Build();
        }

        return byKey;
    }

    /// <summary>A non-negative count from a sample value; null for NaN or a negative value, the maximum for +Inf.</summary>
    private static ulong? ToCount(double value) =>
        double.IsNaN(value) || value < 0 ? null : value >= ulong.MaxValue ? ulong.MaxValue : (ulong)value;

    private static string Format(double seconds)
    {
        var s = (long)Math.Min(seconds, 100L * 365 * 86400);
        return s >= 3600 ? $"{s / 3600}h {s % 3600 / 60}m" : s >= 60 ? $"{s / 60}m {s % 60}s" : $"{s}s";
    }

    private async Task<QueryAnswer> QueryAsync(PrometheusEndpoint endpoint, string name, string promql, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, endpoint.Query(promql));
        request.Headers.Authorization = endpoint.Authorization;
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                PrometheusQueryResponse? body;
                try
                {
                    body = await JsonSerializer.DeserializeAsync(stream, PrometheusJsonContext.Default.PrometheusQueryResponse, cancellationToken).ConfigureAwait(false);
                }
                catch (JsonException ex)
                {
                    return response.IsSuccessStatusCode
                        ? QueryAnswer.Failed($"Prometheus at {endpoint.Display} answered the {name} query with a body that is not a query result ({endpoint.Scrub(ex.Message)})")
                        : QueryAnswer.Failed($"Prometheus at {endpoint.Display} answered the {name} query with HTTP {(int)response.StatusCode} ({response.ReasonPhrase})");
                }

                if (body is { Status: "error" })
                {
                    return QueryAnswer.Failed(
                        $"Prometheus at {endpoint.Display} refused the {name} query (HTTP {(int)response.StatusCode}, {body.ErrorType ?? "error"}: {Truncate(body.Error)})");
                }

                if (!response.IsSuccessStatusCode)
                {
                    return QueryAnswer.Failed($"Prometheus at {endpoint.Display} answered the {name} query with HTTP {(int)response.StatusCode} ({response.ReasonPhrase})");
                }

                return Parse(body) is { } samples
                    ? new QueryAnswer(samples, null)
                    : QueryAnswer.Failed(
                        $"Prometheus at {endpoint.Display} answered the {name} query with something else than a successful instant vector (status \"{Truncate(body?.Status)}\", resultType \"{Truncate(body?.Data?.ResultType)}\")");
            }
        }
        catch (HttpRequestException ex)
        {
            return QueryAnswer.Failed($"Prometheus at {endpoint.Display} is unreachable: {endpoint.Scrub(ex.Message)}");
        }
        catch (IOException ex)
        {
            return QueryAnswer.Failed($"Prometheus at {endpoint.Display} broke off its answer: {endpoint.Scrub(ex.Message)}");
        }
    }

    /// <summary>The samples of a <c>{"status":"success","data":{"resultType":"vector","result":[…]}}</c> body; null for any other shape.</summary>
    private static List<PromSample>? Parse(PrometheusQueryResponse? body)
    {
        if (body is not { Status: "success", Data: { ResultType: "vector", Result: { } result } })
        {
            return null;
        }

        var samples = new List<PromSample>(result.Count);
        foreach (var series in result)
        {
            if (series?.Value is not { ValueKind: JsonValueKind.Array } pair || pair.GetArrayLength() != 2
                || pair[0].ValueKind != JsonValueKind.Number || pair[1].ValueKind != JsonValueKind.String
                || !TryParseValue(pair[1].GetString()!, out var value))
            {
                return null;
            }

            samples.Add(new PromSample(series.Metric ?? new Dictionary<string, string>(), pair[0].GetDouble(), value));
        }

        return samples;
    }

    /// <summary>A PromQL sample value (a string in the JSON API): invariant culture, with Prometheus's spellings of NaN and infinities.</summary>
    internal static bool TryParseValue(string text, out double value)
    {
        switch (text)
        {
            case "NaN":
                value = double.NaN;
                return true;
            case "+Inf" or "Inf":
                value = double.PositiveInfinity;
                return true;
            case "-Inf":
                value = double.NegativeInfinity;
                return true;
            default:
                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
        }
    }

    private static string Truncate(string? text) =>
        text is null ? "" : text.Length <= 300 ? text : string.Concat(text.AsSpan(0, 300), "…");

    private RigHealthReport Down(DateTimeOffset at, string problem)
    {
        lock (_gate)
        {
            if (_wasUp != false || _lastProblem != problem)
            {
                PrometheusLog.Unavailable(logger, problem);
            }

            _wasUp = false;
            _lastProblem = problem;
            _stale.Clear();
        }

        return new RigHealthReport(false, problem, at, new Dictionary<string, RigObservation>());
    }

    private void LogUp(PrometheusEndpoint endpoint, Dictionary<string, RigObservation> present, Dictionary<string, string> stale)
    {
        lock (_gate)
        {
            if (_wasUp != true)
            {
                PrometheusLog.Available(logger, endpoint.Display, present.Count);
            }

            var newlyStale = stale.Keys.Where(k => !_stale.Contains(k)).Order(StringComparer.Ordinal).ToList();
            if (newlyStale.Count > 0)
            {
                PrometheusLog.Stale(logger, string.Join(", ", newlyStale), stale[newlyStale[0]]);
            }

            // Only rigs read fresh now: a stale rig that vanished from Prometheus is not "fresh again".
            var fresh = _stale.Where(k => !stale.ContainsKey(k) && present.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
            if (fresh.Count > 0)
            {
                PrometheusLog.Fresh(logger, string.Join(", ", fresh));
            }

            _wasUp = true;
            _lastProblem = null;
            _stale = [.. stale.Keys];
        }
    }

    private sealed class Builder
    {
        public SortedSet<string> AgentDown { get; } = new(StringComparer.Ordinal);

        public string? NvmlDown { get; set; }

        public string? DockerDown { get; set; }

        public SortedSet<int> LostGpus { get; } = [];

        public ulong MissingGpus { get; set; }

        public List<RigXid> Xids { get; } = [];

        public Dictionary<string, ulong> Ecc { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, (ulong Available, ulong Total)> Disk { get; } = new(StringComparer.Ordinal);

        public RigPowerCost? PowerCost { get; set; }

        public RigObservation Build()
        {
            // One filesystem is measured (Docker's data root); should several paths appear, the fullest counts.
            var disk = Disk.Where(d => d.Value.Total > 0)
                .OrderBy(d => (double)d.Value.Available / d.Value.Total)
                .Select(d => new RigDisk(d.Key, d.Value.Available, d.Value.Total))
                .FirstOrDefault();
            return new RigObservation
            {
                AgentDown = AgentDown.Count == 0 ? null : $"the rig agent does not answer Prometheus's scrapes (up 0 for {string.Join(", ", AgentDown)})",
                NvmlDown = NvmlDown,
                DockerDown = DockerDown,
                LostGpus = [.. LostGpus.Select(g => $"GPU {g.ToString(CultureInfo.InvariantCulture)} lost")],
                MissingGpus = MissingGpus == 0 ? [] : [string.Create(CultureInfo.InvariantCulture, $"{MissingGpus} GPU(s) missing on the rig (vasthost_gpus{{state=\"missing\"}})")],
                Xids = [.. Xids.OrderBy(x => x.GpuIndex).ThenBy(x => x.Xid)],
                EccUncorrected = Ecc,
                Disk = disk,
                PowerCost = PowerCost,
            };
        }
    }

    private sealed record QueryAnswer(List<PromSample>? Samples, string? Problem)
    {
        public static QueryAnswer Failed(string problem) => new(null, problem);
    }
}

/// <summary>One sample of an instant vector: labels, evaluation time (Unix seconds) and value.</summary>
internal sealed record PromSample(Dictionary<string, string> Labels, double EvaluatedAt, double Value)
{
    public string Label(string name) => Labels.TryGetValue(name, out var v) && v is not null ? v : "";
}

/// <summary>
/// The queries of one read. Every query is joined to the mapping label through <c>vasthost_rig_info</c> and
/// aggregated by it, so their number does not grow with the rigs.
/// </summary>
internal sealed class RigHealthQueries
{
    private RigHealthQueries(string machineLabel, string selector)
    {
        MachineLabel = machineLabel;
        var l = machineLabel;
        var mapping = $"topk by (instance, job) (1, vasthost_rig_info{Braces(selector)} or on(instance, job) last_over_time(vasthost_rig_info{Braces(selector)}[{PrometheusRigHealthSource.MappingWindow}]))";
        string Join(string expression) => $"{expression} * on(instance, job) group_left({l}) {mapping}";

        All =
        [
            ("up", $"min by ({l}, instance) ({Join("up" + Braces(selector))})"),
            ("freshness", $"max by ({l}) ({Join($"timestamp(up{Braces(selector)})")})"),
            ("nvml/docker", $"min by ({l}, component) ({Join(Renamed("vasthost_nvml_up|vasthost_docker_up", "component", "vasthost_(.+)_up", selector))})"),
            ("lost GPU", $"min by ({l}, gpu) ({Join("vasthost_gpu_up" + Braces(selector))}) == 0"),
            ("XID", $"max by ({l}, gpu, xid) ({Join("vasthost_gpu_xid_last_timestamp_seconds" + Braces(selector))})"),
            ("ECC", $"max by ({l}, uuid) ({Join("vasthost_gpu_ecc_errors_volatile_total" + Braces(selector, "error_type=\"uncorrected\""))})"),
            ("disk", $"min by ({l}, path, quantity) ({Join(Renamed("vasthost_disk_available_bytes|vasthost_disk_total_bytes", "quantity", "vasthost_disk_(.+)_bytes", selector))})"),
            ("power cost", $"max by ({l}) ({Join("vasthost_economics_load_cost_dollars_per_gpu_hour" + Braces(selector))})"),
            ("missing GPU", $"max by ({l}) ({Join("vasthost_gpus" + Braces(selector, "state=\"missing\""))}) > 0"),
        ];
    }

    public string MachineLabel { get; }

    public IReadOnlyList<(string Name, string PromQl)> All { get; }

    public int Up => 0;

    public int Freshness => 1;

    public int Components => 2;

    public int LostGpus => 3;

    public int Xids => 4;

    public int Ecc => 5;

    public int Disk => 6;

    public int PowerCost => 7;

    public int MissingGpus => 8;

    public static RigHealthQueries Build(string machineLabel, string selector) =>
        new(machineLabel is "machine_id" ? "machine_id" : "hostname", NormaliseSelector(selector));

    /// <summary>Several metrics in one selector, the part of each name <paramref name="pattern"/> captures kept in <paramref name="label"/> (a binary operation drops the name).</summary>
    private static string Renamed(string names, string label, string pattern, string selector) =>
        $"label_replace({Braces(selector, $"__name__=~\"{names}\"")}, \"{label}\", \"$1\", \"__name__\", \"{pattern}\")";

    /// <summary><c>fleet.prometheus.selector</c> as bare matchers: surrounding braces and stray commas removed.</summary>
    internal static string NormaliseSelector(string? selector)
    {
        var s = (selector ?? "").Trim();
        if (s.StartsWith('{') && s.EndsWith('}'))
        {
            s = s[1..^1];
        }

        return s.Trim().Trim(',').Trim();
    }

    private static string Braces(string selector, string? extra = null)
    {
        var parts = new[] { extra, selector }.Where(p => !string.IsNullOrEmpty(p)).ToList();
        return parts.Count == 0 ? "" : "{" + string.Join(", ", parts) + "}";
    }
}

/// <summary>The Prometheus base URL without credentials (for requests, logs and problems) and the Basic credentials it carried.</summary>
internal sealed class PrometheusEndpoint
{
    private readonly string[] _secrets;

    private PrometheusEndpoint(Uri baseUri, AuthenticationHeaderValue? authorization, string[] secrets)
    {
        Base = baseUri;
        Authorization = authorization;
        _secrets = secrets;
        Display = baseUri.GetLeftPart(UriPartial.Path);
    }

    public Uri Base { get; }

    /// <summary>The URL as it may be shown: scheme, host, port and path; never user name or password.</summary>
    public string Display { get; }

    public AuthenticationHeaderValue? Authorization { get; }

    public Uri Query(string promql) => new(Base, "api/v1/query?query=" + Uri.EscapeDataString(promql));

    /// <summary>Removes the credentials from a text (an exception message), should it contain them.</summary>
    public string Scrub(string text)
    {
        foreach (var secret in _secrets)
        {
            text = text.Replace(secret, "***", StringComparison.Ordinal);
        }

        return text;
    }

    public static bool TryParse(string? url, out PrometheusEndpoint endpoint, out string problem)
    {
        endpoint = null!;
        if (string.IsNullOrWhiteSpace(url))
        {
            problem = "fleet.prometheus.url is not set";
            return false;
        }

        if (!Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || uri.Host.Length == 0)
        {
            // Not echoed: a malformed URL may still carry a password.
            problem = "fleet.prometheus.url is not an absolute http:// or https:// URL";
            return false;
        }

        AuthenticationHeaderValue? authorization = null;
        var secrets = new List<string>();
        if (uri.UserInfo.Length > 0)
        {
            // Sent as Basic credentials in a header, never in the request URL (which ends up in exception texts).
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            var user = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            var password = colon < 0 ? "" : Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password)));
            secrets.AddRange(new[] { uri.UserInfo, password, colon < 0 ? "" : uri.UserInfo[(colon + 1)..] }.Where(s => s.Length > 0).Distinct().OrderByDescending(s => s.Length));
        }

        var builder = new UriBuilder(uri) { UserName = "", Password = "", Query = "", Fragment = "" };
        if (!builder.Path.EndsWith('/'))
        {
            builder.Path += "/";
        }

        endpoint = new PrometheusEndpoint(builder.Uri, authorization, [.. secrets]);
        problem = "";
        return true;
    }
}

/// <summary>The Prometheus HTTP API's answer to an instant query (<c>GET /api/v1/query</c>).</summary>
internal sealed class PrometheusQueryResponse
{
    public string? Status { get; set; }

    public PrometheusQueryData? Data { get; set; }

    public string? ErrorType { get; set; }

    public string? Error { get; set; }
}

internal sealed class PrometheusQueryData
{
    public string? ResultType { get; set; }

    public List<PrometheusVectorSample?>? Result { get; set; }
}

/// <summary>One element of a vector result: <c>{"metric":{…},"value":[unix seconds, "value"]}</c>.</summary>
internal sealed class PrometheusVectorSample
{
    public Dictionary<string, string>? Metric { get; set; }

    public JsonElement? Value { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(PrometheusQueryResponse))]
internal sealed partial class PrometheusJsonContext : JsonSerializerContext;
