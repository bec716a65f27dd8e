using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.Host;
using VastHostAgent.Hosting;
using VastHostAgent.Metrics;
using VastHostAgent.Vast;

namespace VastHostAgent.Cli;

/// <summary>
/// <c>vast-host-agent doctor</c>: checks what the agent needs, one line per check with OK, WARN or FAIL and
/// a hint saying what to do. Exit 1 when any check fails, 2 for invalid configuration.
/// </summary>
internal static class DoctorCommand
{
    public static async Task<int> RunAsync(string? configPath, TextWriter output, CancellationToken cancellationToken)
    {
        var report = new Report(output);
        var (configuration, source) = AgentCommandLine.LoadConfiguration(configPath, new Dictionary<string, string?> { ["gpu:xidEvents"] = "false" });
        if (configuration is null)
        {
            report.Fail("configuration", source.Path ?? "built-in defaults", "fix the key named above; packaging/config/agent.example.json documents every option");
            return ExitCodes.InvalidConfiguration;
        }

        report.Ok("configuration", source.Path is null ? "built-in defaults (no configuration file)" : source.Path);

        await using var services = AgentRuntime.BuildOneShot(configuration);
        var snapshot = await AgentRuntime.SampleOnceAsync(services, cancellationToken).ConfigureAwait(false);

        var gpu = services.GetRequiredService<IOptions<GpuOptions>>().Value;
        if (!gpu.Enabled)
        {
            report.Warn("nvml", "disabled (gpu.enabled=false)", "enable it on a GPU rig");
        }
        else if (snapshot.Gpu is { NvmlUp: true } g)
        {
            var down = g.Gpus.Where(x => !x.Up).ToList();
            var detail = string.Create(CultureInfo.InvariantCulture,
                $"{g.Gpus.Count(x => x.Up)} GPU(s), driver {g.DriverVersion}, CUDA {g.CudaVersion}: {string.Join(", ", g.Gpus.Where(x => x.Up).Select(x => $"{x.Identity.Index}:{x.Identity.Name}").Distinct())}");
            if (down.Count > 0)
            {
                report.Fail("nvml", detail + $"; down: {string.Join(", ", down.Select(x => $"GPU {x.Identity.Index} {x.DownReason}"))}",
                    "check `nvidia-smi` and the kernel log (dmesg) for XID errors; a lost GPU needs a reset or reboot");
            }
            else if (g.Gpus.Count == 0)
            {
                report.Warn("nvml", "NVML works but reports no GPUs", "check `nvidia-smi`");
            }
            else
            {
                report.Ok("nvml", detail);
            }
        }
        else
        {
            report.Fail("nvml", snapshot.Gpu?.Problem ?? "not sampled",
                "install the NVIDIA driver (nvidia-smi must work), or set gpu.nvmlLibrary to the library's path; on a machine without GPUs set gpu.enabled=false");
        }

        var docker = services.GetRequiredService<IOptions<DockerOptions>>().Value;
        if (!docker.Enabled)
        {
            report.Warn("docker", "disabled (docker.enabled=false)", "enable it to map Vast instances to GPUs");
        }
        else
        {
            var state = snapshot.Docker ?? new DockerState { Problem = "not sampled" };
            if (state.Up)
            {
                report.Ok("docker", string.Create(CultureInfo.InvariantCulture,
                    $"engine {state.EngineVersion} at {docker.ResolveEndpoint()}: {state.Containers.Count} container(s), {state.Containers.Count(c => c.InstanceId is not null && c.Running)} running Vast instance(s)"));
            }
            else
            {
                report.Fail("docker", state.Problem ?? "unreachable",
                    "is dockerd running? set docker.endpoint (or DOCKER_HOST); the agent's user needs access to the socket (docker group)");
            }
        }

        var vast = services.GetRequiredService<IOptions<VastOptions>>().Value;
        if (!vast.Enabled)
        {
            report.Warn("vast api", "off (vast.enabled=false): telemetry only", "set vast.enabled=true and an API key to see and manage the listing");
        }
        else
        {
            var key = services.GetRequiredService<VastApiKeyProvider>().Get(vast);
            var state = snapshot.Vast;
            if (state is { Up: true, Machine: { } m })
            {
                report.Ok("vast api", $"{vast.BaseUrl}, key from {key.Source}: machine {m.EffectiveId} \"{m.Hostname}\", {(m.Listed == true ? "listed" : "not listed")}, {(m.Online ? "online" : "OFFLINE")}");
            }
            else if (state?.IdentificationProblem is not null)
            {
                report.Fail("vast api", state.Problem ?? state.IdentificationProblem, "set vast.machineId to this machine's id (see `vast-host-agent machine` or the Vast console)");
            }
            else
            {
                report.Fail("vast api", state?.Problem ?? "not reached", $"check vast.baseUrl and the API key (from {key.Source}); `vast-host-agent machine` shows the API's answer");
            }
        }

        var host = services.GetRequiredService<IOptions<HostSensorOptions>>().Value;
        if (host.Hwmon)
        {
            var status = snapshot.Collectors.GetValueOrDefault("hwmon");
            var sensors = snapshot.Sensors ?? [];
            if (status is { Ok: false })
            {
                report.Fail("hwmon", status.Problem ?? "failed", $"check that {host.SysfsRoot}/class/hwmon is readable");
            }
            else if (sensors.Count == 0)
            {
                report.Warn("hwmon", $"no sensors under {host.SysfsRoot}/class/hwmon", "load the board's sensor driver (e.g. `sudo sensors-detect` from lm-sensors)");
            }
            else
            {
                report.Ok("hwmon", string.Create(CultureInfo.InvariantCulture,
                    $"{sensors.Count(s => s.Kind == SensorKind.Temperature)} temperature and {sensors.Count(s => s.Kind == SensorKind.Fan)} fan sensor(s) on {sensors.Select(s => s.Chip).Distinct().Count()} chip(s)"));
            }
        }

        if (host.Disk)
        {
            var status = snapshot.Collectors.GetValueOrDefault("disk");
            if (snapshot.Disk is { } disk)
            {
                var free = disk.TotalBytes == 0 ? 0 : (double)disk.AvailableBytes / disk.TotalBytes;
                var text = string.Create(CultureInfo.InvariantCulture,
                    $"{disk.Path}: {disk.AvailableBytes / 1e9:0.0} GB available of {disk.TotalBytes / 1e9:0.0} GB ({free:P0})");
                if (disk.MeasuredPath != disk.Path)
                {
                    report.Warn("disk", text + $" (path missing; measured {disk.MeasuredPath})", "set host.dockerDataRoot to Docker's data root (`docker info -f '{{.DockerRootDir}}'`)");
                }
                else if (free < 0.1)
                {
                    report.Warn("disk", text, "less than 10 % free: renters' images and volumes will fail to download");
                }
                else
                {
                    report.Ok("disk", text);
                }
            }
            else
            {
                report.Fail("disk", status?.Problem ?? "not sampled", "check host.dockerDataRoot");
            }
        }

        var metrics = services.GetRequiredService<IOptions<MetricsOptions>>().Value;
        var web = string.IsNullOrEmpty(metrics.WebConfigFile) ? WebConfig.Plain : WebConfig.Load(metrics.WebConfigFile); // validated above
        CheckWebConfig(report, metrics, web, services.GetRequiredService<TimeProvider>().GetUtcNow());
        await CheckListenAddressAsync(report, metrics.ParseListenAddress(), web.Tls is not null, cancellationToken).ConfigureAwait(false);

        report.Summary();
        return report.Failed ? ExitCodes.Failure : ExitCodes.Ok;
    }

    /// <summary>What the endpoint asks of scrapers, and a served certificate that has expired or soon will.</summary>
    private static void CheckWebConfig(Report report, MetricsOptions metrics, WebConfig web, DateTimeOffset now)
    {
        if (string.IsNullOrEmpty(metrics.WebConfigFile))
        {
            var loopback = IPAddress.IsLoopback(metrics.ParseListenAddress().Address);
            if (!loopback)
            {
                report.Warn("web config", $"{metrics.ListenAddress} is plain HTTP without authentication beyond loopback", "firewall it to your Prometheus, or set metrics.webConfigFile (TLS, basic auth)");
            }

            return;
        }

        var users = web.BasicAuthUsers.Count == 0 ? "no basic auth" : $"basic auth ({web.BasicAuthUsers.Count} user{(web.BasicAuthUsers.Count == 1 ? "" : "s")})";
        if (web.Tls is not { } tls)
        {
            report.Warn("web config", $"{metrics.WebConfigFile}: plain HTTP, {users}", "add tls_server_config: basic auth over plain HTTP sends the password in clear");
            return;
        }

        using var certificate = WebConfig.LoadCertificate(tls);
        var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime());
        var detail = string.Create(CultureInfo.InvariantCulture, $"{metrics.WebConfigFile}: TLS with {certificate.Subject} (until {notAfter:yyyy-MM-dd}), client certificates {tls.ClientAuth}, {users}");
        if (notAfter <= now)
        {
            report.Fail("web config", detail + ": the certificate has EXPIRED", $"renew {tls.CertFile} and {tls.KeyFile} (the agent serves the new files from the next connection)");
        }
        else if (notAfter - now < TimeSpan.FromDays(14))
        {
            report.Warn("web config", detail + string.Create(CultureInfo.InvariantCulture, $": expires in {(notAfter - now).TotalDays:0} days"), $"renew {tls.CertFile}");
        }
        else
        {
            report.Ok("web config", detail);
        }
    }

    private static async Task CheckListenAddressAsync(Report report, IPEndPoint endpoint, bool tls, CancellationToken cancellationToken)
    {
        using var probe = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            probe.Bind(endpoint);
            report.Ok("metrics", $"{endpoint} is free for the daemon");
            return;
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            // Someone listens there: the running agent, or something else.
        }
        catch (SocketException ex)
        {
            report.Fail("metrics", $"cannot bind {endpoint}: {ex.Message}", "set metrics.listenAddress to an address of this machine");
            return;
        }

        // Only whether our daemon answers is asked here (the certificate is the web config check's business).
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(3) };
        try
        {
            var host = endpoint.Address.Equals(IPAddress.Any) ? IPAddress.Loopback : endpoint.Address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback : endpoint.Address;
            var url = new Uri($"{(tls ? "https" : "http")}://{new IPEndPoint(host, endpoint.Port)}/healthz");
            using var response = await http.GetAsync(url, cancellationToken).ConfigureAwait(false);
            var body = (await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)).Trim().Replace('\n', ';');
            if (response.StatusCode == HttpStatusCode.Unauthorized && response.Headers.WwwAuthenticate.Any(h => h.Scheme == "Basic"))
            {
                report.Ok("metrics", $"the daemon answers on {endpoint} (basic auth required)");
            }
            else if (response.IsSuccessStatusCode)
            {
                report.Ok("metrics", $"the daemon answers on {endpoint}: {body}");
            }
            else
            {
                report.Fail("metrics", $"the daemon on {endpoint} reports {(int)response.StatusCode}: {body}", "see `journalctl -u vast-host-agent`");
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            report.Fail("metrics", tls ? $"{endpoint} is in use, and no TLS session with the daemon there (a client certificate required, or another program)" : $"{endpoint} is in use by another program",
                "choose another port with metrics.listenAddress");
        }
    }

    private sealed class Report(TextWriter output)
    {
        private int _ok;
        private int _warn;
        private int _fail;

        public bool Failed => _fail > 0;

        public void Ok(string check, string detail)
        {
            _ok++;
            output.WriteLine($"[ OK ] {check,-14} {detail}");
        }

        public void Warn(string check, string detail, string hint)
        {
            _warn++;
            output.WriteLine($"[WARN] {check,-14} {detail}");
            output.WriteLine($"       {"",-14} hint: {hint}");
        }

        public void Fail(string check, string detail, string hint)
        {
            _fail++;
            output.WriteLine($"[FAIL] {check,-14} {detail}");
            output.WriteLine($"       {"",-14} hint: {hint}");
        }

        public void Summary() =>
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{_ok} ok, {_warn} warning(s), {_fail} failed"));
    }
}
