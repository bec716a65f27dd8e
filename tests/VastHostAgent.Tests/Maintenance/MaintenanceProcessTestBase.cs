using System.Diagnostics;
using System.Globalization;
using VastEmulator;
using VastHostAgent.Maintenance;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Maintenance;

/// <summary>
/// The real agent process against the emulator (one per test): what the maintenance and fault-guard process
/// tests share. The tests are in one class per area so that they run in parallel.
/// </summary>
public abstract class MaintenanceProcessTestBase : IAsyncLifetime
{
    protected const string JobImage = "hostco/idle-miner:2";

    protected RunningEmulator Emulator { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Emulator = await EmulatorApp.StartAsync(new EmulatorOptions { RateLimitScale = 0.02, OfferCount = 100 });

    public async Task DisposeAsync() => await Emulator.DisposeAsync();

    protected int MachineId => Emulator.State.OwnMachineIds[0];

    protected bool Listed => Emulator.State.MachineJson(MachineId)!["listed"]!.GetValue<bool>();

    protected int Applied(string endpoint) => Emulator.State.Requests.Count(r => r.Endpoint == endpoint && r.Applied);

    protected int Sent(string endpoint) => Emulator.State.Requests.Count(r => r.Endpoint == endpoint);

    protected AgentConfig Config(string dir, FakeNvmlState? nvml = null, string? dockerDataRoot = null, bool disk = false, params (string Key, string Value)[] extra)
    {
        var keyFile = Path.Combine(dir, "vast.key");
        File.WriteAllText(keyFile, Emulator.ApiKey);
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        nvml ??= new FakeNvmlState(dir, new Dictionary<string, string> { ["gpus"] = "2" });
        var price = Emulator.State.MachineJson(MachineId)!["listed_gpu_cost"]!.GetValue<double>();
        var config = new AgentConfig
        {
            WorkDirectory = dir,
            Port = AgentProcess.FreePort(),
            FakeNvmlState = nvml.Path,
            DockerDataRoot = dockerDataRoot,
            Environment =
            {
                ["VASTHOST_HOST__DISK"] = disk ? "true" : "false",
                ["VASTHOST_HOST__HWMON"] = "false",
                ["VASTHOST_VAST__ENABLED"] = "true",
                ["VASTHOST_VAST__BASEURL"] = Emulator.BaseUrl.GetLeftPart(UriPartial.Authority),
                ["VASTHOST_VAST__APIKEYFILE"] = keyFile,
                ["VASTHOST_VAST__MACHINEID"] = MachineId.ToString(CultureInfo.InvariantCulture),
                ["VASTHOST_VAST__SPACINGSCALE"] = "0.02",
                ["VASTHOST_VAST__DEFAULTSPACINGSECONDS"] = "1",
                ["VASTHOST_VAST__REQUESTTIMEOUT"] = "00:00:05",
                ["VASTHOST_MANAGEMENT__ENABLED"] = "true",
                ["VASTHOST_MANAGEMENT__DRYRUN"] = "false",
                ["VASTHOST_MANAGEMENT__RECONCILEINTERVAL"] = "00:00:01",
                ["VASTHOST_MANAGEMENT__MUTATIONBUDGETPERHOUR"] = "100",
                ["VASTHOST_MANAGEMENT__UNKNOWNOUTCOMEQUARANTINE"] = "00:00:01", // 3 × the request timeout: 15 s
                ["VASTHOST_MANAGEMENT__PRICING__STRATEGY"] = "fixed",
                ["VASTHOST_MANAGEMENT__PRICING__FIXEDPRICE"] = price.ToString(CultureInfo.InvariantCulture),
                ["VASTHOST_MANAGEMENT__PRICING__COOLDOWN"] = "00:00:00",
                ["VASTHOST_MANAGEMENT__DEFAULTJOB__MODE"] = "present",
                ["VASTHOST_MANAGEMENT__DEFAULTJOB__IMAGE"] = JobImage,
            },
        };
        foreach (var (k, v) in extra)
        {
            config.Environment[k] = v;
        }

        // Written once so the maint commands can use the same configuration file as the daemon.
        File.WriteAllText(Path.Combine(dir, "agent.json"), config.ToJson(config.Port!.Value, dir));
        return config;
    }

    protected static Task<(int ExitCode, string Stdout, string Stderr)> Cli(AgentConfig config, params string[] args) =>
        AgentProcess.RunToExitAsync([.. args, "--config", Path.Combine(config.WorkDirectory!, "agent.json")], config.Environment);

    protected static string? WindowState(AgentConfig config, string id)
    {
        // Through the agent's own store: the file is written atomically, so a read never sees half of it.
        return new MaintenanceStore(Path.Combine(config.WorkDirectory!, "state")).Load().Windows.FirstOrDefault(w => w.Id == id)?.State.ToString();
    }

    protected static async Task<(int ExitCode, string Output)> RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)!;
        var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, output);
    }
}
