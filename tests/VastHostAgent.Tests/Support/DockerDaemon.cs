using System.Diagnostics;
using System.Text;

namespace VastHostAgent.Tests.Support;

/// <summary>
/// A private, real dockerd for tests: its own socket, data root and exec root under a temp directory,
/// no iptables, no bridge (test-infrastructure.md). Imports a busybox rootfs as <c>tiny:latest</c> (no
/// registry access). Always stopped on dispose; scripts/test.sh also reaps strays.
/// </summary>
public sealed class DockerDaemon : IAsyncDisposable
{
    public const string Image = "tiny:latest";

    private readonly StringBuilder _log = new();
    private Process? _process;

    private DockerDaemon(string directory)
    {
        Directory.CreateDirectory(directory);
        RootDirectory = directory;
    }

    public string RootDirectory { get; }

    public string Socket => Path.Combine(RootDirectory, "docker.sock");

    public string Endpoint => "unix://" + Socket;

    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    public static async Task<DockerDaemon> StartAsync()
    {
        // Short path: unix socket paths are limited to 108 bytes.
        var daemon = new DockerDaemon(Path.Combine("/tmp", "vha-dockerd-" + Guid.NewGuid().ToString("N")[..10]));
        await daemon.StartProcessAsync();
        await daemon.ImportImageAsync();
        return daemon;
    }

    /// <summary>Starts dockerd (again) on the same directories and waits until it answers.</summary>
    public async Task StartProcessAsync()
    {
        var psi = new ProcessStartInfo("dockerd")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
                 {
                     "--iptables=false", "--ip6tables=false", "--bridge=none",
                     "-H", Endpoint,
                     "--data-root", Path.Combine(RootDirectory, "data"),
                     "--exec-root", Path.Combine(RootDirectory, "exec"),
                     "--pidfile", Path.Combine(RootDirectory, "dockerd.pid"),
                 })
        {
            psi.ArgumentList.Add(arg);
        }

        try
        {
            _process = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("dockerd is not installed: run scripts/test.sh (it installs Debian's docker.io)", ex);
        }

        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"dockerd exited with {_process.ExitCode}:\n{Log}");
            }

            if (File.Exists(Socket) && (await TryDockerAsync("version", "--format", "{{.Server.Version}}")).ExitCode == 0)
            {
                return;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"dockerd did not answer within 30 s:\n{Log}");
    }

    /// <summary>Stops dockerd with SIGTERM (its containers stop with it) and waits for it to exit.</summary>
    public async Task StopProcessAsync()
    {
        if (_process is null || _process.HasExited)
        {
            return;
        }

        _ = Kill(_process.Id, 15);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>Runs the docker CLI against this daemon; throws with its output on failure.</summary>
    public async Task<string> DockerAsync(params string[] args)
    {
        var (exit, output) = await TryDockerAsync(args);
        if (exit != 0)
        {
            throw new InvalidOperationException($"docker {string.Join(' ', args)} failed ({exit}): {output}");
        }

        return output.Trim();
    }

    public async Task<(int ExitCode, string Output)> TryDockerAsync(params string[] args)
    {
        var psi = new ProcessStartInfo("docker") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-H");
        psi.ArgumentList.Add(Endpoint);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout + await stderr);
    }

    /// <summary>Host PID of a running container's init process.</summary>
    public async Task<int> PidOfAsync(string container) =>
        int.Parse(await DockerAsync("inspect", "-f", "{{.State.Pid}}", container), System.Globalization.CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        if (_process is not null && !_process.HasExited)
        {
            // Remove containers first so their mounts go away with them.
            var ids = (await TryDockerAsync("ps", "-aq")).Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (ids.Length > 0)
            {
                await TryDockerAsync(["rm", "-f", "-v", .. ids]);
            }
        }

        await StopProcessAsync();
        _process?.Dispose();
        try
        {
            Directory.Delete(RootDirectory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // leftovers of overlay mounts; scripts/test.sh cleans /tmp/vha-dockerd-* at the end
        }
    }

    private async Task ImportImageAsync()
    {
        var rootfs = Path.Combine(RootDirectory, "rootfs");
        var bin = Path.Combine(rootfs, "bin");
        Directory.CreateDirectory(bin);
        var busybox = File.Exists("/bin/busybox") ? "/bin/busybox" : "/usr/bin/busybox";
        if (!File.Exists(busybox))
        {
            throw new InvalidOperationException("busybox is not installed: run scripts/test.sh (it installs Debian's busybox-static)");
        }

        File.Copy(busybox, Path.Combine(bin, "busybox"));
        foreach (var applet in new[] { "sh", "sleep", "yes", "head", "cat", "echo", "true", "false", "dd", "ls" })
        {
            File.CreateSymbolicLink(Path.Combine(bin, applet), "busybox");
        }

        var psi = new ProcessStartInfo("bash") { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add($"tar -C '{rootfs}' -c . | docker -H '{Endpoint}' import - {Image}");
        using var p = Process.Start(psi)!;
        var err = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"importing the busybox image failed: {err}");
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);
}

/// <summary>One private dockerd shared by the tests of the "docker" collection.</summary>
public sealed class DockerFixture : IAsyncLifetime
{
    public DockerDaemon Daemon { get; private set; } = null!;

    public async Task InitializeAsync() => Daemon = await DockerDaemon.StartAsync();

    public async Task DisposeAsync() => await Daemon.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class DockerGroup : ICollectionFixture<DockerFixture>
{
    public const string Name = "docker";
}
