using Microsoft.Extensions.Options;
using VastHostAgent.Containers;
using VastHostAgent.Kernel;
using VastHostAgent.Vast;

namespace VastHostAgent.Metrics;

/// <summary>
/// Turns snapshots into Prometheus series and renders the exposition text. The registry is written only
/// here, under one lock, and rendered under the same lock, so every scrape sees one whole snapshot.
/// A rendering is cached per snapshot generation: concurrent scrapes share it and never wait on a sampler.
/// </summary>
public sealed class SnapshotExporter : IDisposable
{
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _renderGate = new(1, 1);
    private readonly MetricsRegistry _registry;
    private readonly TimeProvider _time;
    private readonly SeriesFactory _factory;
    private readonly IReadOnlyList<ISnapshotSeries> _series;
    private readonly SnapshotStore? _store;
    private long _appliedGeneration = -1;
    private Rendering? _cached;

    /// <summary>An exporter with its own registry and no store (tests and benchmarks apply snapshots themselves).</summary>
    public SnapshotExporter(IOptions<MetricsOptions> options, TimeProvider time)
        : this(new MetricsRegistry(), null, options, Microsoft.Extensions.Options.Options.Create(new DockerOptions { Enabled = false }), Microsoft.Extensions.Options.Options.Create(new VastOptions()), Microsoft.Extensions.Options.Options.Create(new AgentOptions()), time)
    {
    }

    /// <summary>
    /// The daemon's exporter: its series follow the store from the moment it exists (it applies the current
    /// snapshot, then every published one), so no service graph has to remember to wire it.
    /// </summary>
    public SnapshotExporter(MetricsRegistry registry, SnapshotStore? store, IOptions<MetricsOptions> options, IOptions<DockerOptions> docker, IOptions<VastOptions> vast, IOptions<AgentOptions> agent, TimeProvider time)
    {
        _registry = registry;
        _time = time;
        _factory = new SeriesFactory(registry.Factory);
        var o = options.Value;
        var hostname = string.IsNullOrWhiteSpace(o.Hostname) ? Environment.MachineName : o.Hostname;
        var series = new List<ISnapshotSeries> { new AgentSeries(_factory, agent.Value), new GpuSeries(_factory), new GpuCountSeries(_factory), new HostSeries(_factory), new EconomicsSeries(_factory) };
        if (docker.Value.Enabled)
        {
            series.Add(new ContainerSeries(_factory, docker.Value.ExportLabels));
        }

        if (vast.Value.Enabled)
        {
            series.Add(new VastSeries(_factory, time));
        }

        if (o.DcgmCompatible)
        {
            series.Add(new DcgmCompatibleSeries(_factory, hostname, o.DcgmHostnameLabel));
        }

        _series = series;
        if (store is not null)
        {
            _store = store;
            store.Published += Apply;
            Apply(store.Current);
        }
    }

    public void Dispose()
    {
        if (_store is not null)
        {
            _store.Published -= Apply;
        }

        _renderGate.Dispose();
    }

    /// <summary>Writes a snapshot into the registry. Older generations are ignored.</summary>
    public void Apply(HostSnapshot snapshot)
    {
        lock (_gate)
        {
            if (snapshot.Generation <= _appliedGeneration)
            {
                return;
            }

            foreach (var series in _series)
            {
                series.Apply(snapshot);
            }

            _factory.Sweep();
            _appliedGeneration = snapshot.Generation;
            _registry.Changed();
        }
    }

    /// <summary>Renders the exposition text (Prometheus text format 0.0.4). Reuses the last rendering while nothing changed.</summary>
    public async Task<ReadOnlyMemory<byte>> RenderAsync(CancellationToken cancellationToken)
    {
        var cached = Volatile.Read(ref _cached);
        if (cached is not null && cached.Version == _registry.Version && !cached.Expired(_time))
        {
            return cached.Bytes;
        }

        await _renderGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            cached = Volatile.Read(ref _cached);
            if (cached is not null && cached.Version == _registry.Version && !cached.Expired(_time))
            {
                return cached.Bytes;
            }

            var stream = new MemoryStream(cached?.Bytes.Length + 1024 ?? 16 * 1024);
            long version;
            lock (_gate)
            {
                version = _registry.Version;
                // prometheus-net serialises synchronously into a MemoryStream; holding the lock keeps the
                // snapshot whole (no half-applied update is ever visible).
                _registry.Registry.CollectAndExportAsTextAsync(stream, cancellationToken).GetAwaiter().GetResult();
            }

            var rendering = new Rendering(version, stream.GetBuffer().AsMemory(0, (int)stream.Length), _time.GetUtcNow());
            Volatile.Write(ref _cached, rendering);
            return rendering.Bytes;
        }
        finally
        {
            _renderGate.Release();
        }
    }

    private sealed record Rendering(long Version, ReadOnlyMemory<byte> Bytes, DateTimeOffset RenderedAt)
    {
        // Instruments outside the snapshot (process figures, API client counters) refresh at least this often.
        public bool Expired(TimeProvider time) => time.GetUtcNow() - RenderedAt > TimeSpan.FromSeconds(1);
    }
}
