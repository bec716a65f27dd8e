using System.Globalization;
using Prometheus;
using VastHostAgent.Kernel;
using VastHostAgent.Vast;

namespace VastHostAgent.Metrics;

/// <summary>The machine and account as the Vast API reports them (polled; see docs/metrics.md for the 500farm name mapping).</summary>
internal sealed class VastSeries : ISnapshotSeries
{
    private const double GiB = 1024.0 * 1024 * 1024;
    private static readonly string[] M = ["machine_id", "hostname"];

    private readonly Gauge _up;
    private readonly Gauge _identified;
    private readonly TrackedGauge _identificationProblem;
    private readonly TrackedGauge _info;
    private readonly TrackedGauge _online;
    private readonly TrackedGauge _listed;
    private readonly TrackedGauge _verified;
    private readonly TrackedGauge _reliability;
    private readonly TrackedGauge _gpus;
    private readonly TrackedGauge _occupancy;
    private readonly TrackedGauge _rentals;
    private readonly TrackedGauge _clientEnd;
    private readonly TrackedGauge _reports;
    private readonly TrackedGauge _maintenanceWindows;
    private readonly TrackedGauge _maintenanceNext;
    private readonly TrackedGauge _gpuPrice;
    private readonly TrackedGauge _storagePrice;
    private readonly TrackedGauge _uploadPrice;
    private readonly TrackedGauge _downloadPrice;
    private readonly TrackedGauge _minBid;
    private readonly TrackedGauge _minChunk;
    private readonly TrackedGauge _endDate;
    private readonly TrackedGauge _discount;
    private readonly TrackedGauge _volumeSize;
    private readonly TrackedGauge _volumePrice;
    private readonly TrackedGauge _defaultJob;
    private readonly TrackedGauge _defaultJobPrice;
    private readonly TrackedGauge _earnDay;
    private readonly TrackedGauge _lastRead;
    private readonly TrackedGauge _earnings;
    private readonly TrackedGauge _balance;
    private readonly TrackedGauge _credit;
    private readonly TimeProvider _time;

    public VastSeries(SeriesFactory f, TimeProvider time)
    {
        _time = time;
        _up = f.Factory.CreateGauge("vasthost_vast_up", "1 when the last poll of this machine on the Vast API succeeded, else 0.");
        _identified = f.Factory.CreateGauge("vasthost_vast_machine_identified", "1 when this host's Vast machine id is known (configured, or one host-name match), else 0: no listing change is made.");
        _identificationProblem = f.Gauge("vasthost_vast_machine_identification_problem", "1 for why the machine is not identified: not_found, ambiguous, not_owned.", ["problem"]);
        _info = f.Gauge("vasthost_vast_machine_info", "The machine as Vast lists it. Always 1.", ["machine_id", "hostname", "gpu_name", "verification", "driver_version"]);
        _online = f.Gauge("vasthost_vast_machine_online", "1 when Vast sees the machine's daemon online (timeout 0).", M);
        _listed = f.Gauge("vasthost_vast_machine_listed", "1 when the machine has offers on the market.", M);
        _verified = f.Gauge("vasthost_vast_machine_verified", "1 when the machine's verification is 'verified'.", M);
        _reliability = f.Gauge("vasthost_vast_machine_reliability_ratio", "Vast's reliability score (reliability2), 0 to 1.", M);
        _gpus = f.Gauge("vasthost_vast_machine_gpus", "GPUs of the machine as Vast counts them.", M);
        _occupancy = f.Gauge("vasthost_vast_machine_gpu_occupancy", "GPUs by occupancy (gpu_occupancy tokens): free, on_demand, interruptible, reserved, other.", ["machine_id", "hostname", "state"]);
        _rentals = f.Gauge("vasthost_vast_machine_rentals", "Client contracts by type (on_demand, interruptible) and status (running, stopped).", ["machine_id", "hostname", "type", "status"]);
        _clientEnd = f.Gauge("vasthost_vast_machine_client_end_timestamp_seconds", "Latest end date of the machine's active client contracts: stay online until then.", M);
        _reports = f.Gauge("vasthost_vast_machine_reports", "Renter reports filed against the machine (lifetime).", M);
        _maintenanceWindows = f.Gauge("vasthost_vast_machine_maintenance_windows", "Maintenance windows scheduled on Vast for the machine.", M);
        _maintenanceNext = f.Gauge("vasthost_vast_machine_maintenance_next_start_timestamp_seconds", "Start of the next maintenance window scheduled on Vast.", M);
        _gpuPrice = f.Gauge("vasthost_vast_listing_gpu_price_dollars_per_hour", "Listed on-demand price per GPU-hour.", M);
        _storagePrice = f.Gauge("vasthost_vast_listing_storage_price_dollars_per_gigabyte_month", "Listed storage price per GB-month.", M);
        _uploadPrice = f.Gauge("vasthost_vast_listing_upload_price_dollars_per_gigabyte", "Listed upload bandwidth price per GB.", M);
        _downloadPrice = f.Gauge("vasthost_vast_listing_download_price_dollars_per_gigabyte", "Listed download bandwidth price per GB.", M);
        _minBid = f.Gauge("vasthost_vast_listing_min_bid_dollars_per_hour", "Minimum bid (interruptible floor) per GPU-hour.", M);
        _minChunk = f.Gauge("vasthost_vast_listing_min_chunk_gpus", "Smallest rentable group of GPUs.", M);
        _endDate = f.Gauge("vasthost_vast_listing_end_timestamp_seconds", "When the listing's offers expire.", M);
        _discount = f.Gauge("vasthost_vast_listing_credit_discount_max_ratio", "Maximum reserved (prepay) discount offered.", M);
        _volumeSize = f.Gauge("vasthost_vast_listing_volume_size_bytes", "Size of the volume offer.", M);
        _volumePrice = f.Gauge("vasthost_vast_listing_volume_price_dollars_per_gigabyte_month", "Price of the volume offer per GB-month.", M);
        _defaultJob = f.Gauge("vasthost_vast_machine_default_job", "1 when a default job is set on the machine.", M);
        _defaultJobPrice = f.Gauge("vasthost_vast_machine_default_job_price_dollars_per_hour", "Default job bid per GPU-hour.", M);
        _earnDay = f.Gauge("vasthost_vast_machine_earnings_day_dollars", "Vast's rolling 24-hour earnings of the machine (earn_day).", M);
        _lastRead = f.Gauge("vasthost_vast_machine_last_read_timestamp_seconds", "When the machine record was last read from the Vast API.", M);
        _earnings = f.Gauge("vasthost_vast_earnings_dollars", "Earnings per day from machine-earnings: days_ago 0 (today, so far) to 6, by kind (gpu, storage, upload, download).", ["machine_id", "days_ago", "kind"]);
        _balance = f.Gauge("vasthost_vast_account_balance_dollars", "Account balance.", []);
        _credit = f.Gauge("vasthost_vast_account_credit_dollars", "Account credit.", []);
    }

    public void Apply(HostSnapshot snapshot)
    {
        var state = snapshot.Vast;
        _up.Set(state?.Up == true ? 1 : 0);
        _identified.Set(state?.MachineId is not null && state.IdentificationProblem is null ? 1 : 0);
        if (state is null)
        {
            return;
        }

        if (state.IdentificationProblem is { } problem)
        {
            _identificationProblem.Set(1, problem);
        }

        var id = state.MachineId?.ToString(CultureInfo.InvariantCulture) ?? "";
        if (state.Machine is { } machine)
        {
            ApplyMachine(machine, id, state.Reports?.Count, state.MachineReadAt);
        }

        foreach (var other in state.Machines ?? [])
        {
            ApplyMachine(other, other.EffectiveId.ToString(CultureInfo.InvariantCulture), null, state.MachinesReadAt);
        }

        if (state.Earnings?.PerDay is { } days)
        {
            var today = (long)Math.Floor(_time.GetUtcNow().ToUnixTimeSeconds() / 86400.0);
            foreach (var row in days.Where(d => d.Day is { } day && today - day is >= 0 and <= 6))
            {
                var ago = (today - row.Day!.Value).ToString(CultureInfo.InvariantCulture);
                _earnings.Set(row.GpuEarn, id, ago, "gpu");
                _earnings.Set(row.StoEarn, id, ago, "storage");
                _earnings.Set(row.BwuEarn, id, ago, "upload");
                _earnings.Set(row.BwdEarn, id, ago, "download");
            }
        }

        _balance.Set(state.User?.Balance ?? state.Earnings?.Current?.Balance);
        _credit.Set(state.User?.Credit ?? state.Earnings?.Current?.Credit);
    }

    private void ApplyMachine(VastMachine m, string id, int? reports, DateTimeOffset? readAt)
    {
        var host = m.Hostname?.Trim() ?? "";
        _info.Set(1, id, host, m.GpuName ?? "", m.Verification ?? "", m.DriverVersion ?? "");
        _online.Set(m.Online ? 1 : 0, id, host);
        _listed.Set(Bool(m.Listed), id, host);
        _verified.Set(m.Verification is null ? null : m.Verification == "verified" ? 1 : 0, id, host);
        _reliability.Set(m.Reliability2, id, host);
        _gpus.Set(m.NumGpus, id, host);
        foreach (var (occupancy, count) in m.OccupancyCounts())
        {
            _occupancy.Set(count, id, host, occupancy);
        }

        if (m.CurrentRentalsRunning is { } running && m.CurrentRentalsRunningOnDemand is { } runningOnDemand
            && m.CurrentRentalsResident is { } resident && m.CurrentRentalsOnDemand is { } onDemand)
        {
            // vast-api.md §4 derived counts.
            var interruptibleRunning = running - runningOnDemand;
            _rentals.Set(runningOnDemand, id, host, "on_demand", "running");
            _rentals.Set(Math.Max(0, onDemand - runningOnDemand), id, host, "on_demand", "stopped");
            _rentals.Set(Math.Max(0, interruptibleRunning), id, host, "interruptible", "running");
            _rentals.Set(Math.Max(0, resident - onDemand - interruptibleRunning), id, host, "interruptible", "stopped");
        }

        _clientEnd.Set(m.ClientEndDate, id, host);
        _reports.Set(m.NumReports ?? reports, id, host);
        var windows = m.MachineMaintenance ?? [];
        _maintenanceWindows.Set(windows.Count, id, host);
        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        _maintenanceNext.Set(windows.Where(w => (w.EffectiveEnd ?? w.StartTime) > now).Min(w => w.StartTime), id, host);
        _gpuPrice.Set(m.ListedGpuCost, id, host);
        _storagePrice.Set(m.ListedStorageCost, id, host);
        _uploadPrice.Set(m.ListedInetUpCost, id, host);
        _downloadPrice.Set(m.ListedInetDownCost, id, host);
        _minBid.Set(m.MinBidPrice, id, host);
        _minChunk.Set(m.ListedMinGpuCount, id, host);
        _endDate.Set(m.EndDate, id, host);
        _discount.Set(m.CreditDiscountMax, id, host);
        _volumeSize.Set(m.VolumeTotalSize * GiB, id, host);
        _volumePrice.Set(m.ListedVolumeCost, id, host);
        _defaultJob.Set(string.IsNullOrEmpty(m.BidImage) ? 0 : 1, id, host);
        _defaultJobPrice.Set(m.BidGpuCost, id, host);
        _earnDay.Set(m.EarnDay, id, host);
        _lastRead.Set(readAt?.ToUnixTimeMilliseconds() / 1000.0, id, host);
    }

    private static double? Bool(bool? value) => value is null ? null : value.Value ? 1 : 0;
}
