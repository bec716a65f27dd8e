using System.Collections.Concurrent;
using System.Threading.Channels;
using Docker.DotNet.Models;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using VastHostAgent.Containers;
using VastHostAgent.Kernel;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Containers;

/// <summary>
/// The inventory's logic over a scripted engine (the seam under the Docker client), on a fake clock: what it
/// lists, inspects and re-inspects, how events change it, how it reconnects, and how it reports a surprise.
/// The real-engine behaviour (a private dockerd) is in <see cref="DockerEndToEndTests"/> and <see cref="DockerOutageTests"/>.
/// </summary>
public sealed class DockerInventoryTests
{
    private sealed class Engine : IDockerEngine
    {
        public ConcurrentDictionary<string, ContainerInspectResponse> Containers { get; } = new(StringComparer.Ordinal);

        public ConcurrentQueue<string> Inspected { get; } = new();

        public ConcurrentQueue<string?> Since { get; } = new();

        public Channel<Message> Events { get; set; } = Channel.CreateUnbounded<Message>();

        public Func<string, Exception?> InspectFailure { get; set; } = _ => null;

        public Task<string?> VersionAsync(CancellationToken cancellationToken) => Task.FromResult<string?>("28.2.2");

        public Task<IList<ContainerListResponse>> ListContainersAsync(CancellationToken cancellationToken) =>
            Task.FromResult<IList<ContainerListResponse>>([.. Containers.Values.Select(c => new ContainerListResponse { ID = c.ID, Names = [c.Name], State = c.State!.Status })]);

        public Task<ContainerInspectResponse?> InspectAsync(string id, CancellationToken cancellationToken)
        {
            Inspected.Enqueue(id);
            if (InspectFailure(id) is { } failure)
            {
                throw failure;
            }

            return Task.FromResult(Containers.TryGetValue(id, out var c) ? c : null);
        }

        public async Task MonitorEventsAsync(ContainerEventsParameters parameters, IProgress<Message> progress, CancellationToken cancellationToken)
        {
            Since.Enqueue(parameters.Since);
            await foreach (var message in Events.Reader.ReadAllAsync(cancellationToken))
            {
                progress.Report(message);
            }

            throw new IOException("the engine closed the event stream");
        }

        public void Dispose()
        {
        }
    }

    private sealed class Factory(Engine engine) : IDockerEngineFactory
    {
        public int Connections;

        public IDockerEngine Connect(Uri endpoint)
        {
            Interlocked.Increment(ref Connections);
            return engine;
        }
    }

    private static ContainerInspectResponse Container(string id, string name, string status, int pid = 0) => new()
    {
        ID = id,
        Name = "/" + name,
        Created = new DateTime(2026, 11, 30, 8, 0, 0, DateTimeKind.Utc),
        State = new() { Status = status, Running = status == "running", Pid = pid, StartedAt = "2026-11-30T08:00:01.123456789Z", ExitCode = status == "exited" ? 137 : 0 },
        Config = new() { Image = "pytorch/pytorch:2.4", Env = ["NVIDIA_VISIBLE_DEVICES=0,1"] },
        HostConfig = new(),
    };

    private static Message Event(string action, string id, long nanos) => new() { Type = "container", Action = action, Actor = new Actor { ID = id }, TimeNano = nanos };

    private static (DockerInventoryService Service, SnapshotStore Store, FakeTimeProvider Time, Engine Engine, Factory Factory, LoopHealth Loops) Start(
        Engine engine, TimeSpan? resync = null)
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-11-30T08:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var store = new SnapshotStore();
        var loops = new LoopHealth(store, time, new FakeLogger<LoopHealth>());
        var factory = new Factory(engine);
        var service = new DockerInventoryService(
            Microsoft.Extensions.Options.Options.Create(new DockerOptions { Endpoint = "unix:///nowhere.sock", ResyncInterval = resync ?? TimeSpan.FromHours(1) }),
            store, time, new FakeLogger<DockerInventoryService>(), loops, factory);
        return (service, store, time, engine, factory, loops);
    }

    private static Task<DockerState> InventoryAsync(SnapshotStore store, Func<DockerState, bool> done, string what) =>
        Poll.UntilAsync(() => Task.FromResult(store.Current.Docker), d => d is not null && done(d), TimeSpan.FromSeconds(10), what)!;

    [Fact]
    public async Task Containers_are_listed_and_inspected_once_and_events_change_only_what_they_name()
    {
        var engine = new Engine();
        engine.Containers["a1"] = Container("a1", "C.1001", "running", 4242);
        engine.Containers["b2"] = Container("b2", "hostjob", "running", 4343);
        var (service, store, _, _, _, _) = Start(engine);
        await service.StartAsync(default);

        var first = await InventoryAsync(store, d => d.Up && d.Containers.Count == 2, "the first inventory");
        Assert.Equal(1001, first.Containers.Single(c => c.Name == "C.1001").InstanceId);
        Assert.Null(first.Containers.Single(c => c.Name == "hostjob").InstanceId);
        Assert.Equal(["a1", "b2"], engine.Inspected.Order(StringComparer.Ordinal));
        Assert.Equal("28.2.2", first.EngineVersion);

        // The instance dies: only it is inspected again.
        engine.Containers["a1"] = Container("a1", "C.1001", "exited");
        await engine.Events.Writer.WriteAsync(Event("die", "a1", 1_800_000_000_123_456_789));
        var died = await InventoryAsync(store, d => d.Containers.Single(c => c.Id == "a1").State == "exited", "the die event");
        Assert.Equal(137, died.Containers.Single(c => c.Id == "a1").ExitCode);
        Assert.Equal(3, engine.Inspected.Count);

        // Events the inventory does not show change nothing and inspect nothing.
        await engine.Events.Writer.WriteAsync(Event("exec_start: sh", "b2", 1_800_000_001_000_000_000));
        await engine.Events.Writer.WriteAsync(Event("destroy", "a1", 1_800_000_002_000_000_000));
        var destroyed = await InventoryAsync(store, d => d.Containers.Count == 1, "the destroy event");
        Assert.Equal("hostjob", Assert.Single(destroyed.Containers).Name);
        Assert.Equal(3, engine.Inspected.Count);
        await service.StopAsync(default);
    }

    [Fact]
    public async Task A_resync_re_inspects_only_containers_whose_state_or_name_changed()
    {
        var engine = new Engine();
        engine.Containers["a1"] = Container("a1", "C.1001", "running", 4242);
        engine.Containers["b2"] = Container("b2", "C.1002", "running", 4343);
        var (service, store, time, _, _, _) = Start(engine, resync: TimeSpan.FromMinutes(1));
        await service.StartAsync(default);
        await InventoryAsync(store, d => d.Containers.Count == 2, "the first inventory");

        // Changed behind the agent's back (no event): b2 stopped, c3 appeared.
        engine.Containers["b2"] = Container("b2", "C.1002", "exited");
        engine.Containers["c3"] = Container("c3", "C.1003", "created");
        var before = engine.Inspected.Count;
        await Poll.UntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(10));
            return store.Current.Docker!.Containers.Count == 3;
        }, TimeSpan.FromSeconds(10), "the resync");
        Assert.Equal(["b2", "c3"], engine.Inspected.Skip(before).Order(StringComparer.Ordinal));
        Assert.Equal("exited", store.Current.Docker!.Containers.Single(c => c.Id == "b2").State);
        await service.StopAsync(default);
    }

    [Fact]
    public async Task A_dropped_event_stream_reports_docker_down_then_reconnects_from_the_last_event_seen()
    {
        var engine = new Engine();
        engine.Containers["a1"] = Container("a1", "C.1001", "running", 4242);
        var (service, store, time, _, factory, _) = Start(engine);
        await service.StartAsync(default);
        await InventoryAsync(store, d => d.Up, "the first inventory");
        await engine.Events.Writer.WriteAsync(Event("start", "a1", 1_800_000_000_123_456_789));
        await Poll.UntilAsync(() => engine.Inspected.Count == 2, TimeSpan.FromSeconds(10), "the start event");

        var old = engine.Events;
        engine.Events = Channel.CreateUnbounded<Message>();
        old.Writer.Complete();   // the engine goes away
        var down = await InventoryAsync(store, d => !d.Up, "docker down");
        Assert.Contains("closed the event stream", down.Problem, StringComparison.Ordinal);
        Assert.Empty(down.Containers);

        await Poll.UntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(1));
            return store.Current.Docker!.Up;
        }, TimeSpan.FromSeconds(10), "the reconnect");
        Assert.Equal(2, factory.Connections);
        Assert.Equal("1800000000.123456789", engine.Since.Last());   // replayed from the last event, not from "now"
        Assert.Single(store.Current.Docker!.Containers);
        await service.StopAsync(default);
    }

    [Fact]
    public async Task A_surprise_from_the_engine_is_counted_as_a_loop_failure_and_the_inventory_recovers()
    {
        var engine = new Engine();
        engine.Containers["a1"] = Container("a1", "C.1001", "running", 4242);
        engine.InspectFailure = _ => new InvalidCastException("an answer nobody expected");
        var (service, store, time, _, _, loops) = Start(engine);
        await service.StartAsync(default);

        var down = await InventoryAsync(store, d => !d.Up, "the failed inventory");
        Assert.Contains("an answer nobody expected", down.Problem, StringComparison.Ordinal);
        Assert.Equal(1, loops.Loops[DockerInventoryService.LoopName].Failures);

        engine.InspectFailure = _ => null;
        await Poll.UntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(1));
            return store.Current.Docker!.Up;
        }, TimeSpan.FromSeconds(10), "the recovery");
        Assert.Equal(0, loops.Loops[DockerInventoryService.LoopName].ConsecutiveFailures);
        Assert.False(service.ExecuteTask!.IsCompleted);
        await service.StopAsync(default);
    }
}
