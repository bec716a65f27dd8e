using System.Net.Sockets;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;
using VastHostAgent.Containers;
using VastHostAgent.Kernel;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Containers;

/// <summary>Issue 12: the Docker call timeout runs on the TimeProvider (it used the wall clock).</summary>
public sealed class DockerTimeoutTests
{
    [Fact]
    public async Task A_Docker_engine_that_accepts_but_never_answers_times_out_on_the_agents_clock()
    {
        var dir = TestEnvironment.NewTempDirectory("dockerd-mute");
        var path = Path.Combine(dir, "docker.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(8);
        var held = new List<Socket>();
        using var stop = new CancellationTokenSource();
        var accepting = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                held.Add(await listener.AcceptAsync(stop.Token));   // accepted, never answered
            }
        });

        var time = new FakeTimeProvider();
        var store = new SnapshotStore();
        using var service = new DockerInventoryService(
            Microsoft.Extensions.Options.Options.Create(new DockerOptions { Endpoint = "unix://" + path }), store, time, new FakeLogger<DockerInventoryService>());
        await service.StartAsync(default);
        await Poll.UntilAsync(() => held.Count > 0, TimeSpan.FromSeconds(10), "the agent to connect");

        // 15 s on the agent's clock, a few milliseconds of real time.
        await FakeClock.PumpUntilAsync(() => store.Current.Docker is { Up: false }, time, TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(16), "docker to be reported down");

        var docker = store.Current.Docker;
        Assert.NotNull(docker);
        Assert.False(docker!.Up);
        Assert.Contains("no answer from", docker.Problem, StringComparison.Ordinal);
        Assert.Contains("within 15 s", docker.Problem, StringComparison.Ordinal);

        await service.StopAsync(default);
        await stop.CancelAsync();
        try
        {
            await accepting;
        }
        catch (OperationCanceledException)
        {
        }

        foreach (var socket in held)
        {
            socket.Dispose();
        }
    }
}
