using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>
/// The HTTP face of the emulated API. Order of checks for a recognised route:
/// injected fault → auth (401/403/404 variants) → rate limit (429) → JSON body → endpoint logic. Every request is logged.
/// </summary>
internal sealed class VastHttpHandler(EmulatorState state, EmulatorOptions options, CancellationToken stopping)
{
    private static readonly TimeSpan TimeoutFaultLimit = TimeSpan.FromMinutes(5);

    public async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.Value ?? "/";
        var method = request.Method.ToUpperInvariant();
        var time = state.Now;
        var query = ReadQuery(request);
        var key = ReadKey(request);
        var auth = key is null ? null : state.Authenticate(key);
        var log = new RequestLogEntry(time, method, path, FormatQuery(query), null, 0, auth?.UserId, false, false, false, false);

        var route = Router.Match(path);
        if (route is null)
        {
            await FinishAsync(context, log, 404, EmulatorState.Error("not_found", "Not found")).ConfigureAwait(false);
            return;
        }

        log = log with { Endpoint = route.Endpoint, Mutation = Endpoints.IsMutation(route.Endpoint) };
        if (!route.Methods.Contains(method))
        {
            await FinishAsync(context, log, 405, EmulatorState.Error("method_not_allowed", "The method is not allowed for the requested URL.")).ConfigureAwait(false);
            return;
        }

        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, stopping);
        var bodyText = await ReadBodyAsync(request, linked.Token).ConfigureAwait(false);

        if (state.TakeFault(route.Endpoint) is { } fault)
        {
            if (!fault.PassThrough)
            {
                await FaultAsync(context, log with { Faulted = true }, fault, linked.Token).ConfigureAwait(false);
                return;
            }

            // Like a real server, the request is processed even when the client has given up waiting: the
            // effect is applied and only the answer is lost (a "lost response after a successful mutation").
            if (!await DelayAsync(fault.DelayMs, stopping).ConfigureAwait(false))
            {
                Abandon(context, log with { Faulted = true });
                return;
            }
        }

        if (route.Endpoint == Endpoints.Bundles && state.RollBundlesFailure(out var gatewayStatus))
        {
            await FinishTextAsync(context, log, gatewayStatus, "text/html", GatewayPage(gatewayStatus)).ConfigureAwait(false);
            return;
        }

        if (key is null && !route.AllowsAnonymous)
        {
            await FinishAsync(context, log, 403, EmulatorState.LoginRequired()).ConfigureAwait(false);
            return;
        }

        if (key is not null && auth is null)
        {
            if (route.BadKeyIsNotFound)
            {
                await FinishAsync(context, log, 404, EmulatorState.Error("auth_error", "Invalid user key")).ConfigureAwait(false);
            }
            else
            {
                await FinishAsync(context, log, 401, new JsonObject { ["msg"] = "Invalid user key" }).ConfigureAwait(false);
            }

            return;
        }

        var identity = auth?.Identity ?? "anonymous:" + context.Connection.RemoteIpAddress;
        if (state.CheckRate(route.Endpoint, identity) is { } limited)
        {
            await TooFrequentAsync(context, log with { RateLimited = true }, limited.Threshold, limited.Json).ConfigureAwait(false);
            return;
        }

        JsonNode? body;
        try
        {
            body = ParseBody(method, route, bodyText, query);
        }
        catch (JsonException)
        {
            await FinishAsync(context, log, 400, new JsonObject { ["error"] = "invalid_request", ["msg"] = "Invalid json body" }).ConfigureAwait(false);
            return;
        }

        var result = state.Execute(route.Endpoint, new ApiRequest(auth?.UserId, route.MachineId, route.UserSegment, query, body) { Key = auth is null ? null : key });
        await FinishAsync(context, log with { Applied = result.Applied }, result.Status, result.Body).ConfigureAwait(false);
    }

    /// <summary>PUT/POST bodies must be JSON (empty = {}); GET and DELETE bodies are tolerated and ignored; GET bundles reads ?q=.</summary>
    private static JsonNode? ParseBody(string method, RouteMatch route, string bodyText, Dictionary<string, string> query)
    {
        if (route.Endpoint == Endpoints.Bundles && method == "GET")
        {
            return query.TryGetValue("q", out var q) && !string.IsNullOrWhiteSpace(q) ? JsonNode.Parse(q) : new JsonObject();
        }

        if (method is "GET" or "DELETE")
        {
            return null;
        }

        return string.IsNullOrWhiteSpace(bodyText) ? new JsonObject() : JsonNode.Parse(bodyText);
    }

    private async Task FaultAsync(HttpContext context, RequestLogEntry log, FaultSpec fault, CancellationToken cancellationToken)
    {
        if (!await DelayAsync(fault.DelayMs, cancellationToken).ConfigureAwait(false))
        {
            Abandon(context, log);
            return;
        }

        if (fault.Timeout)
        {
            if (!await DelayAsync((int)TimeoutFaultLimit.TotalMilliseconds, cancellationToken).ConfigureAwait(false))
            {
                Abandon(context, log);
                return;
            }

            await FinishAsync(context, log, 504, EmulatorState.Error("gateway_timeout", "Emulated timeout")).ConfigureAwait(false);
            return;
        }

        var status = fault.Status ?? (fault.Malformed ? 200 : 503);
        if (fault.Malformed)
        {
            await FinishTextAsync(context, log, status, "application/json", TruncatedBody(log.Endpoint)).ConfigureAwait(false);
        }
        else if (status == 429)
        {
            var (threshold, json) = state.TooFrequentShape(log.Endpoint!);
            await TooFrequentAsync(context, log, threshold, json).ConfigureAwait(false);
        }
        else
        {
            await FinishAsync(context, log, status, EmulatorState.Error("emulated_fault", string.Create(CultureInfo.InvariantCulture, $"Emulated HTTP {status}"))).ConfigureAwait(false);
        }
    }

    /// <summary>429 exactly as documented: plain text or {"detail": ...}, never a Retry-After header.</summary>
    private Task TooFrequentAsync(HttpContext context, RequestLogEntry log, double threshold, bool json)
    {
        var x = Js.Format(Js.Round(threshold, 6));
        return json
            ? FinishAsync(context, log, 429, new JsonObject { ["detail"] = $"API requests too frequent endpoint threshold={x}" })
            : FinishTextAsync(context, log, 429, "text/plain; charset=utf-8", $"API requests too frequent: endpoint threshold={x}");
    }

    private static async Task<bool> DelayAsync(int milliseconds, CancellationToken cancellationToken)
    {
        if (milliseconds <= 0)
        {
            return true;
        }

        try
        {
            // Real time on purpose: HTTP clients time out on the wall clock, not on the emulator's TimeProvider.
            await Task.Delay(milliseconds, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>The client gave up (or the emulator stops): log 499 and drop the connection.</summary>
    private void Abandon(HttpContext context, RequestLogEntry log)
    {
        Complete(log with { Status = 499 });
        context.Abort();
    }

    private Task FinishAsync(HttpContext context, RequestLogEntry log, int status, JsonNode? body) =>
        FinishTextAsync(context, log, status, "application/json", Js.Write(body));

    private async Task FinishTextAsync(HttpContext context, RequestLogEntry log, int status, string contentType, string body)
    {
        Complete(log with { Status = status });
        var bytes = Encoding.UTF8.GetBytes(body);
        context.Response.StatusCode = status;
        context.Response.ContentType = contentType;
        context.Response.ContentLength = bytes.Length;
        try
        {
            await context.Response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The client went away while we answered.
        }
    }

    private void Complete(RequestLogEntry log)
    {
        state.Record(log);
        options.Log?.Invoke(string.Create(
            CultureInfo.InvariantCulture,
            $"{log.Method} {log.Path} -> {log.Status} {log.Endpoint ?? "-"} user={log.Identity?.ToString(CultureInfo.InvariantCulture) ?? "-"}{(log.RateLimited ? " rate-limited" : "")}{(log.Faulted ? " fault" : "")}"));
    }

    /// <summary>Bearer header first, then ?api_key=. An empty value counts as no credentials.</summary>
    private static string? ReadKey(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString().Trim();
        if (header.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            header = ""; // "Authorization: Bearer " with nothing after it: no key, as the real API answers it
        }

        if (header.Length > 0)
        {
            var value = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : header;
            if (value.Length > 0)
            {
                return value;
            }
        }

        var fromQuery = request.Query["api_key"].ToString().Trim();
        return fromQuery.Length > 0 ? fromQuery : null;
    }

    /// <summary>First value of each query parameter, api_key excluded (it must never reach a log or a handler).</summary>
    private static Dictionary<string, string> ReadQuery(HttpRequest request)
    {
        var query = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, values) in request.Query)
        {
            if (name != "api_key")
            {
                query[name] = values.Count > 0 ? values[0] ?? "" : "";
            }
        }

        return query;
    }

    private static string FormatQuery(Dictionary<string, string> query) =>
        string.Join('&', query.Select(kv => kv.Key + "=" + kv.Value));

    private static async Task<string> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        try
        {
            using var reader = new StreamReader(request.Body, Encoding.UTF8);
            return await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return "";
        }
    }

    private static string TruncatedBody(string? endpoint) => endpoint switch
    {
        Endpoints.ShowMachines => "{\"machines\": [{\"id\": 48211, \"machine_id\": 48211, \"hostname\": \"rig-",
        Endpoints.ShowMachine => "[{\"id\": 48211, \"machine_id\": 48211, \"gpu_occ",
        Endpoints.Bundles => "{\"offers\": [{\"id\": 12345678, \"ask_contract_id\": 12345678, \"gpu_name\": \"RTX 40",
        Endpoints.Maintenances or Endpoints.Reports => "[{\"machine_id\": 48211, \"start_ti",
        Endpoints.Earnings => "{\"summary\": {\"total_gpu\": 12.5, \"total_stor\": ",
        Endpoints.GpuMetrics => "{\"success\": true, \"gpus\": [{\"gpu_name\": \"RTX 4090\", \"total\": 1",
        _ => "{\"success\": true, \"msg\": \"",
    };

    private static string GatewayPage(int status) => status == 502
        ? "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        : "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
}
