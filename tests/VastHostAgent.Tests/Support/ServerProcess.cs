using System.Diagnostics;

namespace VastHostAgent.Tests.Support;

/// <summary>
/// A real server program a test runs on a free loopback port (Prometheus, Alertmanager): its output kept for
/// diagnostics, started and waited on until its <c>/-/ready</c> answers, killed on dispose.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _log = [];

    private ServerProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The last <paramref name="lines"/> lines it wrote (stdout and stderr).</summary>
    public string Tail(int lines)
    {
        lock (_log)
        {
            return string.Join('\n', _log.TakeLast(lines));
        }
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_log)
            {
                _log.Add(line);
            }
        }
    }

    /// <summary>
    /// Starts <paramref name="binary"/> with <paramref name="args"/> and waits (60 s at most) until
    /// <paramref name="baseUrl"/><c>-/ready</c> answers 2xx; throws with its output when it exits first.
    /// </summary>
    public static async Task<ServerProcess> StartAsync(string name, string binary, IEnumerable<string> args, string directory, Uri baseUrl, HttpClient http)
    {
        var psi = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var server = new ServerProcess(Process.Start(psi)!);
        await Poll.UntilAsync(async () =>
        {
            if (server._process.HasExited)
            {
                throw new InvalidOperationException($"{name} exited: {server.Tail(40)}");
            }

            try
            {
                using var r = await http.GetAsync(new Uri(baseUrl, "-/ready"));
                return r.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, ok => ok, TimeSpan.FromSeconds(60), name + " ready");
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
