using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using VastHostAgent.Cli;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;
using VastHostAgent.Rentals;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Rentals;

/// <summary>
/// The rental ledger file (appends, rotation, damaged lines, the since filter) and the tracker that turns Docker
/// and GPU snapshots and Docker's replayed events into runs.
/// </summary>
public sealed class RentalLedgerTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.Parse("2026-12-01T10:00:00Z", CultureInfo.InvariantCulture);
    private const string Id1 = "1111111111111111111111111111111111111111111111111111111111111111";
    private const string Id2 = "2222222222222222222222222222222222222222222222222222222222222222";
    private const string Uuid0 = "GPU-aaaaaaaa-0000-4000-8000-000000000000";
    private const string Uuid1 = "GPU-aaaaaaaa-0000-4000-8000-000000000001";

    private static RentalRecord Record(string id, long instance, DateTimeOffset start, DateTimeOffset? stop = null, DateTimeOffset? recorded = null) => new()
    {
        Run = RentalRecord.Key(id, start),
        InstanceId = instance,
        ContainerId = id,
        Image = "pytorch/pytorch:latest",
        Gpus = [Uuid0],
        StartedAt = start,
        StoppedAt = stop,
        ExitCode = stop is null ? null : 0,
        GpuHours = stop is { } s ? (s - start).TotalHours : 0,
        RecordedAt = recorded ?? stop ?? start,
    };

    [Fact]
    public void Appended_records_read_back_and_the_last_line_of_a_run_wins()
    {
        var dir = TestEnvironment.NewTempDirectory("ledger");
        var file = new RentalLedgerFile(dir, 1024 * 1024, 3);
        file.Append([Record(Id1, 101, T0)]);
        file.Append([Record(Id2, 102, T0.AddMinutes(1)), Record(Id1, 101, T0, T0.AddHours(2))]);

        var read = file.Read();
        Assert.Equal(3, read.Lines.Count);
        Assert.Equal(0, read.Damaged);
        var runs = read.Runs();
        Assert.Equal([101L, 102L], runs.Select(r => r.InstanceId));
        Assert.Equal(T0.AddHours(2), runs[0].StoppedAt);
        Assert.True(runs[1].Running);
        Assert.Equal(T0.AddHours(2), read.LastRecordedAt);
        Assert.All(File.ReadAllLines(file.Path), l => Assert.StartsWith("{\"run\":", l, StringComparison.Ordinal));
    }

    [Fact]
    public void The_file_rotates_by_size_and_keeps_the_configured_number_of_files()
    {
        var dir = TestEnvironment.NewTempDirectory("ledger-rotate");
        var lineBytes = Encoding.UTF8.GetByteCount(RentalLedgerFile.ToLine(Record(Id1, 1, T0, T0.AddHours(1)))) + 1;
        var max = (lineBytes * 3) + 10; // three lines (instance ids of two digits are a byte longer), never four
        var file = new RentalLedgerFile(dir, max, 3);
        for (var i = 1; i <= 20; i++)
        {
            file.Append([Record(Id1, i, T0.AddHours(i), T0.AddHours(i + 1))]);
        }

        Assert.Equal(["rentals.jsonl", "rentals.jsonl.1", "rentals.jsonl.2"], Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.All(Directory.GetFiles(dir), f => Assert.True(new FileInfo(f).Length <= max, f));
        var runs = file.Read().Runs();
        Assert.Equal(Enumerable.Range(13, 8).Select(i => (long)i), runs.Select(r => r.InstanceId)); // 13-15, 16-18 rotated; 19-20 current
    }

    [Fact]
    public void Damaged_and_partial_lines_are_skipped_and_counted_and_the_next_append_stays_whole()
    {
        var dir = TestEnvironment.NewTempDirectory("ledger-damaged");
        var file = new RentalLedgerFile(dir, 1024 * 1024, 2);
        var good = RentalLedgerFile.ToLine(Record(Id1, 101, T0, T0.AddHours(1)));
        var content = string.Join('\n',
            good,
            "not json at all",
            "{\"run\":\"x\"}", // required members missing
            RentalLedgerFile.ToLine(Record(Id2, 102, T0.AddHours(3), T0.AddHours(2))), // stopped before it started
            "",
            good[..40]); // a write cut short by a power cut: no newline
        File.WriteAllText(file.Path, content);

        var read = file.Read();
        Assert.Equal(4, read.Damaged);
        Assert.StartsWith("rentals.jsonl line 2:", read.FirstProblem, StringComparison.Ordinal);
        Assert.Equal([101L], read.Runs().Select(r => r.InstanceId));

        // The next append closes the partial line off: the new record is whole, the partial one stays damaged.
        file.Append([Record(Id2, 103, T0.AddHours(5))]);
        var after = new RentalLedgerFile(dir, 1024 * 1024, 2).Read();
        Assert.Equal([101L, 103L], after.Runs().Select(r => r.InstanceId));
        Assert.Equal(4, after.Damaged);
    }

    [Fact]
    public async Task An_append_is_one_whole_line_per_record_even_when_another_process_reads_meanwhile()
    {
        var dir = TestEnvironment.NewTempDirectory("ledger-atomic");
        var file = new RentalLedgerFile(dir, 64 * 1024 * 1024, 2);
        using var stop = new CancellationTokenSource();
        var damagedSeen = 0;
        var reader = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                // A reader sees whole lines, or at worst the last one in the middle of being written (counted, never a crash).
                var read = new RentalLedgerFile(dir, 64 * 1024 * 1024, 2).Read();
                damagedSeen = Math.Max(damagedSeen, read.Damaged);
            }
        });
        for (var i = 1; i <= 300; i++)
        {
            file.Append([Record(Id1, i, T0.AddMinutes(i), T0.AddMinutes(i + 1))]);
        }

        await stop.CancelAsync();
        await reader.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(damagedSeen <= 1, $"{damagedSeen} damaged lines seen at once");
        var final = file.Read();
        Assert.Equal(0, final.Damaged);
        Assert.Equal(300, final.Runs().Count);
    }

    [Fact]
    public void Since_keeps_runs_that_ended_after_it_or_still_run()
    {
        IReadOnlyList<RentalRecord> runs = [Record(Id1, 1, T0, T0.AddHours(1)), Record(Id1, 2, T0.AddHours(2), T0.AddHours(5)), Record(Id2, 3, T0.AddHours(3))];
        Assert.Equal([2L, 3L], RentalsCommand.Select(runs, T0.AddHours(4)).Select(r => r.InstanceId));
        Assert.Equal([1L, 2L, 3L], RentalsCommand.Select(runs, null).Select(r => r.InstanceId));
        Assert.Equal(T0.AddDays(-7), RentalsCommand.ParseSince("7d", T0));
        Assert.Equal(T0.AddMinutes(-90), RentalsCommand.ParseSince("90m", T0));
        Assert.Equal(DateTimeOffset.Parse("2026-11-01T00:00:00Z", CultureInfo.InvariantCulture), RentalsCommand.ParseSince("2026-11-01", T0));
        Assert.Equal(DateTimeOffset.Parse("2026-11-01T02:00:00Z", CultureInfo.InvariantCulture), RentalsCommand.ParseSince("2026-11-01T04:00+02:00", T0));
        Assert.Null(RentalsCommand.ParseSince("last tuesday", T0));

        var table = RentalsCommand.Render(runs, T0.AddHours(4), "/var/lib/vast-host-agent/rentals.jsonl");
        Assert.Matches(@"(?m)^INSTANCE\s+IMAGE\s+GPUS\s+START\s+END\s+DURATION\s+GPU-H\s+KWH\s+EXIT$", table);
        Assert.Matches(@"(?m)^2\s+pytorch/pytorch:latest\s+1 \(aaaaaaaa\)\s+2026-12-01 12:00:00Z\s+2026-12-01 15:00:00Z\s+3h00m\s+3\.00\s+0\.000\s+0$", table);
        Assert.Matches(@"(?m)^3\s+.*running\s+1h00m\s+1\.00\s+0\.000\s+-$", table);
    }

    // ---- the tracker

    private static ContainerInfo Container(string id, string name, string state, DateTimeOffset? started, DateTimeOffset? finished = null,
        long? exit = null, bool oom = false, long restarts = 0, params string[] gpus) => new()
        {
            Id = id,
            Name = name,
            InstanceId = VastNames.InstanceId(name),
            Image = "vastai/base:cuda-12",
            ImageDigest = "sha256:" + new string('c', 64),
            State = state,
            CreatedAt = started?.AddSeconds(-1),
            StartedAt = started,
            FinishedAt = finished,
            ExitCode = exit,
            OomKilled = oom,
            RestartCount = restarts,
            Gpus = new ContainerGpuRequest(false, gpus, [], ["env"]),
        };

    private static HostSnapshot Snapshot(DateTimeOffset gpuRun, double energy0, double energy1, ulong memory, params ContainerInfo[] containers)
    {
        GpuReading Gpu(int i, string uuid, double energy) => new()
        {
            Identity = new GpuIdentity(i, uuid, "NVIDIA GeForce RTX 4090", $"00000000:0{i}:00.0", i, null, null),
            EnergyConsumedJoules = energy,
            PowerUsageWatts = 300,
        };

        var snapshot = HostSnapshot.Empty
            .WithDocker(new DockerState { Up = true, Containers = containers })
            .WithGpu(new GpuSample { NvmlUp = true, Gpus = [Gpu(0, Uuid0, energy0), Gpu(1, Uuid1, energy1)] })
            .WithContainerGpuProcesses(memory > 0 ? [new ContainerGpuProcesses(Id1, Uuid0, 0, memory, 1)] : []);
        return snapshot with
        {
            Collectors = ImmutableDictionary<string, CollectorStatus>.Empty.Add("gpu", new CollectorStatus("gpu", gpuRun, gpuRun, TimeSpan.Zero, true, null, TimeSpan.FromMinutes(1))),
        };
    }

    [Fact]
    public void A_run_is_opened_measured_and_closed_with_its_exit_energy_memory_peak_and_GPU_hours()
    {
        var tracker = new RentalTracker();
        var start = T0;
        Assert.Empty(tracker.Observe(Snapshot(T0.AddSeconds(-5), 1000, 5000, 0), T0.AddSeconds(-5)).Write); // nothing yet

        var running = Container(Id1, "C.7001", "running", start, gpus: ["0", "1"]);
        var opened = tracker.Observe(Snapshot(T0.AddSeconds(1), 1000, 5000, 0, running), T0.AddSeconds(1));
        var first = Assert.Single(opened.Write);
        Assert.Equal(1, opened.Started);
        Assert.Equal(7001, first.InstanceId);
        Assert.Equal([Uuid0, Uuid1], first.Gpus);
        Assert.Equal("sha256:" + new string('c', 64), first.ImageDigest);
        Assert.True(first.Running);
        Assert.Equal(1, tracker.Running);

        // Two GPU samples: 600 J + 400 J used; the container's processes peak at 3 GiB.
        Assert.Empty(tracker.Observe(Snapshot(T0.AddSeconds(6), 1600, 5400, 3UL << 30, running), T0.AddSeconds(6)).Write);
        Assert.Empty(tracker.Observe(Snapshot(T0.AddSeconds(11), 2000, 5600, 1UL << 30, running), T0.AddSeconds(11)).Write);

        var exited = Container(Id1, "C.7001", "exited", start, start.AddSeconds(3600), exit: 3, oom: true, gpus: ["0", "1"]);
        var closed = tracker.Observe(Snapshot(T0.AddSeconds(3601), 2000, 5600, 0, exited), T0.AddSeconds(3601));
        var record = Assert.Single(closed.Write);
        Assert.Equal(start.AddHours(1), record.StoppedAt);
        Assert.False(record.StopEstimated);
        Assert.Equal(3, record.ExitCode);
        Assert.True(record.OomKilled);
        Assert.Equal(2.0, record.GpuHours, 6);
        Assert.Equal(1600, record.EnergyJoules, 6);
        Assert.Equal(3UL << 30, record.PeakGpuMemoryBytes);
        Assert.Equal([TimeSpan.FromHours(1)], closed.Ended);
        Assert.Equal(0, tracker.Running);

        // The exited container stays in Docker: it is not recorded again.
        Assert.Empty(tracker.Observe(Snapshot(T0.AddSeconds(3700), 2000, 5600, 0, exited), T0.AddSeconds(3700)).Write);
    }

    [Fact]
    public void After_a_restart_the_ledger_runs_continue_and_events_recover_what_came_and_went()
    {
        // The ledger: C.8001 running (last line at T0+10 min), C.8002 ended.
        var tracker = new RentalTracker();
        tracker.Load([Record(Id1, 8001, T0, null, T0.AddMinutes(10)), Record(Id2, 8002, T0, T0.AddMinutes(5))], T0.AddMinutes(10));
        Assert.Equal(1, tracker.Running);

        // While away: C.8001 died at +20 min (exit 137); C.8003 came and went; C.8004 started and runs.
        const string Id3 = "3333333333333333333333333333333333333333333333333333333333333333";
        const string Id4 = "4444444444444444444444444444444444444444444444444444444444444444";
        var steps = new[]
        {
            tracker.ApplyEvent("die", Id1, "C.8001", T0.AddMinutes(20), new Dictionary<string, string> { ["exitCode"] = "137" }),
            tracker.ApplyEvent("start", Id3, "C.8003", T0.AddMinutes(21), new Dictionary<string, string> { ["image"] = "tiny:latest" }),
            tracker.ApplyEvent("oom", Id3, "C.8003", T0.AddMinutes(22), null),
            tracker.ApplyEvent("die", Id3, "C.8003", T0.AddMinutes(22), new Dictionary<string, string> { ["exitCode"] = "137" }),
            tracker.ApplyEvent("start", Id4, "C.8004", T0.AddMinutes(23), null),
            tracker.ApplyEvent("start", Id4, "hostjob", T0.AddMinutes(23), null),
        };
        var written = steps.SelectMany(s => s.Write).ToList();
        var c8001 = written.Single(r => r.InstanceId == 8001);
        Assert.Equal(T0.AddMinutes(20), c8001.StoppedAt);
        Assert.Equal(137, c8001.ExitCode);
        var c8003 = written.Where(r => r.InstanceId == 8003).Last();
        Assert.Equal((T0.AddMinutes(21), T0.AddMinutes(22)), (c8003.StartedAt, c8003.StoppedAt!.Value));
        Assert.True(c8003.OomKilled);
        Assert.Equal("events", c8003.Source);
        Assert.Equal(2, steps.Sum(s => s.Started));

        // The first snapshot: C.8004 running (started 0.3 s off the event's time: the same run), C.8003 removed.
        var c8004 = Container(Id4, "C.8004", "running", T0.AddMinutes(23).AddMilliseconds(300), gpus: ["1"]);
        var step = tracker.Observe(Snapshot(T0.AddMinutes(30), 0, 0, 0, c8004), T0.AddMinutes(30));
        Assert.Empty(step.Write);
        Assert.Equal(0, step.Started);
        Assert.Equal(1, tracker.Running);
        Assert.Equal([Uuid1], Assert.Single(tracker.Checkpoint(T0.AddMinutes(30))).Gpus);
    }

    [Fact]
    public void A_container_that_started_while_the_agent_was_away_is_recorded_from_its_start_and_a_removed_one_is_closed_as_estimated()
    {
        var tracker = new RentalTracker();
        tracker.Load([Record(Id2, 9002, T0, null, T0.AddMinutes(10))], T0.AddMinutes(10));
        var running = Container(Id1, "C.9001", "running", T0.AddMinutes(15), gpus: ["0"]);
        var step = tracker.Observe(Snapshot(T0.AddMinutes(30), 0, 0, 0, running), T0.AddMinutes(30));

        var opened = step.Write.Single(r => r.InstanceId == 9001);
        Assert.Equal(T0.AddMinutes(15), opened.StartedAt);
        Assert.Equal("inspect", opened.Source);
        var gone = step.Write.Single(r => r.InstanceId == 9002);
        Assert.True(gone.StopEstimated);
        Assert.Equal(T0.AddMinutes(10), gone.StoppedAt);
        Assert.Equal(1, step.Started);
        Assert.Equal(15 * 60, step.GpuSeconds, 6); // 9001: 15 min on 1 GPU; 9002: nothing after the ledger's last line
    }
}
