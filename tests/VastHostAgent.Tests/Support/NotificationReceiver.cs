using System.Collections.Concurrent;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace VastHostAgent.Tests.Support;

/// <summary>One request Alertmanager sent: its path (with the query) and JSON body.</summary>
public sealed record Notification(string Path, JsonNode Body, DateTimeOffset At);

/// <summary>
/// A local stand-in for where Alertmanager notifies: Telegram's Bot API (<c>/telegram/bot{token}/sendMessage</c>,
/// answered as Telegram does), a Discord webhook (<c>/discord/...</c>) and a generic webhook (<c>/webhook...</c>).
/// Records every request.
/// </summary>
public sealed class NotificationReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<Notification> _received = new();
    private int _messageId;

    private NotificationReceiver(WebApplication app) => _app = app;

    public Uri BaseUrl { get; private set; } = null!;

    public IReadOnlyList<Notification> Received => [.. _received];

    public IReadOnlyList<Notification> Telegram => [.. _received.Where(n => n.Path.StartsWith("/telegram/", StringComparison.Ordinal))];

    public IReadOnlyList<Notification> Discord => [.. _received.Where(n => n.Path.StartsWith("/discord/", StringComparison.Ordinal))];

    public IReadOnlyList<Notification> Webhook => [.. _received.Where(n => n.Path.StartsWith("/webhook", StringComparison.Ordinal))];

    public static async Task<NotificationReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var receiver = new NotificationReceiver(app);
        app.Run(receiver.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        receiver.BaseUrl = new Uri(address.TrimEnd('/') + "/");
        return receiver;
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body);
        var text = await reader.ReadToEndAsync();
        var body = JsonNode.Parse(text.Length == 0 ? "{}" : text)!;
        var path = context.Request.Path.Value + context.Request.QueryString.Value;
        _received.Enqueue(new Notification(path, body, DateTimeOffset.UtcNow));
        context.Response.ContentType = "application/json";
        if (path.StartsWith("/telegram/", StringComparison.Ordinal))
        {
            // What the Bot API answers to sendMessage: the message sent.
            var id = Interlocked.Increment(ref _messageId);
            var chat = long.TryParse(body["chat_id"]?.ToString(), out var c) ? c : 0;
            var sent = new JsonObject
            {
                ["ok"] = true,
                ["result"] = new JsonObject
                {
                    ["message_id"] = id,
                    ["date"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                    ["chat"] = new JsonObject { ["id"] = chat, ["type"] = "supergroup" },
                    ["text"] = (string?)body["text"],
                },
            };
            await context.Response.WriteAsync(sent.ToJsonString());
            return;
        }

        if (path.StartsWith("/discord/", StringComparison.Ordinal))
        {
            context.Response.StatusCode = StatusCodes.Status204NoContent;
            return;
        }

        await context.Response.WriteAsync("{}");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
