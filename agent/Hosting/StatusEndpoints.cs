using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using VastHostAgent.Kernel;

namespace VastHostAgent.Hosting;

/// <summary><c>/api/status</c> (what <c>vast-host-agent status</c> reads from the daemon) and a landing page.</summary>
public static class StatusEndpoints
{
    /// <summary>Maps the endpoints with plain request delegates (NativeAOT-safe).</summary>
    public static IEndpointRouteBuilder MapStatusEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/status", ServeStatusAsync);
        app.MapGet("/", ServeLandingPageAsync);
        return app;
    }

    private static Task ServeStatusAsync(HttpContext context)
    {
        var store = context.RequestServices.GetRequiredService<SnapshotStore>();
        var time = context.RequestServices.GetRequiredService<TimeProvider>();
        var now = time.GetUtcNow();
        var fleet = context.RequestServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<AgentOptions>>().Value.Role == AgentRole.Controller
            ? context.RequestServices.GetService<IFleetStatusSource>()
            : null;
        var report = StatusReport.From(store.Current, "running daemon", now) with
        {
            // A controller keeps windows per machine (maint list); its own state directory has none.
            Maintenance = fleet is null ? Maintenance.MaintenanceStatus.TryRead(context.RequestServices, now) : null,
            Fleet = fleet?.Current,
        };
        context.Response.ContentType = "application/json; charset=utf-8";
        return System.Text.Json.JsonSerializer.SerializeAsync(context.Response.Body, report, AgentJsonContext.Default.StatusReport, context.RequestAborted);
    }

    private static Task ServeLandingPageAsync(HttpContext context)
    {
        context.Response.ContentType = "text/html; charset=utf-8";
        return context.Response.WriteAsync(
            $"""
            <html><head><title>vast-host-agent</title></head><body>
            <h1>vast-host-agent {BuildInfo.Display}</h1>
            <p><a href="/metrics">/metrics</a> (Prometheus) &middot; <a href="/healthz">/healthz</a> &middot; <a href="/api/status">/api/status</a></p>
            </body></html>
            """,
            context.RequestAborted);
    }
}
