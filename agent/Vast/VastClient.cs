using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Options;

namespace VastHostAgent.Vast;

/// <summary>Typed calls to the Vast host API (vast-api.md §2). Every failure is a <see cref="VastApiException"/>.</summary>
public interface IVastClient
{
    Task<IReadOnlyList<VastMachine>> GetMachinesAsync(CancellationToken cancellationToken);

    /// <summary>One machine: the API answers a bare one-element array.</summary>
    Task<VastMachine> GetMachineAsync(long machineId, CancellationToken cancellationToken);

    /// <summary>Lists or updates the listing; every field is sent (vast-api.md §2.3).</summary>
    Task<VastResult> ListMachineAsync(CreateAsksRequest request, CancellationToken cancellationToken);

    Task<VastResult> UnlistMachineAsync(long machineId, CancellationToken cancellationToken);

    Task<VastResult> SetMinBidAsync(long machineId, double pricePerGpuHour, CancellationToken cancellationToken);

    Task<VastResult> SetDefaultJobAsync(CreateBidsRequest request, CancellationToken cancellationToken);

    Task<VastResult> RemoveDefaultJobAsync(long machineId, CancellationToken cancellationToken);

    Task<VastResult> ScheduleMaintenanceAsync(long machineId, DateTimeOffset start, TimeSpan duration, string category, CancellationToken cancellationToken);

    Task<VastResult> CancelMaintenanceAsync(long machineId, CancellationToken cancellationToken);

    Task<IReadOnlyList<VastMaintenance>> GetMaintenancesAsync(IReadOnlyList<long> machineIds, CancellationToken cancellationToken);

    Task<IReadOnlyList<VastReport>> GetReportsAsync(long machineId, CancellationToken cancellationToken);

    Task<VastResult> CleanupAsync(long machineId, CancellationToken cancellationToken);

    /// <summary>Earnings between two days (days since the Unix epoch, fractional), for one machine or all.</summary>
    Task<VastEarnings> GetEarningsAsync(double startDay, double endDay, long? machineId, CancellationToken cancellationToken);

    Task<VastUser> GetCurrentUserAsync(CancellationToken cancellationToken);

    /// <summary>Offer search; duplicate offer ids are collapsed keeping the highest score.</summary>
    Task<IReadOnlyList<VastOffer>> SearchOffersAsync(OfferQuery query, CancellationToken cancellationToken);

    /// <summary>Host market metrics per GPU model (price percentiles per GPU-hour).</summary>
    Task<IReadOnlyList<VastGpuMetric>> GetGpuMetricsAsync(string verified, string hostingType, string numGpus, CancellationToken cancellationToken);
}

/// <summary>The <see cref="IVastClient"/> over the resilient "vast" HttpClient.</summary>
internal sealed class VastClient(IHttpClientFactory httpClients, IOptions<VastOptions> options, VastApiKeyProvider keys) : IVastClient
{
    public const string HttpClientName = "vast";

    public async Task<IReadOnlyList<VastMachine>> GetMachinesAsync(CancellationToken cancellationToken) =>
        (await SendAsync(VastEndpoint.ShowMachines, HttpMethod.Get, "machines/?owner=me", null, VastJsonContext.Default.VastMachinesResponse, cancellationToken).ConfigureAwait(false))
        .Machines ?? [];

    public async Task<VastMachine> GetMachineAsync(long machineId, CancellationToken cancellationToken)
    {
        var rows = await SendAsync(VastEndpoint.ShowMachine, HttpMethod.Get, $"machines/{Id(machineId)}/?owner=me", null, VastJsonContext.Default.ListVastMachine, cancellationToken).ConfigureAwait(false);
        return rows.Count == 1
            ? rows[0]
            : throw new VastApiException(VastEndpoint.ShowMachine, rows.Count == 0 ? VastFailure.Rejected : VastFailure.Malformed, 200,
                $"Vast API show_machine: expected one machine {Id(machineId)}, got {rows.Count}");
    }

    public Task<VastResult> ListMachineAsync(CreateAsksRequest request, CancellationToken cancellationToken) =>
        MutateAsync(VastEndpoint.CreateAsks, HttpMethod.Put, "machines/create_asks/", Json(request, VastJsonContext.Default.CreateAsksRequest), cancellationToken);

    public Task<VastResult> UnlistMachineAsync(long machineId, CancellationToken cancellationToken) =>
        MutateAsync(VastEndpoint.Unlist, HttpMethod.Delete, $"machines/{Id(machineId)}/asks/", "{}", cancellationToken);

    public Task<VastResult> SetMinBidAsync(long machineId, double pricePerGpuHour, CancellationToken cancellationToken) =>
        MutateAsync(VastEndpoint.MinBid, HttpMethod.Put, $"machines/{Id(machineId)}/minbid/",
            Json(new MinBidRequest("me", pricePerGpuHour), VastJsonContext.Default.MinBidRequest), cancellationToken);

    public Task<VastResult> SetDefaultJobAsync(CreateBidsRequest request, CancellationToken cancellationToken) =>
        MutateAsync(VastEndpoint.CreateBids, HttpMethod.Put, "machines/create_bids/", Json(request, VastJsonContext.Default.CreateBidsRequest), cancellationToken);

    public Task<VastResult> RemoveDefaultJobAsync(long machineId, CancellationToken cancellationToken) =>
        MutateAsync(VastEndpoint.RemoveDefaultJob, HttpMethod.Delete, $"machines/{Id(machineId)}/defjob/", "{}", cancellationToken);

    public Task<VastResult> ScheduleMaintenanceAsync(long machineId, DateTimeOffset start, TimeSpan duration, string category, CancellationToken cancellationToken) =>
        MutateAsync(VastEndpoint.ScheduleMaintenance, HttpMethod.Put, $"machines/{Id(machineId)}/dnotify/",
            Json(new ScheduleMaintenanceRequest("me", start.ToUnixTimeMilliseconds() / 1000.0, duration.TotalHours, category), VastJsonContext.Default.ScheduleMaintenanceRequest),
            cancellationToken);

    public Task<VastResult> CancelMaintenanceAsync(long machineId, CancellationToken cancellationToken) =>
        MutateAsync(VastEndpoint.CancelMaintenance, HttpMethod.Put, $"machines/{Id(machineId)}/cancel_maint/",
            Json(new CancelMaintenanceRequest("me", machineId), VastJsonContext.Default.CancelMaintenanceRequest), cancellationToken);

    public async Task<IReadOnlyList<VastMaintenance>> GetMaintenancesAsync(IReadOnlyList<long> machineIds, CancellationToken cancellationToken)
    {
        // The CLI encodes the list as JSON, with Python's ", " separator: machine_ids=[101, 102].
        var ids = Uri.EscapeDataString("[" + string.Join(", ", machineIds.Select(Id)) + "]");
        return await SendAsync(VastEndpoint.Maintenances, HttpMethod.Get, $"machines/maintenances/?owner=me&machine_ids={ids}", null, VastJsonContext.Default.ListVastMaintenance, cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<VastReport>> GetReportsAsync(long machineId, CancellationToken cancellationToken) =>
        await SendAsync(VastEndpoint.Reports, HttpMethod.Get, $"machines/{Id(machineId)}/reports/", null, VastJsonContext.Default.ListVastReport, cancellationToken).ConfigureAwait(false);

    public Task<VastResult> CleanupAsync(long machineId, CancellationToken cancellationToken) =>
        MutateAsync(VastEndpoint.Cleanup, HttpMethod.Put, $"machines/{Id(machineId)}/cleanup/", "{}", cancellationToken);

    public Task<VastEarnings> GetEarningsAsync(double startDay, double endDay, long? machineId, CancellationToken cancellationToken)
    {
        var query = string.Create(CultureInfo.InvariantCulture, $"owner=me&sday={startDay:0.######}&eday={endDay:0.######}&machid={(machineId is { } m ? Id(m) : "null")}");
        return SendAsync(VastEndpoint.Earnings, HttpMethod.Get, "users/me/machine-earnings/?" + query, null, VastJsonContext.Default.VastEarnings, cancellationToken);
    }

    public Task<VastUser> GetCurrentUserAsync(CancellationToken cancellationToken) =>
        SendAsync(VastEndpoint.CurrentUser, HttpMethod.Get, "users/current/", null, VastJsonContext.Default.VastUser, cancellationToken);

    public async Task<IReadOnlyList<VastOffer>> SearchOffersAsync(OfferQuery query, CancellationToken cancellationToken)
    {
        var response = await SendAsync(VastEndpoint.Bundles, HttpMethod.Post, "bundles/", query.ToJson(), VastJsonContext.Default.VastOffersResponse, cancellationToken).ConfigureAwait(false);
        return [.. (response.Offers ?? [])
            .Where(o => o.Id is not null)
            .GroupBy(o => o.Id!.Value)
            .Select(g => g.OrderByDescending(o => o.Score ?? double.MinValue).First())];
    }

    public async Task<IReadOnlyList<VastGpuMetric>> GetGpuMetricsAsync(string verified, string hostingType, string numGpus, CancellationToken cancellationToken)
    {
        var query = $"verified={Uri.EscapeDataString(verified)}&hosting_type={Uri.EscapeDataString(hostingType)}&num_gpus={Uri.EscapeDataString(numGpus)}";
        var response = await SendAsync(VastEndpoint.GpuMetrics, HttpMethod.Get, "metrics/gpu/current/?" + query, null, VastJsonContext.Default.VastGpuMetricsResponse, cancellationToken).ConfigureAwait(false);
        return response.Gpus ?? [];
    }

    private async Task<VastResult> MutateAsync(VastEndpoint endpoint, HttpMethod method, string path, string body, CancellationToken cancellationToken)
    {
        var result = await SendAsync(endpoint, method, path, body, VastJsonContext.Default.VastResult, cancellationToken).ConfigureAwait(false);
        if (result.Success == false)
        {
            throw new VastApiException(endpoint, VastFailure.Business, 200,
                $"Vast API {VastEndpointInfo.Of(endpoint).Name} refused: {Clean(result.Text ?? "success: false")}");
        }

        return result;
    }

    private async Task<T> SendAsync<T>(VastEndpoint endpoint, HttpMethod method, string path, string? body, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        var info = VastEndpointInfo.Of(endpoint);
        var o = options.Value;
        using var request = new HttpRequestMessage(method, new Uri(new Uri(o.BaseUrl.TrimEnd('/') + "/api/v0/"), path));
        request.Options.Set(VastRequestHandler.EndpointKey, info);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        HttpResponseMessage response;
        try
        {
            response = await httpClients.CreateClient(HttpClientName).SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        }
        catch (VastCircuitOpenException)
        {
            throw new VastApiException(endpoint, VastFailure.CircuitOpen, null, $"Vast API {info.Name}: not attempted, the circuit breaker is open after repeated failures");
        }
        catch (TimeoutException ex)
        {
            throw info.Mutation
                ? new VastApiException(endpoint, VastFailure.OutcomeUnknown, null, $"{ex.Message}; the change may or may not have been applied")
                : new VastApiException(endpoint, VastFailure.Unavailable, null, ex.Message);
        }
        catch (HttpRequestException ex)
        {
            var notSent = ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError;
            var text = $"Vast API {info.Name}: cannot reach {request.RequestUri!.Authority}: {Clean(ex.Message)} ({ex.HttpRequestError})";
            throw info.Mutation && !notSent
                ? new VastApiException(endpoint, VastFailure.OutcomeUnknown, null, text + "; the change may or may not have been applied")
                : new VastApiException(endpoint, VastFailure.Unavailable, null, text);
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
            {
                try
                {
                    return JsonSerializer.Deserialize(text, type)
                        ?? throw new VastApiException(endpoint, VastFailure.Malformed, status, $"Vast API {info.Name}: empty body");
                }
                catch (JsonException ex)
                {
                    throw new VastApiException(endpoint, VastFailure.Malformed, status,
                        $"Vast API {info.Name}: answer is not the documented JSON ({Clean(ex.Message.Split(" Path:")[0])})");
                }
            }

            var message = Clean(ErrorText(text));
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                response.RequestMessage!.Options.TryGetValue(VastRequestHandler.BackoffKey, out var backoff);
                throw new VastApiException(endpoint, VastFailure.RateLimited, status, $"Vast API {info.Name}: 429 too many requests ({message})", backoff);
            }

            var failure = status switch
            {
                401 or 403 => VastFailure.Authentication,
                404 when message.Contains("auth_error", StringComparison.Ordinal) || message.Contains("user key", StringComparison.OrdinalIgnoreCase) => VastFailure.Authentication,
                >= 500 => VastFailure.Server,
                _ => VastFailure.Rejected,
            };
            throw new VastApiException(endpoint, failure, status, $"Vast API {info.Name}: HTTP {status}: {message}");
        }
    }

    /// <summary>Error bodies: JSON with msg/message/detail/error, or plain text.</summary>
    private static string ErrorText(string body)
    {
        try
        {
            var result = JsonSerializer.Deserialize(body, VastJsonContext.Default.VastResult);
            if (result?.Text is { } text)
            {
                return result.Error is { } code && code != text ? $"{code}: {text}" : text;
            }
        }
        catch (JsonException)
        {
            // plain text
        }

        return body;
    }

    /// <summary>Outside text in our messages: one line, bounded, and scrubbed of the API key.</summary>
    private string Clean(string text)
    {
        var oneLine = text.ReplaceLineEndings(" ").Trim();
        if (oneLine.Length > 200)
        {
            oneLine = oneLine[..200] + "…";
        }

        return keys.Get(options.Value).Redact(oneLine);
    }

    private static string Json<T>(T value, JsonTypeInfo<T> type) => JsonSerializer.Serialize(value, type);

    private static string Id(long id) => id.ToString(CultureInfo.InvariantCulture);
}
