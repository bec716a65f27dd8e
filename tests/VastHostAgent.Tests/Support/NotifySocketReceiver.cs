using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;

namespace VastHostAgent.Tests.Support;

/// <summary>
/// The <c>$NOTIFY_SOCKET</c> end systemd would hold: a bound unix datagram socket that records every datagram
/// the agent sends, whole (one datagram may carry several newline-separated assignments), with the time it
/// arrived.
/// </summary>
public sealed class NotifySocketReceiver : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<(DateTime At, string Datagram)> _datagrams = new();

    public NotifySocketReceiver(string path)
    {
        Path = path;
        _socket.Bind(new UnixDomainSocketEndPoint(path));
        _ = Task.Run(ReceiveAsync);
    }

    public string Path { get; }

    /// <summary>Every datagram so far, in the order received.</summary>
    public IReadOnlyList<string> Datagrams => [.. _datagrams.Select(d => d.Datagram)];

    /// <summary>Every assignment so far (datagrams split into lines), with the time its datagram arrived.</summary>
    public IReadOnlyList<(DateTime At, string Message)> Messages =>
        [.. _datagrams.SelectMany(d => d.Datagram.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => (d.At, line)))];

    /// <summary>When <paramref name="message"/> last arrived, or null if it never did.</summary>
    public DateTime? Last(string message) => Messages.Where(m => m.Message == message).Select(m => (DateTime?)m.At).LastOrDefault();

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
                _datagrams.Enqueue((DateTime.UtcNow, Encoding.UTF8.GetString(buffer, 0, n)));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }
}
