using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;

namespace VastHostAgent.Tests.Support;

/// <summary>
/// The <c>$NOTIFY_SOCKET</c> end systemd would hold: a bound unix datagram socket that records every datagram
/// the agent sends, whole (one datagram may carry several newline-separated assignments).
/// </summary>
public sealed class NotifySocketReceiver : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<string> _datagrams = new();

    public NotifySocketReceiver(string path)
    {
        Path = path;
        _socket.Bind(new UnixDomainSocketEndPoint(path));
        _ = Task.Run(ReceiveAsync);
    }

    public string Path { get; }

    /// <summary>Every datagram so far, in the order received.</summary>
    public IReadOnlyList<string> Datagrams => [.. _datagrams];

    public void Dispose()
    {
        _stop.Cancel();
        _socket.Dispose();
        _stop.Dispose();
    }

    private async Task ReceiveAsync()
    {
        var buffer = new byte[4096];
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var n = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
                _datagrams.Enqueue(Encoding.UTF8.GetString(buffer, 0, n));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }
}
