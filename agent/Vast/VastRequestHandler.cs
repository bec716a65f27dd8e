using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace VastHostAgent.Vast;

/// <summary>
/// The innermost handler of the Vast HTTP client. Per endpoint it serialises calls and keeps the minimum
/// spacing (the published threshold, vast-api.md §1.6); after a 429 it backs that endpoint off
/// exponentially from the threshold, with jitter, up to <c>vast.maxBackoff</c> (the API sends no
/// Retry-After). It adds the Bearer header (the key never goes into a URL), applies the per-attempt
/// timeout on the TimeProvider, and records request metrics.
/// </summary>
internal sealed class VastRequestHandler(
    IOptions<VastOptions> options,
    VastApiKeyProvider keys,
    TimeProvider time,
    VastClientMetrics metrics,
    VastEndpointGates gates,
    ILogger<VastRequestHandler> logger) : DelegatingHandler
{
    public static readonly HttpRequestOptionsKey<VastEndpointInfo> EndpointKey = new("vast.endpoint");
    public static readonly HttpRequestOptionsKey<TimeSpan> BackoffKey = new("vast.backoff");

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (!request.Options.TryGetValue(EndpointKey, out var info))
        {
            throw new InvalidOperationException("Vast request without an endpoint");
        }

        var o = options.Value;
        var spacing = info.Spacing(o);
        var gate = gates.For(info);
        await gate.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Timers work in whole milliseconds on a coarse clock and may fire a few milliseconds before the
            // wall clock says the window opens: wait until it has really opened (a 429 for 2 ms otherwise).
            for (var wait = gate.NextAllowed - time.GetUtcNow(); wait > TimeSpan.Zero; wait = gate.NextAllowed - time.GetUtcNow())
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(wait.TotalMilliseconds) + 1), time, cancellationToken).ConfigureAwait(false);
            }

            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", keys.Get(o).Value);
            request.Headers.UserAgent.Clear();
            request.Headers.UserAgent.Add(new ProductInfoHeaderValue("vast-host-agent", Kernel.BuildInfo.Version));

            using var timeout = new CancellationTokenSource(o.RequestTimeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            var started = time.GetTimestamp();
            HttpResponseMessage response;
            try
            {
                response = await base.SendAsync(request, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                metrics.Record(info, "timeout", time.GetElapsedTime(started));
                gate.NextAllowed = time.GetUtcNow() + spacing;
                throw new TimeoutException(string.Create(CultureInfo.InvariantCulture, $"no answer from the Vast API ({info.Name}) within {o.RequestTimeout.TotalSeconds:0} s"));
            }
            catch (HttpRequestException)
            {
                metrics.Record(info, "transport_error", time.GetElapsedTime(started));
                gate.NextAllowed = time.GetUtcNow() + spacing;
                throw;
            }

            var status = (int)response.StatusCode;
            metrics.Record(info, StatusClass(status), time.GetElapsedTime(started));
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                gate.Level = Math.Min(gate.Level + 1, 30);
                var exponential = spacing.TotalSeconds * Math.Pow(2, gate.Level - 1) * (1 + (Random.Shared.NextDouble() * 0.25));
                var backoff = TimeSpan.FromSeconds(Math.Min(Math.Max(exponential, spacing.TotalSeconds), o.MaxBackoff.TotalSeconds));
                gate.NextAllowed = time.GetUtcNow() + backoff;
                request.Options.Set(BackoffKey, backoff);
                metrics.RateLimited(info);
                VastLog.RateLimited(logger, info.Name, backoff);
            }
            else
            {
                gate.Level = 0;
                gate.NextAllowed = time.GetUtcNow() + spacing;
            }

            return response;
        }
        finally
        {
            gate.Lock.Release();
        }
    }

    internal static string StatusClass(int status) => status switch
    {
        >= 200 and < 300 => "2xx",
        >= 300 and < 400 => "3xx",
        >= 400 and < 500 => "4xx",
        _ => "5xx",
    };

}

/// <summary>
/// Per-endpoint spacing state, shared by every handler instance (IHttpClientFactory recycles handlers;
/// the spacing and back-off must outlive them).
/// </summary>
public sealed class VastEndpointGates : IDisposable
{
    private readonly ConcurrentDictionary<string, Gate> _gates = new(StringComparer.Ordinal);

    /// <summary>When the next call to <paramref name="endpoint"/> may go out.</summary>
    public DateTimeOffset NextAllowed(VastEndpoint endpoint) =>
        _gates.TryGetValue(VastEndpointInfo.Of(endpoint).Name, out var gate) ? gate.NextAllowed : DateTimeOffset.MinValue;

    internal Gate For(VastEndpointInfo info) => _gates.GetOrAdd(info.Name, _ => new Gate());

    public void Dispose()
    {
        foreach (var gate in _gates.Values)
        {
            gate.Lock.Dispose();
        }
    }

    internal sealed class Gate
    {
        public SemaphoreSlim Lock { get; } = new(1, 1);

        public DateTimeOffset NextAllowed { get; set; } = DateTimeOffset.MinValue;

        public int Level { get; set; }
    }
}
