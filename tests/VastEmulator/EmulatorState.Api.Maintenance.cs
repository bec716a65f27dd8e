using System.Globalization;
using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>Maintenance endpoints (dnotify, cancel, list), reports, storage cleanup and force delete.</summary>
public sealed partial class EmulatorState
{
    private ApiResult DnotifyLocked(int caller, int id, JsonObject body, double now)
    {
        if (OwnedLocked(id, caller) is not { } m)
        {
            return new(404, NotFound(id, caller));
        }

        if (!TryEpoch(body["sdate"], out var start))
        {
            return new(400, Error("invalid_args", "sdate must be unix seconds or an ISO-8601 date"));
        }

        if (!Js.TryNumberOrString(body["duration"], out var hours) || hours <= 0 || hours > 24 * 366)
        {
            return new(400, Error("invalid_args", "duration must be a positive number of hours"));
        }

        var category = body.ContainsKey("maintenance_category") ? Js.String(body["maintenance_category"]) : "not provided";
        if (category is null || !MaintenanceCategories.Contains(category))
        {
            return new(400, Error("invalid_args", "maintenance_category must be one of power, internet, disk, gpu, software, other"));
        }

        if (start + hours * 3600 <= now)
        {
            return new(400, Error("invalid_args", "The maintenance window is in the past"));
        }

        // maintenance_reason (removed from the CLI) is accepted and ignored.
        m.Maintenance.Add(new MaintenanceWindow { Id = _nextMaintenanceId++, MachineId = id, StartTime = start, DurationHours = hours, Category = category });
        var notified = m.ActiveRentals.Count();
        return new(200, new JsonObject
        {
            ["success"] = true,
            ["you_sent"] = string.Create(CultureInfo.InvariantCulture, $"{notified} notifications sent"),
        }, Applied: true);
    }

    private ApiResult CancelMaintLocked(int caller, int id, double now)
    {
        if (OwnedLocked(id, caller) is not { } m)
        {
            return new(404, new JsonObject { ["success"] = false, ["msg"] = NoSuchMachine, ["machine_id"] = id, ["user_id"] = caller });
        }

        var deleted = m.Maintenance.Count;
        m.Maintenance.Clear();
        return new(200, new JsonObject
        {
            ["success"] = true,
            ["ctime"] = now,
            ["machine_id"] = id,
            ["msg"] = string.Create(CultureInfo.InvariantCulture, $"deleted {deleted} scheduled maintenance window(s) on machine {id}"),
        }, Applied: true);
    }

    private ApiResult MaintenancesLocked(int caller, IReadOnlyDictionary<string, string> query)
    {
        HashSet<int>? ids = null;
        if (query.TryGetValue("machine_ids", out var raw))
        {
            if (!TryIdList(raw, out var parsed))
            {
                return new(400, Error("invalid_args", "machine_ids must be a JSON list of machine ids"));
            }

            ids = parsed;
        }

        var windows = _machines.Values
            .Where(m => m.OwnerId == caller && (ids is null || ids.Contains(m.Id)))
            .SelectMany(m => m.Maintenance)
            .OrderBy(w => w.StartTime)
            .ThenBy(w => w.Id);
        return new(200, new JsonArray([.. windows.Select(w => (JsonNode)RenderWindow(w))]));
    }

    private ApiResult ReportsLocked(int caller, int id)
    {
        if (!_machines.TryGetValue(id, out var m))
        {
            return new(404, NotFound(id, caller));
        }

        return m.OwnerId != caller
            ? new(403, Error("not_authorized", "Only machine owner can view reports"))
            : new(200, new JsonArray([.. m.Reports.Select(r => (JsonNode)RenderReport(r))]));
    }

    private ApiResult CleanupLocked(int caller, int id, double now)
    {
        if (!_machines.TryGetValue(id, out var m))
        {
            return new(400, Error("invalid_args", "Invalid machine id"));
        }

        if (m.OwnerId != caller)
        {
            return new(403, Error("not_authorized", "Only machine owner can clean up contracts"));
        }

        var deleted = m.ExpiredStorageContracts;
        m.ExpiredStorageContracts = 0;
        return new(200, new JsonObject
        {
            ["success"] = true,
            ["ctime"] = now,
            ["machine_id"] = id,
            ["user_id"] = caller,
            ["num_deleted"] = deleted,
            ["msg"] = string.Create(CultureInfo.InvariantCulture, $"deleted {deleted} expired contracts on machine {id}"),
        }, Applied: true);
    }

    private ApiResult ForceDeleteLocked(int caller, int id)
    {
        if (!_machines.TryGetValue(id, out var m))
        {
            return new(200, new JsonObject { ["success"] = false, ["msg"] = NoSuchMachine });
        }

        if (m.OwnerId != caller)
        {
            return new(200, new JsonObject { ["success"] = false, ["msg"] = "Only machine owner can delete a machine" });
        }

        if (m.ActiveRentals.Any())
        {
            return new(200, new JsonObject { ["success"] = false, ["msg"] = "Machine has active client contracts" });
        }

        _machines.Remove(id);
        return new(200, new JsonObject { ["success"] = true }, Applied: true);
    }
}
