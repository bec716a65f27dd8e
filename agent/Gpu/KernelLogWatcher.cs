using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using VastHostAgent.Kernel;

namespace VastHostAgent.Gpu;

/// <summary>
/// The second XID source: reads NVIDIA XIDs (<c>NVRM: Xid</c>) from the kernel log on its own thread, independent of
/// NVML sampling, so XIDs keep coming while NVML hangs or its library is gone. Each XID is mapped to its GPU through
/// the snapshot's GPU identities (by PCI address), recorded in the <see cref="XidLedger"/> (deduplicated against NVML
/// events, feeding the fault guard's critical_xid) and published as the snapshot's <see cref="KernelLogSample"/>.
/// An unreadable log (permission denied, missing) is one warning and <c>vasthost_kernel_log_up 0</c>; it is tried
/// again after 5 s, doubling to 5 min.
/// </summary>
internal sealed class KernelLogWatcher : BackgroundService
{
    /// <summary>The loop's name for supervision and metrics.</summary>
    public const string LoopName = "kmsg";

    /// <summary>Distinct PCI addresses and codes counted at most (keeps the series bounded whatever the log says).</summary>
    public const int MaxKernelXidSeries = 256;

    internal static readonly TimeSpan RetryMin = TimeSpan.FromSeconds(5);
    internal static readonly TimeSpan RetryMax = TimeSpan.FromMinutes(5);
    internal static readonly TimeSpan FilePollInterval = TimeSpan.FromMilliseconds(250);

    private readonly GpuOptions _options;
    private readonly XidLedger _ledger;
    private readonly SnapshotStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly LoopHealth? _loops;
    private readonly Dictionary<(string Pci, string Uuid, int Index, ulong Xid), (ulong Count, DateTimeOffset LastSeen)> _kernelXids = [];
    private string? _loggedProblem;
    private bool _limitLogged;

    public KernelLogWatcher(IOptions<GpuOptions> options, XidLedger ledger, SnapshotStore store, TimeProvider time, ILogger<KernelLogWatcher> logger, LoopHealth? loops = null)
    {
        _options = options.Value;
        _ledger = ledger;
        _store = store;
        _time = time;
        _logger = logger;
        _loops = loops;
    }

    public bool Enabled => _options.Enabled && !string.IsNullOrEmpty(_options.KmsgPath);

    private string Path => _options.KmsgPath;

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled)
        {
            return Task.CompletedTask;
        }

        // A thread of its own: reading /dev/kmsg waits in poll(), never on the thread pool.
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Run(stoppingToken);
            }
            finally
            {
                done.TrySetResult();
            }
        })
        { IsBackground = true, Name = "kernel-log-xids" };
        thread.Start();
        return done.Task;
    }

    private void Run(CancellationToken stop)
    {
        var backoff = RetryMin;
        var lines = new List<string>();
        while (!stop.IsCancellationRequested)
        {
            try
            {
                KernelLogReader reader;
                try
                {
                    reader = KernelLogReader.Open(Path);
                }
                catch (KernelLogUnavailableException ex)
                {
                    Degraded(ex.Message, backoff);
                    Wait(backoff, stop);
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, RetryMax.Ticks));
                    continue;
                }

                using (reader)
                {
                    backoff = RetryMin;
                    _loggedProblem = null;
                    GpuLog.KernelLogReading(_logger, Path);
                    Publish(up: true, problem: null);
                    while (!stop.IsCancellationRequested)
                    {
                        lines.Clear();
                        try
                        {
                            reader.Read(lines);
                        }
                        catch (KernelLogUnavailableException ex)
                        {
                            Degraded(ex.Message, backoff);
                            Wait(backoff, stop);
                            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, RetryMax.Ticks));
                            break;
                        }

                        switch (reader.TakeEvent())
                        {
                            case "truncated":
                                GpuLog.KernelLogTruncated(_logger, Path);
                                break;
                            case "overrun":
                                GpuLog.KernelLogOverrun(_logger, Path);
                                break;
                        }

                        foreach (var line in lines)
                        {
                            Handle(line);
                        }

                        _loops?.Succeeded(LoopName);
                        if (lines.Count == 0 && reader.NeedsPolling)
                        {
                            Wait(FilePollInterval, stop);
                        }
                    }
                }
            }
            catch (Exception ex)
            {
                // An exception on this thread would end the process: logged once per cause, counted, backed off.
                Wait(_loops?.Failed(LoopName, ex) ?? backoff, stop);
            }
        }
    }

    /// <summary>Parses one line; an XID is mapped to its GPU, recorded and published.</summary>
    internal void Handle(string line)
    {
        if (!KernelXidParser.TryParse(line, out var record))
        {
            return;
        }

        var identity = _store.Current.Gpu?.Gpus
            .Select(g => g.Identity)
            .FirstOrDefault(i => i.Uuid.Length > 0 && Kernel.PciAddress.Device(i.PciBusId) == record!.PciAddress);
        var uuid = identity?.Uuid ?? "";
        var index = identity?.Index ?? -1;
        var counted = _ledger.Record(XidSource.KernelLog, uuid, index, record!.PciAddress, record.Xid);
        var gpu = identity is null ? "unknown to NVML" : index.ToString(CultureInfo.InvariantCulture);
        if (counted)
        {
            GpuLog.KernelXid(_logger, record.Xid, gpu, record.PciAddress, XidCatalog.Describe(record.Xid), record.Message);
        }
        else
        {
            GpuLog.XidAlreadyCounted(_logger, record.Xid, index, "kernel log", "NVML event");
        }

        var key = (record.PciAddress, uuid, index, record.Xid);
        if (_kernelXids.TryGetValue(key, out var tally))
        {
            _kernelXids[key] = (tally.Count + 1, _time.GetUtcNow());
        }
        else if (_kernelXids.Count < MaxKernelXidSeries)
        {
            _kernelXids[key] = (1, _time.GetUtcNow());
        }
        else if (!_limitLogged)
        {
            _limitLogged = true;
            GpuLog.KernelXidLimit(_logger, _kernelXids.Count);
        }

        Publish(up: true, problem: null);
    }

    private void Degraded(string problem, TimeSpan retryIn)
    {
        if (_loggedProblem != problem)
        {
            _loggedProblem = problem;
            GpuLog.KernelLogUnreadable(_logger, Path, problem, retryIn);
        }

        Publish(up: false, problem);
    }

    private void Publish(bool up, string? problem)
    {
        var sample = new KernelLogSample
        {
            Up = up,
            Problem = problem,
            Path = Path,
            KernelXids = [.. _kernelXids.Select(k => new KernelXidCount(k.Key.Pci, k.Key.Index, k.Key.Uuid, k.Key.Xid, k.Value.Count, k.Value.LastSeen))],
            Xids = _ledger.Snapshot(),
        };
        _store.Update(s => s.WithKernelLog(sample));
    }

    private void Wait(TimeSpan delay, CancellationToken stop)
    {
        try
        {
            Task.Delay(delay, _time, stop).Wait(stop);
        }
        catch (Exception ex) when (ex is OperationCanceledException or AggregateException)
        {
            // stopping
        }
    }
}
