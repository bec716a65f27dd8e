using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using VastHostAgent.Kernel;

namespace VastHostAgent.Metrics;

/// <summary>HTTP endpoints: <c>/metrics</c> and <c>/healthz</c>.</summary>
public static class MetricsEndpoints
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>Maps the endpoints with plain request delegates (no reflection, no code generation: NativeAOT-safe).</summary>
    public static IEndpointRouteBuilder MapAgentEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/metrics", ServeMetricsAsync);
        app.MapGet("/healthz", ServeHealthAsync);
        return app;
    }

    /// <summary>
    /// Listens on <paramref name="endpoint"/>: plain HTTP/1.1, or TLS (HTTP/1.1 and, unless the web configuration turns
    /// it off, HTTP/2) with options taken per connection from <see cref="EndpointSecurity"/>, so that a renewed
    /// certificate is served from the next handshake on.
    /// </summary>
    public static void ListenAgentEndpoint(this KestrelServerOptions kestrel, IPEndPoint endpoint)
    {
        var security = kestrel.ApplicationServices.GetRequiredService<EndpointSecurity>();
        kestrel.Listen(endpoint, listen =>
        {
            if (!security.UsesTls)
            {
                listen.Protocols = HttpProtocols.Http1;
                return;
            }

            listen.Protocols = security.Http2 ? HttpProtocols.Http1AndHttp2 : HttpProtocols.Http1;
            listen.UseHttps(new TlsHandshakeCallbackOptions
            {
                OnConnection = _ => ValueTask.FromResult(security.ServerOptions()),
                HandshakeTimeout = TimeSpan.FromSeconds(10),
            });
        });
    }

    /// <summary>The web configuration's headers on every answer, and basic auth before any endpoint runs.</summary>
    public static IApplicationBuilder UseEndpointSecurity(this IApplicationBuilder app)
    {
        var security = app.ApplicationServices.GetRequiredService<EndpointSecurity>();
        return app.Use((context, next) => security.Admit(context) ? next(context) : Task.CompletedTask);
    }

    /// <summary>The scheme the endpoint speaks, for the start-up line.</summary>
    public static string Scheme(IServiceProvider services) => services.GetRequiredService<EndpointSecurity>().UsesTls ? "https" : "http";

    private static async Task ServeMetricsAsync(HttpContext context)
    {
        var exporter = context.RequestServices.GetRequiredService<SnapshotExporter>();
        var body = await exporter.RenderAsync(context.RequestAborted).ConfigureAwait(false);
        context.Response.ContentType = ContentType;
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body, context.RequestAborted).ConfigureAwait(false);
    }

    private static Task ServeHealthAsync(HttpContext context)
    {
        var store = context.RequestServices.GetRequiredService<SnapshotStore>();
        var sampling = context.RequestServices.GetRequiredService<SamplingService>();
        var time = context.RequestServices.GetRequiredService<TimeProvider>();
        var report = Health.Evaluate(store.Current, sampling.EnabledCollectors, time.GetUtcNow());
        context.Response.StatusCode = report.Healthy ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(report.Text, context.RequestAborted);
    }

}

/// <summary>Health of the samplers: healthy while every enabled collector succeeded recently.</summary>
public sealed record Health(bool Healthy, string Text)
{
    public static Health Evaluate(HostSnapshot snapshot, IEnumerable<string> enabledCollectors, DateTimeOffset now)
    {
        var lines = new List<string>();
        var healthy = true;
        foreach (var name in enabledCollectors)
        {
            if (!snapshot.Collectors.TryGetValue(name, out var status))
            {
                healthy = false;
                lines.Add($"{name}: no run yet");
                continue;
            }

            if (status.IsHealthy(now))
            {
                lines.Add($"{name}: ok");
                continue;
            }

            healthy = false;
            var since = status.LastSuccess is { } s ? $"last success {(now - s).TotalSeconds:0}s ago" : "never succeeded";
            lines.Add($"{name}: failing ({since}): {status.Problem ?? "stale"}");
        }

        foreach (var loop in LoopHealth.Describe(snapshot))
        {
            healthy = false;
            lines.Add(loop);
        }

        return new Health(healthy, (healthy ? "ok\n" : "unhealthy\n") + string.Join('\n', lines) + "\n");
    }
}
