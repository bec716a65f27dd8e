using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using VastHostAgent.Gpu;
using VastHostAgent.Kernel;
using VastHostAgent.Maintenance;
using VastHostAgent.Metrics;
using VastHostAgent.Tests.Support;

namespace VastHostAgent.Tests.Gpu;

/// <summary>
/// XIDs from the kernel log: the line formats, the deduplication against NVML events, tailing a file, an unreadable
/// log, and what the fault guard and /metrics make of a kernel-only XID.
/// </summary>
public sealed class KernelXidTests
{
    private static readonly DateTimeOffset Start = DateTimeOffset.Parse("2026-03-01T12:00:00Z", CultureInfo.InvariantCulture);

    [Theory]
    [InlineData("4,1234,5678901234,-;NVRM: Xid (PCI:0000:01:00): 79, pid=1234, name=python, GPU has fallen off the bus.", "0000:01:00", 79, "pid=1234, name=python, GPU has fallen off the bus.")]
    [InlineData("3,99,12,c,caller=T123;NVRM: Xid (PCI:0000:3B:00): 48, pid='<unknown>', name=<unknown>, An uncorrectable double bit error", "0000:3b:00", 48, "pid='<unknown>', name=<unknown>, An uncorrectable double bit error")]
    [InlineData("[ 1234.567890] NVRM: Xid (PCI:0000:81:00): 13, Graphics Exception: ESR 0x404600=0x80000002", "0000:81:00", 13, "Graphics Exception: ESR 0x404600=0x80000002")]
    [InlineData("[Mon Mar  2 10:11:12 2026] NVRM: Xid (PCI:0001:02:00): 119, pid=77, name=nvidia-smi, Timeout waiting for RPC from GSP0!", "0001:02:00", 119, "pid=77, name=nvidia-smi, Timeout waiting for RPC from GSP0!")]
    [InlineData("Mar  2 10:11:12 rig-01 kernel: [ 5.1] NVRM: Xid (PCI:0000:01:00): 62, pid=1, name=x, 0000(0000)", "0000:01:00", 62, "pid=1, name=x, 0000(0000)")]
    [InlineData("NVRM: Xid (0000:03:00): 31, Ch 00000010, engmask 00000101", "0000:03:00", 31, "Ch 00000010, engmask 00000101")]
    [InlineData("NVRM: Xid (PCI:0000:01:00): 79\n", "0000:01:00", 79, "")]
    public void An_NVRM_Xid_line_gives_the_PCI_address_code_and_text(string line, string pci, ulong xid, string message)
    {
        Assert.True(KernelXidParser.TryParse(line, out var record));
        Assert.Equal(new KernelXidRecord(pci, xid, message), record);
    }

    [Theory]
    [InlineData("6,1235,5678901300,-;docker0: port 1(veth1) entered forwarding state")]
    [InlineData("[ 12.0] NVRM: loading NVIDIA UNIX x86_64 Kernel Module  550.54.15")]
    [InlineData("4,1236,5678901400,-;NVRM: GPU at PCI:0000:01:00: GPU-11111111-2222-4333-8444-000000000000")]
    [InlineData(" SUBSYSTEM=pci")]
    [InlineData(" DEVICE=+pci:0000:01:00.0")]
    [InlineData("")]
    [InlineData("NVRM: Xid (PCI:0000:01:00): , GPU has fallen off the bus.")]
    [InlineData("NVRM: Xid (PCI:zz:01:00): 79, bad address")]
    [InlineData("NVRM: Xid (PCI:0000:01:00): 123456, a code far outside the catalogue")]
    [InlineData("NVRM: Xid (PCI:0000:01:00) 79 without the colon")]
    [InlineData("4,1234,garbage;NVRM: Xid (PCI:0000:01")]
    public void Other_kernel_lines_and_malformed_XID_lines_are_not_XIDs(string line)
    {
        Assert.False(KernelXidParser.TryParse(line, out var record));
        Assert.Null(record);
    }

    [Theory]
    [InlineData("00000000:01:00.0", "0000:01:00")]
    [InlineData("0000:01:00", "0000:01:00")]
    [InlineData("00000000:3B:00.0", "0000:3b:00")]
    [InlineData("PCI:0001:81:00", "0001:81:00")]
    [InlineData("", null)]
    [InlineData("not-a-bus-id", null)]
    public void NVMLs_bus_id_and_the_drivers_address_normalise_to_the_same_text(string address, string? expected) =>
        Assert.Equal(expected, VastHostAgent.Kernel.PciAddress.Device(address));

    [Fact]
    public void One_XID_reported_by_both_sources_within_10_s_counts_once_in_either_order()
    {
        var time = new FakeTimeProvider(Start);
        var ledger = new XidLedger(time);

        Assert.True(ledger.Record(XidSource.Nvml, "GPU-0", 0, "0000:01:00", 79));
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.False(ledger.Record(XidSource.KernelLog, "GPU-0", 0, "0000:01:00", 79));

        // The kernel log first this time.
        Assert.True(ledger.Record(XidSource.KernelLog, "GPU-0", 0, "0000:01:00", 48));
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.False(ledger.Record(XidSource.Nvml, "GPU-0", 0, "0000:01:00", 48));

        var counts = ledger.Snapshot().ToDictionary(x => x.Xid);
        Assert.Equal(1UL, counts[79].Count);
        Assert.Equal(1UL, counts[48].Count);
        Assert.Equal(Start.AddSeconds(12), counts[48].LastSeen);
        Assert.Equal("0000:01:00", counts[79].PciAddress);
    }

    [Fact]
    public void Reports_more_than_10_s_apart_two_from_one_source_or_on_another_GPU_count_separately()
    {
        var time = new FakeTimeProvider(Start);
        var ledger = new XidLedger(time);

        Assert.True(ledger.Record(XidSource.Nvml, "GPU-0", 0, null, 79));
        time.Advance(TimeSpan.FromSeconds(11));
        Assert.True(ledger.Record(XidSource.KernelLog, "GPU-0", 0, "0000:01:00", 79));       // too late to be the same XID

        // Two XIDs in a burst, reported by both sources: two, not one and not four.
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.True(ledger.Record(XidSource.Nvml, "GPU-0", 0, null, 13));
        Assert.True(ledger.Record(XidSource.Nvml, "GPU-0", 0, null, 13));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.False(ledger.Record(XidSource.KernelLog, "GPU-0", 0, "0000:01:00", 13));
        Assert.False(ledger.Record(XidSource.KernelLog, "GPU-0", 0, "0000:01:00", 13));

        // The same code on another GPU, and on a GPU NVML has never identified (keyed by its address).
        Assert.True(ledger.Record(XidSource.KernelLog, "GPU-1", 1, "0000:02:00", 13));
        Assert.True(ledger.Record(XidSource.KernelLog, "", -1, "0000:03:00", 13));

        var all = ledger.Snapshot();
        Assert.Equal(2UL, all.Single(x => x is { Uuid: "GPU-0", Xid: 79 }).Count);
        Assert.Equal(2UL, all.Single(x => x is { Uuid: "GPU-0", Xid: 13 }).Count);
        Assert.Equal(1UL, all.Single(x => x is { Uuid: "GPU-1", Xid: 13 }).Count);
        var unknown = all.Single(x => x.Uuid.Length == 0);
        Assert.Equal((-1, "0000:03:00", 1UL), (unknown.GpuIndex, unknown.PciAddress, unknown.Count));
    }

    private static GpuSample TwoGpus(bool nvmlUp = true) => new()
    {
        NvmlUp = nvmlUp,
        Gpus =
        [
            new GpuReading { Identity = new GpuIdentity(0, "GPU-0", "NVIDIA H100", "00000000:01:00.0", 0, null, null) },
            new GpuReading { Identity = new GpuIdentity(1, "GPU-1", "NVIDIA H100", "00000000:02:00.0", 1, null, null) },
        ],
    };

    private static KernelLogWatcher Watcher(string path, SnapshotStore store, TimeProvider time, XidLedger ledger, ILogger<KernelLogWatcher>? logger = null) =>
        new(Options.Create(new GpuOptions { KmsgPath = path }), ledger, store, time, logger ?? new FakeLogger<KernelLogWatcher>());

    [Fact]
    public async Task A_tailed_file_yields_appended_XIDs_from_its_end_on_mapped_to_NVMLs_GPUs_and_survives_truncation()
    {
        var dir = TestEnvironment.NewTempDirectory("kmsg-tail");
        var path = Path.Combine(dir, "kmsg");
        File.WriteAllText(path, "4,1,1,-;NVRM: Xid (PCI:0000:01:00): 79, pid=1, name=old, written before the agent started.\n");
        var store = new SnapshotStore();
        store.Update(s => s.WithGpu(TwoGpus()));
        var ledger = new XidLedger(TimeProvider.System);
        using var watcher = Watcher(path, store, TimeProvider.System, ledger);
        await watcher.StartAsync(default);
        await Poll.UntilAsync(() => Task.FromResult(store.Current.KernelLog), k => k is { Up: true }, TimeSpan.FromSeconds(10), "the kernel log open");

        // A record split over two writes, dmesg and kmsg forms, and lines that are not XIDs.
        File.AppendAllText(path, "6,2,2,-;eth0: link up\n4,3,3,-;NVRM: Xid (PCI:0000:02:00): 48, pid=9, name=py");
        File.AppendAllText(path, "thon, double bit ECC\n[ 99.1] NVRM: Xid (PCI:0000:81:00): 79, pid=1, name=x, GPU has fallen off the bus.\n");
        var k = await Poll.UntilAsync(() => Task.FromResult(store.Current.KernelLog!), k => k.KernelXids.Count == 2, TimeSpan.FromSeconds(10), "two XIDs read");
        var mapped = Assert.Single(k.KernelXids, x => x.Xid == 48);
        Assert.Equal(("0000:02:00", 1, "GPU-1", 1UL), (mapped.PciAddress, mapped.GpuIndex, mapped.Uuid, mapped.Count));
        var unmapped = Assert.Single(k.KernelXids, x => x.Xid == 79);
        Assert.Equal(("0000:81:00", -1, ""), (unmapped.PciAddress, unmapped.GpuIndex, unmapped.Uuid));
        Assert.DoesNotContain(ledger.Snapshot(), x => x.PciAddress == "0000:01:00"); // the line written before the start

        // Truncated (a log rotated in place) and written again: read from its start.
        File.WriteAllText(path, "NVRM: Xid (PCI:0000:01:00): 13, pid=2, name=y, Graphics Exception\n");
        k = await Poll.UntilAsync(() => Task.FromResult(store.Current.KernelLog!), k => k.KernelXids.Count == 3, TimeSpan.FromSeconds(10), "the XID after the truncation");
        Assert.Equal("GPU-0", Assert.Single(k.KernelXids, x => x.Xid == 13).Uuid);
        Assert.True(k.Up);
        await watcher.StopAsync(default);
    }

    [Fact]
    public async Task An_unreadable_kernel_log_is_one_warning_and_down_and_is_read_once_it_appears()
    {
        var dir = TestEnvironment.NewTempDirectory("kmsg-missing");
        var path = Path.Combine(dir, "kmsg");
        var time = new FakeTimeProvider(Start);
        var store = new SnapshotStore();
        var logger = new FakeLogger<KernelLogWatcher>();
        using var watcher = Watcher(path, store, time, new XidLedger(time), logger);
        await watcher.StartAsync(default);

        var down = await Poll.UntilAsync(() => Task.FromResult(store.Current.KernelLog), k => k is { Up: false }, TimeSpan.FromSeconds(10), "the kernel log down");
        Assert.Equal("not found", down!.Problem);

        // Retried after the back-off, still missing: no second warning.
        var generation = store.Current.Generation;
        time.Advance(KernelLogWatcher.RetryMin);
        await Poll.UntilAsync(() => Task.FromResult(store.Current.Generation), g => g > generation, TimeSpan.FromSeconds(10), "a retry");
        Assert.Single(logger.Collector.GetSnapshot(), r => r.Level == LogLevel.Warning);
        Assert.Contains("not found", logger.Collector.GetSnapshot().Single(r => r.Level == LogLevel.Warning).Message, StringComparison.Ordinal);

        // A directory cannot be read either.
        Directory.CreateDirectory(path);
        time.Advance(KernelLogWatcher.RetryMin * 2);
        await Poll.UntilAsync(() => Task.FromResult(store.Current.KernelLog), k => k is { Problem: "permission denied" }, TimeSpan.FromSeconds(10), "a directory refused");

        Directory.Delete(path);
        File.WriteAllText(path, "");
        await Poll.UntilAsync(() =>
        {
            time.Advance(TimeSpan.FromSeconds(30));
            return Task.FromResult(store.Current.KernelLog);
        }, k => k is { Up: true }, TimeSpan.FromSeconds(10), "the kernel log read once it exists");
        await watcher.StopAsync(default);
    }

    [Fact]
    public async Task A_kernel_only_XID_79_on_a_GPU_NVML_never_knew_trips_critical_xid_and_is_exported_by_PCI_address()
    {
        var time = new FakeTimeProvider(Start);
        var ledger = new XidLedger(time);
        var store = new SnapshotStore();
        store.Update(s => s.WithGpu(GpuSample.Unavailable("NVML library not available")));
        using var watcher = Watcher("/nonexistent/kmsg", store, time, ledger);
        watcher.Handle("4,10,10,-;NVRM: Xid (PCI:0000:01:00): 79, pid=1, name=python, GPU has fallen off the bus.");
        watcher.Handle("6,11,11,-;NVRM: GPU at PCI:0000:01:00: GPU-11111111-2222-4333-8444-000000000000");

        var options = new FaultGuardOptions { CriticalXids = [79], HoldFor = TimeSpan.Zero };
        var verdict = FaultGuard.Evaluate(new FaultGuardState(), store.Current, options, time.GetUtcNow(), inMaintenance: false);
        Assert.Equal("XID 79 on the GPU at PCI 0000:01:00", verdict.Active[FaultGuard.CriticalXid]);
        Assert.NotNull(verdict.Tripped);

        using var exporter = new SnapshotExporter(Options.Create(new MetricsOptions()), time);
        exporter.Apply(store.Current);
        var m = Exposition.Parse(Encoding.UTF8.GetString((await exporter.RenderAsync(default)).Span));
        var series = Assert.Single(m.Named("vasthost_gpu_kernel_xid_errors_total"));
        Assert.Equal(("0000:01:00", "", "", "79", 1.0), (series.Label("pci_address"), series.Label("gpu"), series.Label("uuid"), series.Label("xid"), series.Value));
        Assert.Equal((double)Start.ToUnixTimeSeconds(), m.Value("vasthost_gpu_kernel_xid_last_timestamp_seconds", ("pci_address", "0000:01:00")));
        Assert.Equal(1, m.Value("vasthost_kernel_log_up"));
        Assert.Empty(m.Named("vasthost_gpu_xid_errors_total")); // no GPU index or UUID to put it under
    }

    [Fact]
    public async Task While_NVML_hangs_a_kernel_XID_on_a_known_GPU_reaches_the_XID_series_once_and_the_guard()
    {
        var time = new FakeTimeProvider(Start);
        var ledger = new XidLedger(time);
        var store = new SnapshotStore();
        // The GPU sample as NVML last delivered it (frozen while NVML hangs), with an NVML XID 79 already counted.
        ledger.Record(XidSource.Nvml, "GPU-1", 1, "0000:02:00", 79);
        store.Update(s => s.WithGpu(TwoGpus() with { Xids = ledger.Snapshot() }));
        using var watcher = Watcher("/nonexistent/kmsg", store, time, ledger);

        time.Advance(TimeSpan.FromSeconds(2));
        watcher.Handle("NVRM: Xid (PCI:0000:02:00): 79, pid=1, name=python, GPU has fallen off the bus."); // the same XID
        time.Advance(TimeSpan.FromMinutes(1));
        watcher.Handle("NVRM: Xid (PCI:0000:01:00): 95, pid=1, name=python, Uncontained ECC error");      // kernel only

        using var exporter = new SnapshotExporter(Options.Create(new MetricsOptions()), time);
        exporter.Apply(store.Current);
        var m = Exposition.Parse(Encoding.UTF8.GetString((await exporter.RenderAsync(default)).Span));
        Assert.Equal(1, m.Value("vasthost_gpu_xid_errors_total", ("uuid", "GPU-1"), ("xid", "79")));
        Assert.Equal(1, m.Value("vasthost_gpu_xid_errors_total", ("gpu", "0"), ("uuid", "GPU-0"), ("xid", "95")));
        Assert.Equal((double)Start.AddSeconds(62).ToUnixTimeSeconds(), m.Value("vasthost_gpu_xid_last_timestamp_seconds", ("uuid", "GPU-0"), ("xid", "95")));
        Assert.Equal(1, m.Value("vasthost_gpu_kernel_xid_errors_total", ("pci_address", "0000:02:00"), ("gpu", "1"), ("uuid", "GPU-1"), ("xid", "79")));

        var options = new FaultGuardOptions { CriticalXids = [95], HoldFor = TimeSpan.Zero };
        var verdict = FaultGuard.Evaluate(new FaultGuardState(), store.Current, options, time.GetUtcNow(), inMaintenance: false);
        Assert.Equal("XID 95 on GPU 0", verdict.Active[FaultGuard.CriticalXid]);
    }
}
