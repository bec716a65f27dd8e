using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using VastHostAgent.Fleet;
using VastHostAgent.Kernel;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Fleet;

/// <summary>The controller's Prometheus rig health source over a stub HTTP handler: every bad answer is a down report, a good one maps to the right rigs.</summary>
public sealed class PrometheusRigHealthSourceTests
{
    private const double Now = 1_800_000_000;

    /// <summary>Answers each query (its PromQL text) through a function; records the requests.</summary>
    private sealed class StubHandler(Func<string, CancellationToken, Task<HttpResponseMessage>> answer) : HttpMessageHandler
    {
        public ConcurrentQueue<HttpRequestMessage> Requests { get; } = new();

        public ConcurrentQueue<string> Queries { get; } = new();

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Requests.Enqueue(request);
            var query = request.RequestUri!.Query;
            var promql = Uri.UnescapeDataString(query[(query.IndexOf("query=", StringComparison.Ordinal) + "query=".Length)..]);
            Queries.Enqueue(promql);
            return answer(promql, cancellationToken);
        }
    }

    private static HttpResponseMessage Json(string body, HttpStatusCode code = HttpStatusCode.OK) =>
        new(code) { Content = new StringContent(body, Encoding.UTF8, "application/json") };

    private static string Vector(params string[] samples) =>
        """{"status":"success","data":{"resultType":"vector","result":[""" + string.Join(",", samples) + "]}}";

    private static string Sample(string value, params (string Label, string Value)[] labels) =>
        "{\"metric\":{" + string.Join(",", labels.Select(l => $"\"{l.Label}\":\"{l.Value}\""))
        + "},\"value\":[" + Now.ToString(CultureInfo.InvariantCulture) + ",\"" + value + "\"]}";

    private static (PrometheusRigHealthSource Source, StubHandler Handler, FakeLogger<PrometheusRigHealthSource> Logger) Create(
        Func<string, CancellationToken, Task<HttpResponseMessage>> answer, PrometheusOptions? options = null, TimeProvider? time = null)
    {
        var handler = new StubHandler(answer);
        var logger = new FakeLogger<PrometheusRigHealthSource>();
        var fleet = new FleetOptions { Prometheus = options ?? new PrometheusOptions { Url = "http://prometheus.test:9090" } };
        return (new PrometheusRigHealthSource(new HttpClient(handler), Options.Create(fleet), time ?? new FakeTimeProvider(), logger), handler, logger);
    }

    private static Func<string, CancellationToken, Task<HttpResponseMessage>> Always(Func<HttpResponseMessage> response) =>
        (_, _) => Task.FromResult(response());

    /// <summary>
    /// A fleet of three: rig-a up with a lost GPU, an XID, uncorrectable ECC errors, Docker down and its disk;
    /// rig-b's agent not answering; rig-c last scraped ten minutes ago.
    /// </summary>
    private static Task<HttpResponseMessage> FleetAnswer(string promql, CancellationToken cancellationToken) =>
        FleetAnswer(promql, rigCAge: 600);

    private static Task<HttpResponseMessage> FleetAnswer(string promql, double rigCAge)
    {
        var h = promql.Contains("group_left(machine_id)", StringComparison.Ordinal) ? "machine_id" : "hostname";
        string A(string a) => h == "hostname" ? a : a switch { "rig-a" => "101", "rig-b" => "102", _ => "103" };
        var body =
            promql.Contains("timestamp(up", StringComparison.Ordinal) ? Vector(
                Sample((Now - 4).ToString(CultureInfo.InvariantCulture), (h, A("rig-a"))),
                Sample((Now - 3).ToString(CultureInfo.InvariantCulture), (h, A("rig-b"))),
                Sample((Now - rigCAge).ToString(CultureInfo.InvariantCulture), (h, A("rig-c"))),
                Sample(Now.ToString(CultureInfo.InvariantCulture), (h, ""))) // a target whose rig info lacks the label: ignored
            : promql.Contains("\"component\"", StringComparison.Ordinal) ? Vector(
                Sample("1", (h, A("rig-a")), ("component", "nvml")),
                Sample("0", (h, A("rig-a")), ("component", "docker")),
                Sample("0", (h, A("rig-c")), ("component", "nvml")))
            : promql.Contains("\"quantity\"", StringComparison.Ordinal) ? Vector(
                Sample("1000", (h, A("rig-a")), ("path", "/var/lib/docker"), ("quantity", "available")),
                Sample("4000", (h, A("rig-a")), ("path", "/var/lib/docker"), ("quantity", "total")))
            : promql.Contains("vasthost_gpu_up", StringComparison.Ordinal) ? Vector(Sample("0", (h, A("rig-a")), ("gpu", "1")))
            : promql.Contains("vasthost_gpu_xid_last_timestamp_seconds", StringComparison.Ordinal) ? Vector(
                Sample((Now - 30).ToString(CultureInfo.InvariantCulture), (h, A("rig-a")), ("gpu", "0"), ("xid", "79")),
                Sample("NaN", (h, A("rig-a")), ("gpu", "0"), ("xid", "48")))
            : promql.Contains("vasthost_gpu_ecc_errors_volatile_total", StringComparison.Ordinal) ? Vector(
                Sample("3", (h, A("rig-a")), ("uuid", "GPU-a0")),
                Sample("+Inf", (h, A("rig-a")), ("uuid", "GPU-a1")),
                Sample("NaN", (h, A("rig-a")), ("uuid", "GPU-a2")))
            : promql.Contains("vasthost_economics_load_cost_dollars_per_gpu_hour", StringComparison.Ordinal) ? Vector(
                Sample("0.1215", (h, A("rig-a"))),
                Sample("NaN", (h, A("rig-b"))))
            : promql.StartsWith("min by (" + h + ", instance)", StringComparison.Ordinal) ? Vector(
                Sample("1", (h, A("rig-a")), ("instance", "10.0.0.1:9470")),
                Sample("0", (h, A("rig-b")), ("instance", "10.0.0.2:9470")),
                Sample("1", (h, A("rig-c")), ("instance", "10.0.0.3:9470")))
            : promql.Contains("vasthost_gpus{state=\"missing\"", StringComparison.Ordinal) ? Vector(Sample("2", (h, A("rig-a"))))
            : throw new InvalidOperationException("unexpected query " + promql);
        return Task.FromResult(Json(body));
    }

    [Fact]
    public async Task A_good_answer_maps_each_rig_to_its_observation()
    {
        var (source, handler, _) = Create(FleetAnswer);

        var report = await source.ReadAsync(CancellationToken.None);

        Assert.True(report.Up, report.Problem);
        Assert.Equal(["rig-a", "rig-b", "rig-c"], report.ByKey.Keys.Order(StringComparer.Ordinal));

        var a = report.For(0, "rig-a");
        Assert.True(a.Known);
        Assert.Null(a.AgentDown);
        Assert.Null(a.NvmlDown);
        Assert.Equal(["GPU 1 lost"], a.LostGpus);
        Assert.Equal(["2 GPU(s) missing on the rig (vasthost_gpus{state=\"missing\"})"], a.MissingGpus);
        var xid = Assert.Single(a.Xids); // the NaN time is not a time
        Assert.Equal(new RigXid(79, 0, DateTimeOffset.FromUnixTimeSeconds((long)Now - 30)), xid);
        Assert.Equal(2, a.EccUncorrected.Count);
        Assert.Equal(3UL, a.EccUncorrected["GPU-a0"]);
        Assert.Equal(ulong.MaxValue, a.EccUncorrected["GPU-a1"]);
        Assert.NotNull(a.DockerDown);
        Assert.Equal(new RigDisk("/var/lib/docker", 1000, 4000), a.Disk);
        Assert.Equal(0.1215, a.PowerCost?.LoadCostPerGpuHour); // the powerCost min bid's input, from the rig's economics series

        var b = report.For(0, "RIG-B.example.com");
        Assert.True(b.Known);
        Assert.Contains("10.0.0.2:9470", b.AgentDown, StringComparison.Ordinal);
        Assert.Empty(b.LostGpus);
        Assert.Empty(b.MissingGpus);
        Assert.Null(b.Disk);
        Assert.Null(b.PowerCost); // NaN is not a price

        var c = report.For(0, "rig-c");
        Assert.False(c.Known);
        Assert.Contains("10m 0s old", c.Problem, StringComparison.Ordinal);
        Assert.Null(c.NvmlDown); // stale data is not read as a fault either

        var absent = report.For(7, "rig-z");
        Assert.False(absent.Known);
        Assert.Contains("no rig agent series", absent.Problem, StringComparison.Ordinal);

        Assert.InRange(handler.Queries.Count, 1, 9);
        Assert.All(handler.Queries, q => Assert.Contains("* on(instance, job) group_left(hostname) topk by (instance, job) (1, vasthost_rig_info or on(instance, job) last_over_time(vasthost_rig_info[1h]))", q, StringComparison.Ordinal));
        Assert.All(handler.Requests, r => Assert.Equal("http://prometheus.test:9090/api/v1/query", r.RequestUri!.GetLeftPart(UriPartial.Path)));
    }

    [Fact]
    public async Task The_machine_id_label_and_the_selector_go_into_every_query()
    {
        var (source, handler, _) = Create(FleetAnswer, new PrometheusOptions { Url = "http://prometheus.test:9090/prom", MachineLabel = "machine_id", Selector = "{job=\"vast\"}" });

        var report = await source.ReadAsync(CancellationToken.None);

        Assert.True(report.Up, report.Problem);
        Assert.Equal(["GPU 1 lost"], report.For(101, null).LostGpus);
        Assert.NotNull(report.For(102, "whatever").AgentDown);
        Assert.All(handler.Queries, q =>
        {
            Assert.Contains("group_left(machine_id)", q, StringComparison.Ordinal);
            Assert.Contains("vasthost_rig_info{job=\"vast\"}", q, StringComparison.Ordinal);
            Assert.Contains("last_over_time(vasthost_rig_info{job=\"vast\"}[1h])", q, StringComparison.Ordinal);
        });
        Assert.Contains(handler.Queries, q => q.Contains("up{job=\"vast\"}", StringComparison.Ordinal));
        Assert.Contains(handler.Queries, q => q.Contains("{error_type=\"uncorrected\", job=\"vast\"}", StringComparison.Ordinal));
        Assert.All(handler.Requests, r => Assert.Equal("/prom/api/v1/query", r.RequestUri!.AbsolutePath));
    }

    [Theory]
    [InlineData("<html>not json</html>", "not a query result")]
    [InlineData("""{"status":"success","data":{"resultType":"scalar","result":[1800000000,"1"]}}""", "the up query")]
    [InlineData("""{"status":"success","data":{"resultType":"matrix","result":[]}}""", "something else than a successful instant vector")]
    [InlineData("""{"status":"success"}""", "something else than a successful instant vector")]
    [InlineData("""{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1800000000]}]}}""", "something else than a successful instant vector")]
    [InlineData("""{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1800000000,"one"]}]}}""", "something else than a successful instant vector")]
    [InlineData("[]", "not a query result")]
    [InlineData("", "not a query result")]
    public async Task A_body_that_is_not_an_instant_vector_is_a_down_report(string body, string expected)
    {
        var (source, _, _) = Create(Always(() => Json(body)));

        var report = await source.ReadAsync(CancellationToken.None);

        Assert.False(report.Up);
        Assert.Contains(expected, report.Problem, StringComparison.Ordinal);
        Assert.Contains("http://prometheus.test:9090/", report.Problem, StringComparison.Ordinal);
        Assert.Empty(report.ByKey);
        Assert.False(report.For(1, "rig-a").Known);
    }

    [Fact]
    public async Task A_query_error_is_a_down_report_naming_the_error()
    {
        var (source, _, _) = Create(Always(() => Json("""{"status":"error","errorType":"bad_data","error":"parse error at char 7: unexpected <by>"}""", HttpStatusCode.BadRequest)));

        var report = await source.ReadAsync(CancellationToken.None);

        Assert.False(report.Up);
        Assert.Contains("HTTP 400, bad_data: parse error at char 7", report.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_HTTP_error_is_a_down_report()
    {
        var (source, _, _) = Create(Always(() => new HttpResponseMessage(HttpStatusCode.InternalServerError) { Content = new StringContent("<h1>oops</h1>") }));

        var report = await source.ReadAsync(CancellationToken.None);

        Assert.False(report.Up);
        Assert.Contains("HTTP 500", report.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task One_failed_query_among_good_ones_makes_the_whole_report_down()
    {
        var (source, _, _) = Create((q, ct) => q.Contains("vasthost_gpu_ecc_errors_volatile_total", StringComparison.Ordinal)
            ? Task.FromResult(new HttpResponseMessage(HttpStatusCode.ServiceUnavailable))
            : FleetAnswer(q, ct));

        var report = await source.ReadAsync(CancellationToken.None);

        Assert.False(report.Up);
        Assert.Contains("ECC query with HTTP 503", report.Problem, StringComparison.Ordinal);
        Assert.False(report.For(0, "rig-a").Known);
    }

    [Fact]
    public async Task A_Prometheus_that_never_answers_is_a_down_report_after_the_timeout()
    {
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds((long)Now));
        var asked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (source, _, _) = Create(
            async (_, ct) =>
            {
                asked.TrySetResult();
                await Task.Delay(Timeout.InfiniteTimeSpan, ct);
                throw new InvalidOperationException("unreachable");
            },
            new PrometheusOptions { Url = "http://prometheus.test:9090", Timeout = TimeSpan.FromSeconds(5) },
            time);

        var read = source.ReadAsync(CancellationToken.None);
        await asked.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(read.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(5));
        var report = await read.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.False(report.Up);
        Assert.Contains("did not answer within 00:00:05", report.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_callers_cancellation_is_thrown_not_reported()
    {
        var (source, _, _) = Create(async (_, ct) =>
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, ct);
            throw new InvalidOperationException("unreachable");
        });
        using var cts = new CancellationTokenSource();

        var read = source.ReadAsync(cts.Token);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public async Task Without_a_url_the_report_is_down_and_nothing_is_asked(string url)
    {
        var (source, handler, _) = Create(FleetAnswer, new PrometheusOptions { Url = url });

        var report = await source.ReadAsync(CancellationToken.None);

        Assert.False(report.Up);
        Assert.Equal("fleet.prometheus.url is not set", report.Problem);
        Assert.Empty(handler.Requests);
        Assert.Equal("fleet.prometheus.url is not set", report.For(1, "rig-a").Problem);
    }

    [Fact]
    public async Task A_malformed_url_is_a_down_report_that_does_not_echo_it()
    {
        var (source, handler, _) = Create(FleetAnswer, new PrometheusOptions { Url = "ftp://user:hunter2@prometheus" });

        var report = await source.ReadAsync(CancellationToken.None);

        Assert.False(report.Up);
        Assert.DoesNotContain("hunter2", report.Problem, StringComparison.Ordinal);
        Assert.Empty(handler.Requests);
    }

    [Fact]
    public async Task Credentials_in_the_url_are_sent_as_basic_auth_and_never_shown()
    {
        var (source, handler, logger) = Create(
            Always(() => new HttpResponseMessage(HttpStatusCode.BadGateway)),
            new PrometheusOptions { Url = "https://admin:s3cret%2Fpw@prometheus.test:9443/" });

        var report = await source.ReadAsync(CancellationToken.None);

        Assert.False(report.Up);
        Assert.Contains("https://prometheus.test:9443/", report.Problem, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", report.Problem, StringComparison.Ordinal);
        Assert.DoesNotContain("admin", report.Problem, StringComparison.Ordinal);
        var request = handler.Requests.First();
        Assert.Equal("", request.RequestUri!.UserInfo);
        Assert.Equal("Basic", request.Headers.Authorization!.Scheme);
        Assert.Equal("admin:s3cret/pw", Encoding.UTF8.GetString(Convert.FromBase64String(request.Headers.Authorization.Parameter!)));
        Assert.All(logger.Collector.GetSnapshot(), r => Assert.DoesNotContain("s3cret", r.Message, StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unreachable_Prometheus_with_a_password_in_its_url_does_not_leak_it()
    {
        // A real connection attempt to a closed port: the framework's own error text is part of the problem.
        var port = AgentProcess.FreePort();
        var logger = new FakeLogger<PrometheusRigHealthSource>();
        using var http = new HttpClient();
        var fleet = new FleetOptions { Prometheus = new PrometheusOptions { Url = $"http://admin:s3cret-pw@127.0.0.1:{port}" } };
        var source = new PrometheusRigHealthSource(http, Options.Create(fleet), TimeProvider.System, logger);

        var report = await source.ReadAsync(CancellationToken.None);

        Assert.False(report.Up);
        Assert.Contains($"http://127.0.0.1:{port}/ is unreachable", report.Problem, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret-pw", report.Problem, StringComparison.Ordinal);
        Assert.DoesNotContain("admin", report.Problem, StringComparison.Ordinal);
        var logged = Assert.Single(logger.Collector.GetSnapshot());
        Assert.DoesNotContain("s3cret-pw", logged.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_change_of_state_is_logged_once_not_every_read()
    {
        var failing = true;
        var (source, _, logger) = Create((q, ct) => Volatile.Read(ref failing) ? Task.FromResult(new HttpResponseMessage(HttpStatusCode.InternalServerError)) : FleetAnswer(q, ct));

        for (var i = 0; i < 3; i++)
        {
            Assert.False((await source.ReadAsync(CancellationToken.None)).Up);
        }

        Volatile.Write(ref failing, false);
        for (var i = 0; i < 3; i++)
        {
            Assert.True((await source.ReadAsync(CancellationToken.None)).Up);
        }

        Volatile.Write(ref failing, true);
        Assert.False((await source.ReadAsync(CancellationToken.None)).Up);

        var ids = logger.Collector.GetSnapshot().Select(r => r.Id.Id).ToList();
        // down, up again (with rig-c stale), down again
        Assert.Equal([8100, 8101, 8102, 8100], ids);
        Assert.Contains("rig-c", logger.Collector.GetSnapshot()[2].Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_rig_going_stale_and_fresh_again_is_logged_once_each_way()
    {
        var rigCAge = 600.0;
        var (source, _, logger) = Create((q, _) => FleetAnswer(q, Volatile.Read(ref rigCAge)));

        Assert.False((await source.ReadAsync(CancellationToken.None)).For(0, "rig-c").Known);
        Assert.False((await source.ReadAsync(CancellationToken.None)).For(0, "rig-c").Known);
        Volatile.Write(ref rigCAge, 2);
        Assert.True((await source.ReadAsync(CancellationToken.None)).For(0, "rig-c").Known);
        Assert.True((await source.ReadAsync(CancellationToken.None)).For(0, "rig-c").Known);

        var log = logger.Collector.GetSnapshot();
        Assert.Equal([8101, 8102, 8103], log.Select(r => r.Id.Id));
        Assert.Contains("rig-c", log[2].Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1", 1.0)]
    [InlineData("0", 0.0)]
    [InlineData("1.5e+09", 1.5e9)]
    [InlineData("+Inf", double.PositiveInfinity)]
    [InlineData("-Inf", double.NegativeInfinity)]
    [InlineData("NaN", double.NaN)]
    [InlineData("-0.25", -0.25)]
    public void Sample_values_are_parsed_with_Prometheus_spellings_of_NaN_and_infinities(string text, double expected)
    {
        Assert.True(PrometheusRigHealthSource.TryParseValue(text, out var value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("1,5")]
    [InlineData("Infinity?")]
    public void A_value_that_is_no_number_is_refused(string text) =>
        Assert.False(PrometheusRigHealthSource.TryParseValue(text, out _));
}
