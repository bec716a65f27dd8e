using VastEmulator;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Management;

/// <summary>`plan` and `apply --once` as a host runs them, against the emulator.</summary>
public sealed class PlanCommandTests : IAsyncLifetime
{
    private RunningEmulator _emulator = null!;
    private string _dir = null!;

    public async Task InitializeAsync()
    {
        _emulator = await EmulatorApp.StartAsync(new EmulatorOptions { RateLimitScale = 0.02, OfferCount = 1500 });
        _dir = TestEnvironment.NewTempDirectory("plan");
        var key = Path.Combine(_dir, "key");
        await File.WriteAllTextAsync(key, _emulator.ApiKey);
        File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await File.WriteAllTextAsync(Path.Combine(_dir, "agent.json"), $$"""
            {
              "agent": { "stateDirectory": "{{_dir}}/state" },
              "gpu": { "enabled": false }, "docker": { "enabled": false }, "host": { "hwmon": false },
              "vast": { "enabled": true, "baseUrl": "{{_emulator.BaseUrl.GetLeftPart(UriPartial.Authority)}}", "apiKeyFile": "{{key}}", "hostname": "rig-01",
                        "spacingScale": 0.02, "defaultSpacingSeconds": 1 },
              "management": {
                "enabled": true,
                "pricing": { "strategy": "market", "floor": 0.15, "ceiling": 1.5, "maxChangePerStep": 0.5, "cooldown": "00:00:00", "market": { "minPeers": 3 } },
                "minBid": { "mode": "ratio", "ratio": 0.7 },
                "listing": { "storagePrice": 0.11 }
              }
            }
            """);
    }

    public async Task DisposeAsync() => await _emulator.DisposeAsync();

    private string Config => Path.Combine(_dir, "agent.json");

    [Fact]
    public async Task Plan_prints_what_would_change_and_why_and_changes_nothing()
    {
        var (exit, stdout, stderr) = await AgentProcess.RunToExitAsync(["plan", "--config", Config]);
        Assert.True(exit == 0, stderr);
        Assert.Contains("PLAN (nothing is changed): machine 48211 \"rig-01\" (RTX 4090 x8), listed", stdout, StringComparison.Ordinal);
        Assert.Matches(@"Market: \d+ comparable offers \(RTX 4090, 8\+ GPUs, verified, rentable; host share 0\.75 learned from this machine's offers\); p10 [\d.]+, median [\d.]+, p90 [\d.]+", stdout);
        Assert.Matches(@"gpu price\s+\$0\.3370\s+\$[\d.]+\s+change\s+p50 of \d+ comparable offers = [\d.]+", stdout);
        Assert.Matches(@"storage price\s+\$0\.1500\s+\$0\.1100\s+change\s+listing\.storagePrice", stdout);
        Assert.Matches(@"min bid\s+\$0\.2360\s+\$[\d.]+\s+change\s+0\.7 × on-demand", stdout);
        Assert.Contains("Would call:\n  create_asks: price", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(_emulator.State.Requests, r => r.Mutation);
    }

    [Fact]
    public async Task Apply_once_respects_dry_run_until_told_otherwise_then_converges()
    {
        var dry = await AgentProcess.RunToExitAsync(["apply", "--once", "--config", Config]);
        Assert.Equal(0, dry.ExitCode);
        Assert.Contains("APPLY, DRY RUN (management.dryRun=true", dry.Stdout, StringComparison.Ordinal);
        Assert.Contains("dry_run            create_asks", dry.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(_emulator.State.Requests, r => r.Mutation);

        var real = await AgentProcess.RunToExitAsync(["apply", "--once", "--no-dry-run", "--config", Config]);
        Assert.True(real.ExitCode == 0, real.Stdout + real.Stderr);
        Assert.Contains("applied            create_asks", real.Stdout, StringComparison.Ordinal);
        Assert.Single(_emulator.State.Requests, r => r.Mutation && r.Applied);
        Assert.Contains($"Journal: {_dir}/state/journal.jsonl", real.Stdout, StringComparison.Ordinal);

        var again = await AgentProcess.RunToExitAsync(["apply", "--once", "--no-dry-run", "--config", Config]);
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("In sync: no call to make.", again.Stdout, StringComparison.Ordinal);
        Assert.Single(_emulator.State.Requests, r => r.Mutation);

        var journal = await File.ReadAllLinesAsync(Path.Combine(_dir, "state", "journal.jsonl"));
        Assert.Contains(journal, l => l.Contains("\"kind\":\"gpu price\"", StringComparison.Ordinal) && l.Contains("\"dryRun\":true", StringComparison.Ordinal));
        Assert.Contains(journal, l => l.Contains("\"result\":\"applied\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Apply_needs_once_and_a_bad_management_value_names_its_nested_key()
    {
        Assert.Equal(2, (await AgentProcess.RunToExitAsync(["apply", "--config", Config])).ExitCode);

        var bad = Path.Combine(_dir, "bad.json");
        await File.WriteAllTextAsync(bad, """{ "management": { "pricing": { "floor": 2, "ceiling": 1, "market": { "percentil": 50 } }, "minBid": { "mode": "sometimes" } } }""");
        var (exit, _, stderr) = await AgentProcess.RunToExitAsync(["plan", "--config", bad]);
        Assert.Equal(2, exit);
        Assert.Contains("management.pricing.market.percentil: unknown key (known: percentile, multiplier,", stderr, StringComparison.Ordinal);

        await File.WriteAllTextAsync(bad, """{ "management": { "pricing": { "floor": 2, "ceiling": 1 }, "minBid": { "mode": "sometimes" } } }""");
        (exit, _, stderr) = await AgentProcess.RunToExitAsync(["plan", "--config", bad]);
        Assert.Equal(2, exit);
        Assert.Contains("management.minBid.mode: must be off, fixed, ratio or powerCost (got 'sometimes')", stderr, StringComparison.Ordinal);

        // Values that do not convert come first; the rules across fields once every value reads.
        await File.WriteAllTextAsync(bad, """{ "management": { "pricing": { "floor": 2, "ceiling": 1 }, "minBid": { "mode": "ratio" } } }""");
        (exit, _, stderr) = await AgentProcess.RunToExitAsync(["plan", "--config", bad]);
        Assert.Equal(2, exit);
        Assert.Contains("management.pricing.floor: must not exceed pricing.ceiling (1)", stderr, StringComparison.Ordinal);
    }
}
