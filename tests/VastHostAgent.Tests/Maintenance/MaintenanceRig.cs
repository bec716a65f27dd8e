using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using VastEmulator;
using VastHostAgent.Kernel;
using VastHostAgent.Maintenance;
using VastHostAgent.Management;
using VastHostAgent.Tests.Support;
using VastHostAgent.Tests.Vast;

namespace VastHostAgent.Tests.Maintenance;

/// <summary>
/// The agent's management and maintenance wired as in the daemon, against the emulator, both on one fake
/// clock: days of a window's life in milliseconds. "Restart" builds a fresh agent on the same state directory.
/// </summary>
internal sealed class MaintenanceRig : IAsyncDisposable
{
    public const string JobImage = "hostco/idle-miner:2";

    private Dictionary<string, string?> _settings;

    private MaintenanceRig(FakeTimeProvider clock, RunningEmulator emulator, string stateDirectory, Dictionary<string, string?> settings)
    {
        Clock = clock;
        Emulator = emulator;
        StateDirectory = stateDirectory;
        _settings = settings;
        Host = VastTestClient.Create(settings, emulator.BaseUrl, emulator.ApiKey, clock);
    }

    public FakeTimeProvider Clock { get; }

    public RunningEmulator Emulator { get; }

    public string StateDirectory { get; }

    public VastTestClient Host { get; private set; }

    public int MachineId => Emulator.State.OwnMachineIds[0];

    public DateTimeOffset Now => Clock.GetUtcNow();

    public MaintenanceBook Book => new MaintenanceStore(StateDirectory).Load();

    public JsonObject Machine => Emulator.State.MachineJson(MachineId)!;

    public static readonly DateTimeOffset DefaultStart = DateTimeOffset.Parse("2026-11-30T08:00:00Z", CultureInfo.InvariantCulture);

    /// <summary>
    /// A rig whose listing is in sync with the configuration (fixed price = the listed price, a default job
    /// present), so every mutation in the request log comes from maintenance or the guard.
    /// </summary>
    public static async Task<MaintenanceRig> StartAsync(Dictionary<string, string?>? settings = null, DateTimeOffset? start = null, bool seedRentals = false)
    {
        var clock = new FakeTimeProvider(start ?? DefaultStart);
        var emulator = await EmulatorApp.StartAsync(new EmulatorOptions
        {
            TimeProvider = clock,
            OfferCount = 50,
            RateLimitsEnabled = false,
            SeedRentals = seedRentals,
        });
        var id = emulator.State.OwnMachineIds[0];
        var price = emulator.State.MachineJson(id)!["listed_gpu_cost"]!.GetValue<double>();
        var all = new Dictionary<string, string?>
        {
            ["vast:machineId"] = id.ToString(CultureInfo.InvariantCulture),
            ["vast:spacingScale"] = "0.001",
            ["vast:defaultSpacingSeconds"] = "0.1",
            ["vast:requestTimeout"] = "00:05:00",
            ["gpu:enabled"] = "false",
            ["host:hwmon"] = "false",
            ["host:disk"] = "false",
            ["agent:stateDirectory"] = TestEnvironment.NewTempDirectory("maint"),
            ["management:enabled"] = "true",
            ["management:dryRun"] = "false",
            ["management:mutationBudgetPerHour"] = "60",
            ["management:pricing:strategy"] = "fixed",
            ["management:pricing:fixedPrice"] = price.ToString(CultureInfo.InvariantCulture),
            ["management:pricing:floor"] = "0.01",
            ["management:pricing:ceiling"] = "5",
            ["management:pricing:cooldown"] = "00:00:00",
            ["management:defaultJob:mode"] = "present",
            ["management:defaultJob:image"] = JobImage,
            ["management:defaultJob:price"] = "0.05",
            ["maintenance:noticePeriod"] = "02:00:00",
        };
        foreach (var (k, v) in settings ?? [])
        {
            all[k] = v;
        }

        var rig = new MaintenanceRig(clock, emulator, all["agent:stateDirectory"]!, all);
        return rig;
    }

    /// <summary>One reconcile as the daemon runs it, on the fake clock (<see cref="PumpAsync{T}"/>).</summary>
    public Task<ReconcileReport> ReconcileAsync(bool dryRun = false) =>
        PumpAsync(Host.Services.GetRequiredService<Reconciler>().RunAsync(apply: true, dryRun: dryRun, default));

    /// <summary>What `plan` would show now (nothing changed, nothing journaled).</summary>
    public Task<ReconcileReport> PlanAsync() =>
        PumpAsync(Host.Services.GetRequiredService<Reconciler>().RunAsync(apply: false, dryRun: true, default));

    /// <summary>
    /// Runs the clock until <paramref name="work"/> is done. While an HTTP call to the emulator is in flight, or
    /// at any time when a maintenance hook (a real process the clock times out) is configured, the clock runs at
    /// 5 ms per real millisecond.
    /// </summary>
    public Task<T> PumpAsync<T>(Task<T> work) => FakeClock.PumpAsync(work, Clock, TimeSpan.FromMilliseconds(5), TimeSpan.FromHours(1), RealWorkInFlight);

    /// <inheritdoc cref="PumpAsync{T}(Task{T})"/>
    public Task PumpUntilAsync(Func<bool> condition, string what) =>
        FakeClock.PumpUntilAsync(condition, Clock, TimeSpan.FromMilliseconds(5), TimeSpan.FromHours(1), what, RealWorkInFlight);

    private bool RealWorkInFlight() => Host.InFlight || HasHooks;

    private bool HasHooks => !string.IsNullOrEmpty(_settings.GetValueOrDefault("maintenance:startHook")) || !string.IsNullOrEmpty(_settings.GetValueOrDefault("maintenance:endHook"));

    /// <summary>Moves the clock to <paramref name="at"/> (forward only) and reconciles.</summary>
    public async Task<ReconcileReport> ReconcileAtAsync(DateTimeOffset at, bool dryRun = false)
    {
        if (at > Now)
        {
            Clock.Advance(at - Now);
        }

        return await ReconcileAsync(dryRun);
    }

    /// <summary>A new agent on the same state directory, emulator and clock (a restart).</summary>
    public async Task RestartAsync()
    {
        await Host.DisposeAsync();
        Host = VastTestClient.Create(_settings, Emulator.BaseUrl, Emulator.ApiKey, Clock);
    }

    /// <summary>A restart with changed configuration.</summary>
    public async Task RestartWithAsync(Func<Dictionary<string, string?>, Dictionary<string, string?>> change)
    {
        _settings = change(new Dictionary<string, string?>(_settings));
        await RestartAsync();
    }

    public void Publish(Func<HostSnapshot, HostSnapshot> change) => Host.Services.GetRequiredService<SnapshotStore>().Update(change);

    public MaintenanceWindow Window(string id) => Book.Windows.Single(w => w.Id == id);

    /// <summary>Requests to <paramref name="endpoint"/> that changed something on the emulator.</summary>
    public int Applied(string endpoint) => Emulator.State.Requests.Count(r => r.Endpoint == endpoint && r.Applied);

    public int Requests(string endpoint) => Emulator.State.Requests.Count(r => r.Endpoint == endpoint);

    public bool Listed => Machine["listed"]!.GetValue<bool>();

    public string? DefaultJob => (string?)Machine["bid_image"];

    public double? EndDate => Machine["end_date"]?.GetValue<double>();

    public int VastWindows => Machine["machine_maintenance"] is JsonArray a ? a.Count : 0;

    public void Cancel(string id) =>
        new MaintenanceStore(StateDirectory).Update(b => b with { Windows = [.. b.Windows.Select(w => w.Id == id ? w with { CancelRequested = true } : w)] });

    public IReadOnlyList<JournalEntry> Journal() => Host.Services.GetRequiredService<DecisionJournal>().Tail(10_000);

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        await Emulator.DisposeAsync();
    }
}
