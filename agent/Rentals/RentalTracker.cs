using System.Globalization;
using VastHostAgent.Containers;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;

namespace VastHostAgent.Rentals;

/// <summary>What one step of the tracker changed: lines to append and figures for the metrics.</summary>
/// <param name="Write">Records to append (opened, ended or checkpointed runs).</param>
/// <param name="Started">Runs that began (new to the ledger).</param>
/// <param name="Ended">Runs that ended, with their length.</param>
/// <param name="GpuSeconds">GPU-seconds of rentals counted in this step.</param>
public sealed record RentalStep(IReadOnlyList<RentalRecord> Write, int Started, IReadOnlyList<TimeSpan> Ended, double GpuSeconds)
{
    public static readonly RentalStep None = new([], 0, [], 0);
}

/// <summary>
/// Turns what the agent sees of Docker and the GPUs into ledger records. A run is a container <c>C.&lt;id&gt;</c>
/// from a start to the stop that ends it (restarts Docker makes under the restart policy belong to the run).
/// Fed with the ledger's runs at start, Docker's events from while the agent was away, then every published
/// snapshot. Pure (no I/O) and not thread-safe: one caller, the ledger service.
/// </summary>
public sealed class RentalTracker
{
    /// <summary>Two start times this close are the same start (an event's time and inspect's StartedAt differ by milliseconds).</summary>
    private static readonly TimeSpan SameStart = TimeSpan.FromSeconds(2);

    /// <summary>A GPU sample step longer than this (the agent stalled) adds at most this much power × time.</summary>
    private static readonly TimeSpan MaxStep = TimeSpan.FromMinutes(5);

    private readonly Dictionary<string, OpenRun> _open = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<DateTimeOffset>> _knownStarts = new(StringComparer.Ordinal);
    private DateTimeOffset? _lastGpuRun;
    private bool _sawDocker;

    /// <summary>Runs open now (running instances).</summary>
    public int Running => _open.Count;

    /// <summary>The open runs as records (for a checkpoint).</summary>
    public IReadOnlyList<RentalRecord> Checkpoint(DateTimeOffset now) => [.. _open.Values.Select(r => r.ToRecord(now))];

    /// <summary>Takes the ledger's runs: the open ones continue, every start is known (never recorded twice).</summary>
    /// <param name="runs">One record per run (<see cref="LedgerRead.Runs"/>).</param>
    /// <param name="knownUntil">The ledger's last write: GPU time before it was counted by the agent that wrote it.</param>
    public void Load(IReadOnlyList<RentalRecord> runs, DateTimeOffset? knownUntil)
    {
        foreach (var r in runs)
        {
            Know(r.ContainerId, r.StartedAt);
            if (r.Running)
            {
                _open[r.ContainerId] = OpenRun.From(r, knownUntil ?? r.RecordedAt);
            }
        }
    }

    /// <summary>
    /// One Docker event from while the agent was away (replayed with <c>since</c> = the ledger's last write):
    /// <c>start</c>, <c>die</c> and <c>oom</c> of containers named <c>C.&lt;id&gt;</c>.
    /// </summary>
    public RentalStep ApplyEvent(string action, string containerId, string name, DateTimeOffset at, IReadOnlyDictionary<string, string>? attributes)
    {
        if (VastNames.InstanceId(name) is not { } instance)
        {
            return RentalStep.None;
        }

        switch (action)
        {
            case "start":
                if (_open.TryGetValue(containerId, out var running))
                {
                    if (IsSame(running, at))
                    {
                        return RentalStep.None;
                    }

                    // A start while a run is open: a restart (by policy or by hand) after a die this replay did not show.
                    running.Restarts++;
                    running.LastStartedAt = at;
                    return RentalStep.None;
                }

                if (IsKnown(containerId, at))
                {
                    return RentalStep.None;
                }

                var run = new OpenRun(containerId, instance, at, "events", at)
                {
                    Image = attributes?.GetValueOrDefault("image") ?? "",
                };
                _open[containerId] = run;
                Know(containerId, at);
                return new RentalStep([run.ToRecord(at)], 1, [], 0);
            case "oom":
                if (_open.TryGetValue(containerId, out var oom))
                {
                    oom.OomKilled = true;
                }

                return RentalStep.None;
            case "die":
                if (!_open.TryGetValue(containerId, out var dying) || at < dying.StartedAt)
                {
                    return RentalStep.None;
                }

                long? exit = attributes?.GetValueOrDefault("exitCode") is { } text
                    && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var code) ? code : null;
                return Close(dying, at, exit, dying.OomKilled, estimated: false, at);
            default:
                return RentalStep.None;
        }
    }

    /// <summary>
    /// One snapshot: opens runs of containers that started, ends runs of containers that stopped or went away,
    /// re-resolves GPUs, and adds the GPUs' energy and the container's GPU memory peak to the open runs.
    /// </summary>
    public RentalStep Observe(HostSnapshot snapshot, DateTimeOffset now)
    {
        var write = new List<RentalRecord>();
        var ended = new List<TimeSpan>();
        var started = 0;
        var gpuSeconds = 0.0;
        var gpu = snapshot.Gpu;
        var inventory = gpu is { NvmlUp: true } ? gpu.Gpus.Select(g => g.Identity).ToList() : [];

        if (snapshot.Docker is { Up: true } docker)
        {
            var present = new HashSet<string>(StringComparer.Ordinal);
            foreach (var info in docker.Containers)
            {
                present.Add(info.Id);
                if (info.InstanceId is not { } instance || info.StartedAt is not { } startedAt)
                {
                    continue; // not a Vast instance, or created and never started
                }

                if (_open.TryGetValue(info.Id, out var run))
                {
                    if (!IsSame(run, startedAt) && info.RestartCount <= run.RestartCountSeen && run.LastSeenRunning is { } seen)
                    {
                        // Started again by hand (not the restart policy) after a stop this agent did not see end.
                        var step = Close(run, seen, null, false, estimated: true, now);
                        write.AddRange(step.Write);
                        ended.AddRange(step.Ended);
                        gpuSeconds += step.GpuSeconds;
                        run = null;
                    }
                    else if (!IsSame(run, startedAt))
                    {
                        run.Restarts += Math.Max(1, info.RestartCount - run.RestartCountSeen);
                        run.LastStartedAt = startedAt;
                        Know(info.Id, startedAt);
                    }
                }

                if (run is null)
                {
                    if (IsKnown(info.Id, startedAt))
                    {
                        continue; // a run the ledger has (ended: the container stays until it is removed)
                    }

                    // Seen at the agent's first look at Docker, or started and stopped between two looks: from inspect.
                    run = new OpenRun(info.Id, instance, startedAt, info.Running && _sawDocker ? "live" : "inspect", startedAt) { RestartCountSeen = info.RestartCount };
                    Know(info.Id, startedAt);
                    started++;
                    _open[info.Id] = run;
                    if (info.Running)
                    {
                        run.Update(info, inventory);
                        write.Add(run.ToRecord(now));
                    }
                }

                run.Update(info, inventory);
                if (info.Running)
                {
                    run.LastSeenRunning = now;
                }
                else if (info.FinishedAt is { } finished && finished >= run.StartedAt)
                {
                    var step = Close(run, finished, info.ExitCode, info.OomKilled, estimated: false, now);
                    write.AddRange(step.Write);
                    ended.AddRange(step.Ended);
                    gpuSeconds += step.GpuSeconds;
                }
            }

            foreach (var gone in _open.Values.Where(r => !present.Contains(r.ContainerId)).ToList())
            {
                // Removed without the agent seeing it stop (removed at once, or while the agent was away).
                var step = Close(gone, gone.LastSeenRunning ?? gone.AccountedUntil, null, gone.OomKilled, estimated: true, now);
                write.AddRange(step.Write);
                ended.AddRange(step.Ended);
                gpuSeconds += step.GpuSeconds;
            }

            _sawDocker = true;
            foreach (var id in _knownStarts.Keys.Where(id => !present.Contains(id) && !_open.ContainsKey(id)).ToList())
            {
                _knownStarts.Remove(id); // Docker no longer has it: nothing can show it again
            }
        }

        // GPU time and energy of the runs that stay open.
        foreach (var run in _open.Values)
        {
            if (now > run.AccountedUntil)
            {
                gpuSeconds += run.GpuCount * (now - run.AccountedUntil).TotalSeconds;
                run.AccountedUntil = now;
            }
        }

        if (gpu is { NvmlUp: true } && snapshot.Collectors.GetValueOrDefault("gpu")?.LastRun is { } gpuRun && gpuRun != _lastGpuRun)
        {
            var dt = _lastGpuRun is { } last && gpuRun > last ? gpuRun - last : TimeSpan.Zero;
            _lastGpuRun = gpuRun;
            var readings = gpu.Gpus.ToDictionary(g => g.Identity.Uuid, StringComparer.Ordinal);
            var processes = snapshot.ContainerGpuProcesses ?? [];
            foreach (var run in _open.Values)
            {
                run.Measure(readings, dt > MaxStep ? MaxStep : dt);
                var memory = processes.Where(p => p.ContainerId == run.ContainerId).Aggregate(0UL, (sum, p) => sum + p.MemoryBytes);
                if (processes.Any(p => p.ContainerId == run.ContainerId) && memory > (run.PeakGpuMemoryBytes ?? 0))
                {
                    run.PeakGpuMemoryBytes = memory;
                }
            }
        }

        return new RentalStep(write, started, ended, gpuSeconds);
    }

    private RentalStep Close(OpenRun run, DateTimeOffset stoppedAt, long? exitCode, bool oom, bool estimated, DateTimeOffset now)
    {
        _open.Remove(run.ContainerId);
        if (stoppedAt < run.StartedAt)
        {
            stoppedAt = run.StartedAt;
        }

        var gpuSeconds = stoppedAt > run.AccountedUntil ? run.GpuCount * (stoppedAt - run.AccountedUntil).TotalSeconds : 0;
        run.AccountedUntil = stoppedAt;
        var record = run.ToRecord(now) with
        {
            StoppedAt = stoppedAt,
            StopEstimated = estimated,
            ExitCode = exitCode,
            OomKilled = oom,
            GpuHours = run.GpuCount * (stoppedAt - run.StartedAt).TotalHours,
        };
        return new RentalStep([record], 0, [stoppedAt - run.StartedAt], gpuSeconds);
    }

    private static bool IsSame(OpenRun run, DateTimeOffset startedAt) =>
        (startedAt - run.StartedAt).Duration() < SameStart || (run.LastStartedAt is { } l && (startedAt - l).Duration() < SameStart);

    private bool IsKnown(string containerId, DateTimeOffset startedAt) =>
        _knownStarts.TryGetValue(containerId, out var starts) && starts.Any(s => (s - startedAt).Duration() < SameStart);

    private void Know(string containerId, DateTimeOffset startedAt)
    {
        if (!_knownStarts.TryGetValue(containerId, out var starts))
        {
            starts = [];
            _knownStarts[containerId] = starts;
        }

        starts.Add(startedAt);
    }

    /// <summary>A run in progress, mutable while it lasts.</summary>
    private sealed class OpenRun(string containerId, long instanceId, DateTimeOffset startedAt, string source, DateTimeOffset accountedUntil)
    {
        private readonly Dictionary<string, double> _lastCounter = new(StringComparer.Ordinal);

        public string ContainerId { get; } = containerId;

        public long InstanceId { get; } = instanceId;

        public DateTimeOffset StartedAt { get; } = startedAt;

        public string Source { get; } = source;

        public string Run { get; init; } = RentalRecord.Key(containerId, startedAt);

        public DateTimeOffset? LastStartedAt { get; set; }

        public DateTimeOffset? LastSeenRunning { get; set; }

        /// <summary>GPU time up to here has been counted in the GPU-seconds metric.</summary>
        public DateTimeOffset AccountedUntil { get; set; } = accountedUntil;

        public string Image { get; set; } = "";

        public string? ImageDigest { get; set; }

        public IReadOnlyList<string> Gpus { get; set; } = [];

        public int GpuCount => Gpus.Count;

        public DateTimeOffset? CreatedAt { get; set; }

        public bool OomKilled { get; set; }

        public long Restarts { get; set; }

        public long RestartCountSeen { get; set; }

        public double EnergyJoules { get; set; }

        public double MeasuredSeconds { get; set; }

        public ulong? PeakGpuMemoryBytes { get; set; }

        public static OpenRun From(RentalRecord r, DateTimeOffset accountedUntil) => new(r.ContainerId, r.InstanceId, r.StartedAt, r.Source, accountedUntil)
        {
            Run = r.Run,
            Image = r.Image,
            ImageDigest = r.ImageDigest,
            Gpus = r.Gpus,
            CreatedAt = r.CreatedAt,
            OomKilled = r.OomKilled,
            Restarts = r.RestartCount,
            EnergyJoules = r.EnergyJoules,
            MeasuredSeconds = r.MeasuredSeconds,
            PeakGpuMemoryBytes = r.PeakGpuMemoryBytes,
            LastSeenRunning = r.RecordedAt,
        };

        public void Update(ContainerInfo info, List<GpuIdentity> inventory)
        {
            if (info.Image.Length > 0)
            {
                Image = info.Image;
            }

            ImageDigest = info.ImageDigest ?? ImageDigest;
            CreatedAt = info.CreatedAt ?? CreatedAt;
            if (info.RestartCount > RestartCountSeen)
            {
                RestartCountSeen = info.RestartCount;
            }

            var (resolved, unresolved) = GpuAssignment.Resolve(info.Gpus, inventory);
            IReadOnlyList<string> gpus = [.. resolved.Select(g => g.Uuid), .. unresolved];
            if (inventory.Count > 0 || Gpus.Count == 0)
            {
                Gpus = gpus; // resolved once NVML has answered; Docker's tokens until then
            }
        }

        /// <summary>Adds the energy the run's GPUs used since the last GPU sample (<paramref name="dt"/> apart).</summary>
        public void Measure(Dictionary<string, GpuReading> readings, TimeSpan dt)
        {
            var measured = false;
            foreach (var uuid in Gpus)
            {
                if (!readings.TryGetValue(uuid, out var r) || !r.Up)
                {
                    continue;
                }

                if (r.EnergyConsumedJoules is { } counter && double.IsFinite(counter) && counter >= 0)
                {
                    if (_lastCounter.TryGetValue(uuid, out var last))
                    {
                        EnergyJoules += GpuReading.EnergySince(last, counter);
                        measured = true;
                    }

                    _lastCounter[uuid] = counter;
                }
                else if (r.PowerUsageWatts is { } watts && double.IsFinite(watts) && watts >= 0 && dt > TimeSpan.Zero)
                {
                    EnergyJoules += watts * dt.TotalSeconds;
                    measured = true;
                }
            }

            if (measured)
            {
                MeasuredSeconds += dt.TotalSeconds;
            }
        }

        public RentalRecord ToRecord(DateTimeOffset now) => new()
        {
            Run = Run,
            InstanceId = InstanceId,
            ContainerId = ContainerId,
            Image = Image,
            ImageDigest = ImageDigest,
            Gpus = Gpus,
            CreatedAt = CreatedAt,
            StartedAt = StartedAt,
            OomKilled = OomKilled,
            RestartCount = Restarts,
            GpuHours = GpuCount * Math.Max(0, (now - StartedAt).TotalHours),
            EnergyJoules = EnergyJoules,
            MeasuredSeconds = MeasuredSeconds,
            PeakGpuMemoryBytes = PeakGpuMemoryBytes,
            Source = Source,
            RecordedAt = now,
        };
    }
}
