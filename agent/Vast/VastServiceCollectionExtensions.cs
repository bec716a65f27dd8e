using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using VastHostAgent.Kernel;

namespace VastHostAgent.Vast;

public static class VastServiceCollectionExtensions
{
    /// <summary>The Vast API client, its resilience pipeline and the machine poller: options section <c>vast</c>.</summary>
    public static IServiceCollection AddVast(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<VastOptions>().Bind(configuration.GetSection(VastOptions.SectionName), o => o.ErrorOnUnknownConfiguration = true);
        services.AddOptionsCheck(configuration, VastOptions.SectionName, VastOptionsJson.Default.VastOptions);
        services.AddSingleton<IValidateOptions<VastOptions>, VastOptionsValidator>();
        // Polly's own telemetry logs outcomes and exception texts verbatim; the agent logs retries, 429s and the
        // circuit breaker (VastLog), with text it controls.
        services.AddLogging(logging => logging.AddFilter("Polly", LogLevel.None));
        services.TryAddSingleton<VastApiKeyProvider>();
        services.TryAddSingleton<VastEndpointGates>();
        services.TryAddSingleton<VastClientMetrics>();
        services.TryAddSingleton<VastCircuitBreaker>();
        services.TryAddTransient<VastCircuitBreakerHandler>();
        services.TryAddTransient<VastRequestHandler>();

        var http = services.AddHttpClient(VastClient.HttpClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
                AutomaticDecompression = DecompressionMethods.All,
                ConnectTimeout = TimeSpan.FromSeconds(15),
            })
            .RemoveAllLoggers(); // request logging would show URLs and headers; the agent logs what matters itself
        // Handlers run outermost first: the read retry, then the circuit breaker (it sees every attempt and its
        // rejections are not retried), then spacing, auth, the per-attempt timeout and metrics.
        http.AddResilienceHandler("vast", ConfigurePipeline);
        http.AddHttpMessageHandler<VastCircuitBreakerHandler>();
        http.AddHttpMessageHandler<VastRequestHandler>();

        services.TryAddSingleton<IVastClient, VastClient>();
        services.TryAddSingleton<VastMachineLocator>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ISnapshotSource, VastMachineSource>());
        return services;
    }

    /// <summary>
    /// Outer resilience: reads (GETs and the offer search) are retried after 429, 502/503/504, timeouts and
    /// connection errors, with exponential back-off and jitter on the TimeProvider (the inner handler adds the
    /// per-endpoint spacing and 429 back-off). Mutations are never retried: the caller re-reads and reconciles.
    /// The circuit breaker is not here but the next handler down (<see cref="VastCircuitBreaker"/>): Polly's
    /// breaker only breaks on a failure ratio, not after consecutive failures.
    /// </summary>
    private static void ConfigurePipeline(ResiliencePipelineBuilder<HttpResponseMessage> builder, ResilienceHandlerContext context)
    {
        var services = context.ServiceProvider;
        var options = services.GetRequiredService<IOptions<VastOptions>>().Value;
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("VastHostAgent.Vast.Resilience");
        builder.TimeProvider = services.GetRequiredService<TimeProvider>();

        if (options.ReadRetries > 0)
        {
            builder.AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = options.ReadRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromSeconds(1),
                MaxDelay = options.MaxBackoff,
                ShouldRetryAfterHeader = false,
                ShouldHandle = args => ValueTask.FromResult(IsRead(args.Context) && IsRetryable(args.Outcome)),
                OnRetry = args =>
                {
                    var endpoint = args.Context.GetRequestMessage()?.Options.TryGetValue(VastRequestHandler.EndpointKey, out var info) == true ? info.Name : "?";
                    VastLog.Retrying(logger, endpoint, args.AttemptNumber + 1, Describe(args.Outcome));
                    return ValueTask.CompletedTask;
                },
            });
        }
    }

    private static bool IsRead(ResilienceContext context) =>
        context.GetRequestMessage()?.Options.TryGetValue(VastRequestHandler.EndpointKey, out var info) == true && !info.Mutation;

    /// <summary>A circuit-open rejection (<see cref="VastCircuitOpenException"/>) is not retryable: nothing was sent.</summary>
    private static bool IsRetryable(Outcome<HttpResponseMessage> outcome) => outcome switch
    {
        { Exception: HttpRequestException or TimeoutException } => true,
        { Result.StatusCode: HttpStatusCode.TooManyRequests or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout } => true,
        _ => false,
    };

    private static string Describe(Outcome<HttpResponseMessage> outcome) =>
        outcome.Exception is { } ex ? ex.GetType().Name : $"HTTP {(int)outcome.Result!.StatusCode}";
}
