using System.Text;
using Microsoft.Extensions.Time.Testing;
using VastHostAgent.Kernel;
using VastHostAgent.Maintenance;
using VastHostAgent.Management;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Hosting;

/// <summary>
/// The one state-file type: strict reading (a damaged file is never taken for an empty state), setting aside with
/// a recovery marker that outlives the process, schema versions, and the cross-process lock.
/// </summary>
public sealed class StateFileTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2026-11-30T08:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>What a state file can look like after a crash, a full disk or a careless edit.</summary>
    public static TheoryData<string, string> Damaged => new()
    {
        { "empty", "" },
        { "whitespace", "  \n" },
        { "empty object", "{}" },
        { "null", "null" },
        { "array", "[]" },
        { "truncated", "{\"schemaVersion\":1,\"state\":{\"mutations\":[\"2026-11-30T07:00:00+00:00\"" },
        { "random", "\u0001\u00ff\u0013garbage\u0000bytes" },
        { "no state", "{\"schemaVersion\":1}" },
        { "null where required", "{\"schemaVersion\":1,\"state\":{\"mutations\":null}}" },
        { "newer schema", "{\"schemaVersion\":2,\"state\":{\"mutations\":[]}}" },
        { "invalid", "{\"schemaVersion\":1,\"state\":{\"machineId\":-5,\"mutations\":[]}}" },
    };

    [Theory]
    [MemberData(nameof(Damaged))]
    public void A_damaged_management_state_is_set_aside_reported_and_marked_for_recovery_never_read_as_empty(string what, string content)
    {
        var dir = TestEnvironment.NewTempDirectory("state");
        var path = Path.Combine(dir, ManagementStateStore.FileName);
        File.WriteAllText(path, content);
        var observer = new Observer();
        var store = new ManagementStateStore(dir, new FakeTimeProvider(Now), observer: observer);

        var read = store.Read();
        Assert.NotNull(read.Recovery);
        Assert.False(string.IsNullOrWhiteSpace(read.Recovery!.Problem));
        Assert.Equal($"{ManagementStateStore.FileName}.corrupt-20261130T080000Z", read.Recovery.SetAsideAs);
        Assert.Equal(content, File.ReadAllText(Path.Combine(dir, read.Recovery.SetAsideAs!)));   // kept for the host to look at
        Assert.Equal("management-state.json", Assert.Single(observer.Seen).File);
        _ = what;

        // The marker is in the file: a restart (a new store, another process) still knows a recovery is pending.
        var again = new ManagementStateStore(dir).Read();
        Assert.NotNull(again.Recovery);
        Assert.Equal(read.Recovery.SetAsideAs, again.Recovery!.SetAsideAs);

        // Changes keep the marker until the owner has re-established the state from Vast.
        new ManagementStateStore(dir).Update(s => s with { HostId = 7 });
        Assert.NotNull(new ManagementStateStore(dir).Read().Recovery);
        new ManagementStateStore(dir).Resolve(s => s with { MachineId = 42 });
        var resolved = new ManagementStateStore(dir).Read();
        Assert.Null(resolved.Recovery);
        Assert.Equal((7L, 42L), (resolved.Value.HostId!.Value, resolved.Value.MachineId!.Value));
        Assert.Single(Directory.GetFiles(dir, "*.corrupt-*"));
    }

    [Theory]
    [InlineData(MaintenanceStore.FileName, "{\"schemaVersion\":1,\"state\":{\"windows\":[{\"id\":\"w1\",\"source\":\"cli\"}]}}")]
    [InlineData(MaintenanceStore.FileName, "{\"schemaVersion\":1,\"state\":{\"windows\":[{\"id\":\"w1\",\"source\":\"cli\",\"start\":\"2026-12-01T00:00:00+00:00\",\"duration\":\"02:00:00\",\"category\":\"gpu\",\"state\":\"exploded\",\"history\":[]}]}}")]
    [InlineData(FaultGuardStore.FileName, "{\"tripped\":true}")]
    [InlineData(FaultGuardStore.FileName, "{\"schemaVersion\":1,\"state\":{\"tripped\":true,\"since\":{},\"trips\":[]}}")]
    public void Incomplete_or_inconsistent_maintenance_and_guard_files_are_set_aside(string file, string content)
    {
        var dir = TestEnvironment.NewTempDirectory("state");
        File.WriteAllText(Path.Combine(dir, file), content);
        var recovery = file == MaintenanceStore.FileName ? new MaintenanceStore(dir).Read().Recovery : new FaultGuardStore(dir).Read().Recovery;
        Assert.NotNull(recovery);
        Assert.True(File.Exists(Path.Combine(dir, recovery!.SetAsideAs!)));
    }

    [Fact]
    public void A_file_written_before_schema_versions_is_read_and_rewritten_with_one()
    {
        var dir = TestEnvironment.NewTempDirectory("state");
        var path = Path.Combine(dir, FaultGuardStore.FileName);
        File.WriteAllText(path, """
            {"tripped":true,"trippedAt":"2026-11-30T07:00:00+00:00","reason":"gpu_lost: GPU 1 GPU_IS_LOST","since":{"gpu_lost":"2026-11-30T06:55:00+00:00"},"trips":["2026-11-30T07:00:00+00:00"],"eccSeen":{},"eccRoseAt":{}}
            """);
        var store = new FaultGuardStore(dir);
        var read = store.Read();
        Assert.Null(read.Recovery);
        Assert.True(read.Value.Tripped);
        Assert.Equal("gpu_lost: GPU 1 GPU_IS_LOST", read.Value.Reason);

        store.Save(read.Value with { ClearSince = Now });
        Assert.Contains("\"schemaVersion\": 1", File.ReadAllText(path), StringComparison.Ordinal);
        Assert.Equal(Now, new FaultGuardStore(dir).Load().ClearSince);
    }

    [Fact]
    public void Every_optional_value_left_empty_is_read_back_as_written_not_taken_for_a_damaged_file()
    {
        // The files omit nulls: a listing sent with a rolling duration has no end date, a default job may have no price.
        var dir = TestEnvironment.NewTempDirectory("state");
        var applied = new AppliedListing(Now, "fixed price", EndDate: null, Duration: "2592000");
        new ManagementStateStore(dir).Update(s => s with { LastApplied = applied });
        var management = new ManagementStateStore(dir).Read();
        Assert.Null(management.Recovery);
        Assert.Equal(applied, management.Value.LastApplied);

        var job = new SavedDefaultJob("vastai/idle:1", [], null);
        new FaultGuardStore(dir).Save(new FaultGuardState { SavedDefaultJob = job });
        var guard = new FaultGuardStore(dir).Read();
        Assert.Null(guard.Recovery);
        Assert.Equal(job.Image, guard.Value.SavedDefaultJob!.Image);
        Assert.Null(guard.Value.SavedDefaultJob.Price);
        Assert.Empty(Directory.GetFiles(dir, "*.corrupt-*"));
    }

    [Fact]
    public void A_missing_file_is_the_empty_state_without_a_recovery()
    {
        var dir = TestEnvironment.NewTempDirectory("state");
        var read = new MaintenanceStore(Path.Combine(dir, "not-yet")).Read();
        Assert.Null(read.Recovery);
        Assert.Empty(read.Value.Windows);
    }

    [Fact]
    public async Task Writers_in_separate_stores_never_lose_each_others_updates()
    {
        // Each store stands for a process (the daemon, `apply --once`, `maint schedule`): only the file lock
        // serialises them. Without it, read-modify-write cycles interleave and updates are lost.
        var dir = TestEnvironment.NewTempDirectory("state");
        const int Writers = 4;
        const int Each = 40;
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            var store = new ManagementStateStore(dir);
            await start.Task;
            for (var i = 0; i < Each; i++)
            {
                store.Update(s => s with { Mutations = [.. s.Mutations, Now.AddSeconds((w * Each) + i)] });
            }
        })).ToList();
        start.SetResult();
        await Task.WhenAll(tasks);

        var all = new ManagementStateStore(dir).Load().Mutations;
        Assert.Equal(Writers * Each, all.Count);
        Assert.Equal(Writers * Each, all.Distinct().Count());
    }

    [Fact]
    public void The_journal_skips_a_torn_line_instead_of_failing()
    {
        var dir = TestEnvironment.NewTempDirectory("journal");
        var journal = new DecisionJournal(dir, 1024 * 1024);
        journal.Write([JournalEntries.Mutation(Now, 1, "unlist", MutationResult.Applied, false, "unlist: fault guard: gpu_lost")]);
        File.AppendAllText(journal.Path, "{\"time\":\"2026-11-30T08:0", Encoding.UTF8);
        File.AppendAllText(journal.Path, "\n");
        Assert.Single(journal.Tail(10));
        Assert.Equal("fault guard: gpu_lost", journal.LastUnlistByAgent(1));
        Assert.Null(journal.LastUnlistByAgent(2));
    }

    private sealed class Observer : IStateFileObserver
    {
        public List<(string File, StateFileRecovery Recovery)> Seen { get; } = [];

        public void Observed(string file, string path, StateFileRecovery? recovery, bool resolvedNow)
        {
            if (recovery is not null && !Seen.Any(s => s.File == file))
            {
                Seen.Add((file, recovery));
            }
        }
    }
}
