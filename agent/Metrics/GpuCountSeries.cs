using VastHostAgent.Gpu;
using VastHostAgent.GpuCount;
using VastHostAgent.Kernel;

namespace VastHostAgent.Metrics;

/// <summary>GPU-count truth: GPUs by state (nvml, passthrough, missing), the expected count, and PCIe AER totals from sysfs.</summary>
internal sealed class GpuCountSeries : ISnapshotSeries
{
    private readonly TrackedGauge _gpus;
    private readonly TrackedGauge _expected;
    private readonly TrackedGauge _pciState;
    private readonly TrackedCounter _aer;

    public GpuCountSeries(SeriesFactory f)
    {
        _gpus = f.Gauge("vasthost_gpus", "GPUs by state: nvml (NVML reads them; 0 while NVML is down), passthrough (bound to vfio-pci for a VM rental), missing (on the PCI bus in neither set, or gone from it).", "state");
        _expected = f.Gauge("vasthost_gpus_expected", "GPUs this rig should have: the Vast machine's num_gpus, else host.expectedGpus.");
        _pciState = f.Gauge("vasthost_gpu_pci_state_info", "Always 1, for each NVIDIA GPU passed through to a VM (state passthrough, reason vfio-pci) or missing (reason no_driver, other_driver, not_in_nvml, nvml_lost, gone).", "pci_address", "state", "reason");
        _aer = f.Counter("vasthost_gpu_pcie_aer_errors_total", "PCIe AER errors the kernel counted on the GPU since boot, by kind: correctable, nonfatal, fatal.", "pci_address", "kind");
    }

    public void Apply(HostSnapshot snapshot)
    {
        if (snapshot.Gpu is { } gpu)
        {
            _gpus.Set(gpu.NvmlUp ? gpu.Gpus.Count(g => g.Up) : 0, "nvml");
        }

        if (snapshot.GpuCount is not { } count)
        {
            return; // host.pciScan off, or before the first scan
        }

        _expected.Set((double?)count.Expected);
        if (!count.PciScanned)
        {
            return;
        }

        _gpus.Set(count.Passthrough.Count, "passthrough");
        _gpus.Set(count.Missing.Count, "missing");
        foreach (var address in count.Passthrough)
        {
            _pciState.Set(1, address, "passthrough", GpuCountTruth.VfioPci);
        }

        foreach (var m in count.Missing)
        {
            _pciState.Set(1, m.Address, "missing", m.Reason);
        }

        foreach (var a in count.Aer)
        {
            _aer.Set(a.Totals.Correctable, a.Address, "correctable");
            _aer.Set(a.Totals.Nonfatal, a.Address, "nonfatal");
            _aer.Set(a.Totals.Fatal, a.Address, "fatal");
        }
    }
}
