using System.Globalization;
using System.Runtime.InteropServices;
using VastEmulator;

// Standalone: dotnet run --project tests/VastEmulator -- --port 18080 --seed 42 --api-key KEY --hostname NAME --machines 1 --offers 2000
var options = new EmulatorOptions { Port = 18080 };
var hostnames = new List<string>();
var machines = 1;
var fleet = 0;
var verbose = false;
try
{
    for (var i = 0; i < args.Length; i++)
    {
        string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
        switch (args[i])
        {
            case "--port":
                options.Port = int.Parse(Next(), CultureInfo.InvariantCulture);
                break;
            case "--seed":
                options.Seed = int.Parse(Next(), CultureInfo.InvariantCulture);
                break;
            case "--api-key":
                options.ApiKeys = [Next()];
                break;
            case "--other-api-key":
                options.OtherApiKey = Next();
                break;
            case "--hostname":
                hostnames.Add(Next());
                break;
            case "--machines":
                machines = int.Parse(Next(), CultureInfo.InvariantCulture);
                break;
            case "--fleet":
                // A fleet like FleetSteadyStateTests': rig-0001…, four GPU models and sizes 8/4/1 taken in turn.
                fleet = int.Parse(Next(), CultureInfo.InvariantCulture);
                break;
            case "--gpu":
                options.GpuModel = Next();
                break;
            case "--num-gpus":
                options.NumGpus = int.Parse(Next(), CultureInfo.InvariantCulture);
                break;
            case "--offers":
                options.OfferCount = int.Parse(Next(), CultureInfo.InvariantCulture);
                break;
            case "--duplicates":
                options.DuplicateOfferFraction = double.Parse(Next(), CultureInfo.InvariantCulture);
                break;
            case "--bundles-failure-rate":
                options.BundlesFailureRate = double.Parse(Next(), CultureInfo.InvariantCulture);
                break;
            case "--rate-limit-scale":
                options.RateLimitScale = double.Parse(Next(), CultureInfo.InvariantCulture);
                break;
            case "--no-rate-limit":
                options.RateLimitsEnabled = false;
                break;
            case "--unlisted":
                options.InitiallyListed = false;
                break;
            case "--seed-rentals":
                options.SeedRentals = true;
                break;
            case "--verbose":
                verbose = true;
                break;
            case "-h" or "--help":
                Console.WriteLine("""
                    Vast.ai host API emulator (tests/VastEmulator/README.md)
                      --port N (18080; 0 = any)  --seed N (42)  --api-key KEY  --other-api-key KEY
                      --hostname NAME (repeatable)  --machines N (1)  --gpu "RTX 4090"  --num-gpus 8
                      --fleet N (N machines rig-0001…: RTX 4090, RTX 3090, A100 SXM4, H100 SXM in turn, 8/4/1 GPUs)
                      --offers N (2000)  --duplicates FRACTION (0)  --bundles-failure-rate P (0)
                      --rate-limit-scale X (1.0)  --no-rate-limit  --unlisted  --seed-rentals  --verbose
                    """);
                return 0;
            default:
                throw new ArgumentException($"unknown argument '{args[i]}' (try --help)");
        }
    }
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
{
    await Console.Error.WriteLineAsync("error: " + e.Message).ConfigureAwait(false);
    return 2;
}

if (fleet > 0)
{
    hostnames.AddRange(EmulatorOptions.FleetHostnames(fleet));
    options.MachineGpuModels = ["RTX 4090", "RTX 3090", "A100 SXM4", "H100 SXM"];
    options.MachineGpuCounts = [8, 4, 1];
    machines = hostnames.Count;
}

for (var n = hostnames.Count; n < machines; n++)
{
    hostnames.Add(string.Create(CultureInfo.InvariantCulture, $"rig-{n + 1:00}"));
}

options.MachineHostnames = hostnames.Count > 0 ? hostnames : ["rig-01"];
if (verbose)
{
    options.Log = line => Console.WriteLine(line);
}

await using var emulator = await EmulatorApp.StartAsync(options).ConfigureAwait(false);
Console.WriteLine($"Vast API emulator listening on {emulator.BaseUrl}");
Console.WriteLine($"  API base:  {emulator.ApiUrl}");
Console.WriteLine($"  admin API: {emulator.BaseUrl}_emulator/");
Console.WriteLine($"  API key:   {emulator.ApiKey} (user {emulator.State.PrimaryUserId}, {options.Username})");
Console.WriteLine($"  other key: {emulator.State.OtherApiKey} (user {emulator.State.OtherUserId}, {options.OtherUsername})");
Console.WriteLine($"  machines:  {string.Join(", ", emulator.State.OwnMachineIds)}");
Console.WriteLine("Ctrl+C stops.");

var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    done.TrySetResult();
};
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    done.TrySetResult();
});
await done.Task.ConfigureAwait(false);
Console.WriteLine("stopping");
return 0;
