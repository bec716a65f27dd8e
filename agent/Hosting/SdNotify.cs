using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Hosting.Systemd;

namespace VastHostAgent.Hosting;

/// <summary>
/// One sd_notify datagram to <c>$NOTIFY_SOCKET</c> (a unix datagram socket; <c>@</c> means the abstract
/// namespace), for the messages the daemon's reload sends itself: <c>RELOADING=1</c> with
/// <c>MONOTONIC_USEC</c> when a SIGHUP arrives, <c>READY=1</c> when the agent runs again.
/// </summary>
public static class SdNotify
{
    private static volatile bool s_reloadInProgress;

    /// <summary>
    /// True while a SIGHUP reload stops one host and starts the next in the same process: the hosts' own
    /// STOPPING=1 and READY=1 must not reach systemd then (STOPPING=1 would make it treat the reload as a stop).
    /// </summary>
    public static bool ReloadInProgress
    {
        get => s_reloadInProgress;
        internal set => s_reloadInProgress = value;
    }

    /// <summary>True when the process was given a notification socket.</summary>
    public static bool IsAvailable => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"));

    /// <summary>Sends <paramref name="state"/> (newline-separated assignments) as one datagram. False when there is no socket or the send failed.</summary>
    public static bool Send(string state)
    {
        var path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(path))
        {
            return false;
        }

        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.SendTo(Encoding.UTF8.GetBytes(state), new UnixDomainSocketEndPoint(path[0] == '@' ? "\0" + path[1..] : path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary><c>RELOADING=1</c> with the <c>CLOCK_MONOTONIC</c> time systemd wants with it (sd_notify(3)).</summary>
    public static string Reloading(TimeProvider time) =>
        string.Create(CultureInfo.InvariantCulture, $"RELOADING=1\nMONOTONIC_USEC={MonotonicMicroseconds(time)}");

    /// <summary>
    /// Microseconds of <c>CLOCK_MONOTONIC</c>: on Linux <see cref="TimeProvider.System"/>'s timestamp
    /// (<see cref="System.Diagnostics.Stopwatch"/>) reads that clock.
    /// </summary>
    internal static long MonotonicMicroseconds(TimeProvider time)
    {
        var ticks = time.GetTimestamp();
        var frequency = time.TimestampFrequency;
        return (ticks / frequency * 1_000_000) + (ticks % frequency * 1_000_000 / frequency);
    }
}

/// <summary>
/// The notifier the library's systemd lifetime uses (it replaces the one <c>AddSystemd()</c> registers): sends
/// like the library's, but keeps the stopping host's STOPPING=1 and the new host's READY=1 to itself during a
/// reload; the reload sends READY=1 once it is done.
/// </summary>
internal sealed class ReloadAwareSystemdNotifier : ISystemdNotifier
{
    public bool IsEnabled => SdNotify.IsAvailable;

    public void Notify(ServiceState state)
    {
        var text = state.ToString();
        if (SdNotify.ReloadInProgress && text is "STOPPING=1" or "READY=1")
        {
            return;
        }

        SdNotify.Send(text);
    }
}
