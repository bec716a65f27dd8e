using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using VastHostAgent.Hosting;
using VastHostAgent.Metrics;
using VastHostAgent.Tests.Support;
using VastHostAgent.Vast;

namespace VastHostAgent.Tests.Vast;

/// <summary>One request the stub server saw.</summary>
public sealed record StubRequest(DateTimeOffset At, HttpMethod Method, string PathAndQuery, string? Authorization, string Body);

/// <summary>
/// The primary handler under the agent's real Vast HTTP pipeline (resilience, spacing, auth, metrics):
/// answers from a script and records every request with the fake clock's time.
/// </summary>
public sealed class StubVastServer(TimeProvider time) : HttpMessageHandler
{
    private readonly ConcurrentQueue<StubRequest> _requests = new();

    /// <summary>Decides the answer; default 404.</summary>
    public Func<HttpRequestMessage, string, CancellationToken, Task<HttpResponseMessage>> Respond { get; set; } =
        (_, _, _) => Task.FromResult(new HttpResponseMessage(HttpStatusCode.NotFound));

    public IReadOnlyList<StubRequest> Requests => [.. _requests];

    public static HttpResponseMessage Json(string json, HttpStatusCode status = HttpStatusCode.OK) =>
        new(status) { Content = new StringContent(json, Encoding.UTF8, "application/json") };

    public static HttpResponseMessage Text(string text, HttpStatusCode status) =>
        new(status) { Content = new StringContent(text, Encoding.UTF8, "text/plain") };

    public static string Fixture(string name) =>
        File.ReadAllText(Path.Combine(TestEnvironment.RepositoryRoot, "tests", "VastHostAgent.Tests", "Vast", "Fixtures", name));

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = request.Content is null ? "" : await request.Content.ReadAsStringAsync(cancellationToken);
        _requests.Enqueue(new StubRequest(time.GetUtcNow(), request.Method, request.RequestUri!.PathAndQuery, request.Headers.Authorization?.ToString(), body));
        var response = await Respond(request, body, cancellationToken);
        response.RequestMessage = request;
        return response;
    }
}

/// <summary>The agent's Vast client wired exactly as in the daemon, over a <see cref="StubVastServer"/> and a fake clock.</summary>
public sealed class VastTestClient : IAsyncDisposable
{
    public const string Key = "f00dfeedcafe0123456789abcdef0123456789abcdef0123456789abcdef0001";

    private readonly CallCounter _calls;

    private VastTestClient(ServiceProvider services, StubVastServer server, TimeProvider time, FakeLogCollector logs, CallCounter calls)
    {
        Services = services;
        Server = server;
        Clock = time;
        Logs = logs;
        _calls = calls;
    }

    public ServiceProvider Services { get; }

    public StubVastServer Server { get; }

    public TimeProvider Clock { get; }

    /// <summary>The fake clock (stub-server tests only).</summary>
    public FakeTimeProvider Time => (FakeTimeProvider)Clock;

    public FakeLogCollector Logs { get; }

    public IVastClient Client => Services.GetRequiredService<IVastClient>();

    /// <summary>
    /// Whether a Vast HTTP call is in flight (from its first handler to its answer: spacing, retries and the
    /// per-attempt timeout included). <see cref="FakeClock"/> gives such calls real time.
    /// </summary>
    public bool InFlight => _calls.Count > 0;

    /// <summary>
    /// A client over the scripted stub server and a fake clock; or, with <paramref name="baseUrl"/>, over the
    /// network (the emulator) with the real clock.
    /// </summary>
    public static VastTestClient Create(Dictionary<string, string?>? settings = null, Uri? baseUrl = null, string? apiKey = null, TimeProvider? clock = null)
    {
        var dir = TestEnvironment.NewTempDirectory("vastkey");
        var keyFile = Path.Combine(dir, "key");
        File.WriteAllText(keyFile, (apiKey ?? Key) + "\n");
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var values = new Dictionary<string, string?>
        {
            ["vast:enabled"] = "true",
            ["vast:baseUrl"] = baseUrl?.GetLeftPart(UriPartial.Authority) ?? "http://vast.test",
            ["vast:apiKeyFile"] = keyFile,
            ["vast:machineId"] = "67890",
            ["vast:maxBackoff"] = "00:00:10",
            ["docker:enabled"] = "false",
        };
        foreach (var (k, v) in settings ?? [])
        {
            values[k] = v;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        TimeProvider time = clock ?? (baseUrl is null
            ? new FakeTimeProvider(DateTimeOffset.Parse("2026-11-27T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture))
            : TimeProvider.System);
        var server = new StubVastServer(time);
        var collector = new FakeLogCollector();
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(time);
        services.AddLogging(l => l.SetMinimumLevel(LogLevel.Trace).AddProvider(new FakeLoggerProvider(collector)));
        services.AddAgent(configuration);
        var calls = new CallCounter(time is FakeTimeProvider fake ? FakeClock.Gate(fake) : new object());
        var http = services.AddHttpClient(VastClient.HttpClientName)
            .ConfigureAdditionalHttpMessageHandlers((handlers, _) => handlers.Insert(0, new CountingHandler(calls)));
        if (baseUrl is null)
        {
            http.ConfigurePrimaryHttpMessageHandler(() => server);
        }

        var provider = services.BuildServiceProvider();
        Assert.Empty(AgentConfiguration.Validate(configuration, services));
        return new VastTestClient(provider, server, time, collector, calls);
    }

    /// <summary>
    /// Runs a call to completion on the fake clock (<see cref="FakeClock"/>: spacing, back-off, timeouts), which runs
    /// at <paramref name="pace"/> (100 ms by default) per real millisecond while the call is in flight.
    /// </summary>
    public Task<T> RunAsync<T>(Func<IVastClient, Task<T>> call, TimeSpan? pace = null, TimeSpan? limit = null) =>
        Clock is FakeTimeProvider fake
            ? FakeClock.PumpAsync(call(Client), fake, pace ?? TimeSpan.FromMilliseconds(100), limit ?? TimeSpan.FromHours(1), () => InFlight)
            : call(Client);

    /// <summary>The exposition text the agent would serve now.</summary>
    public async Task<string> MetricsAsync() =>
        Encoding.UTF8.GetString((await Services.GetRequiredService<SnapshotExporter>().RenderAsync(default)).Span);

    public async ValueTask DisposeAsync() => await Services.DisposeAsync();

    /// <summary>Calls in flight; a call enters through the clock's gate (<see cref="FakeClock.Gate"/>).</summary>
    private sealed class CallCounter(object gate)
    {
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public void Enter()
        {
            lock (gate)
            {
                Interlocked.Increment(ref _count);
            }
        }

        public void Leave() => Interlocked.Decrement(ref _count);
    }

    /// <summary>The outermost handler of the Vast client: counts the calls in flight.</summary>
    private sealed class CountingHandler(CallCounter calls) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            calls.Enter();
            try
            {
                return await base.SendAsync(request, cancellationToken);
            }
            finally
            {
                calls.Leave();
            }
        }
    }
}
