using VastHostAgent.Interop;
using static VastHostAgent.Interop.Nvml;

namespace VastHostAgent.Gpu;

/// <summary>What a read does with NVML, through the call bound to its export, and the part of the reading it fills.</summary>
internal delegate void NvmlReadBody<T>(NvmlCall call, ref T target);

/// <summary>
/// One NVML read: the export it calls, named once (<c>nameof</c> its declaration in <c>Interop.Nvml.cs</c>), and its
/// body. The body reaches NVML through an <see cref="NvmlCall"/> bound to <see cref="Export"/>, so the NOT_SUPPORTED
/// cache and the <c>function</c> label of <c>vasthost_nvml_errors_total</c> both take the name from this one place.
/// </summary>
internal sealed record NvmlRead<T>(string Export, NvmlReadBody<T> Body);

/// <summary>
/// Every per-GPU NVML read, in call order, one row per export: identity and statics once per initialisation, then
/// each cycle the presence reads, the other readings and the process lists (<see cref="NvmlProcesses"/>). A read
/// gated on the cache asks <see cref="NvmlCall.Can"/> first; a versioned variant checks the library's exports.
/// </summary>
internal static unsafe class NvmlReads
{
    private static readonly GpuClock[] AllClocks = [GpuClock.Graphics, GpuClock.Sm, GpuClock.Memory, GpuClock.Video];

    /// <summary>Identity, after the handle and the UUID; a failed read leaves the default (name "unknown", the enumeration index).</summary>
    public static readonly NvmlRead<DeviceIdentityParts>[] Identity =
    [
        new(nameof(nvmlDeviceGetName), static (c, ref p) => p.Name = c.ReadString(&nvmlDeviceGetName, DeviceNameBufferSize) ?? p.Name),
        new(nameof(nvmlDeviceGetIndex), static (c, ref p) =>
        {
            uint index;
            if (c.Ok(nvmlDeviceGetIndex(c.Handle, &index)))
            {
                p.Index = (int)index;
            }
        }),
        new(nameof(nvmlDeviceGetPciInfo_v3), static (c, ref p) =>
        {
            PciInfo pci;
            if (c.Ok(nvmlDeviceGetPciInfo_v3(c.Handle, &pci)))
            {
                p.PciBusId = DecodeString(new ReadOnlySpan<byte>(pci.BusId, 32));
            }
        }),
        new(nameof(nvmlDeviceGetMinorNumber), static (c, ref p) =>
        {
            uint minor;
            p.MinorNumber = c.Ok(nvmlDeviceGetMinorNumber(c.Handle, &minor)) ? (int)minor : null;
        }),
        new(nameof(nvmlDeviceGetVbiosVersion), static (c, ref p) => p.VbiosVersion = c.ReadString(&nvmlDeviceGetVbiosVersion, DeviceVbiosVersionBufferSize)),
        new(nameof(nvmlDeviceGetCudaComputeCapability), static (c, ref p) =>
        {
            int major, minor;
            p.ComputeCapability = c.Ok(nvmlDeviceGetCudaComputeCapability(c.Handle, &major, &minor))
                ? FormattableString.Invariant($"{major}.{minor}")
                : null;
        }),
    ];

    /// <summary>Readings that do not change while the driver runs, once per initialisation (not gated on the cache).</summary>
    public static readonly NvmlRead<DeviceStatics>[] Statics =
    [
        new(nameof(nvmlDeviceGetTemperatureThreshold), static (c, ref s) =>
        {
            s.ShutdownTemp = Threshold(c, TemperatureThreshold.Shutdown);
            s.SlowdownTemp = Threshold(c, TemperatureThreshold.Slowdown);
            s.GpuMaxTemp = Threshold(c, TemperatureThreshold.GpuMax);
            s.MemoryMaxTemp = Threshold(c, TemperatureThreshold.MemoryMax);
            // The thresholds share the export; a NOT_SUPPORTED for one must not hide the others.
            c.ForgetUnsupported();

            static double? Threshold(NvmlCall c, TemperatureThreshold threshold)
            {
                uint celsius;
                return c.Ok(nvmlDeviceGetTemperatureThreshold(c.Handle, threshold, &celsius)) ? celsius : null;
            }
        }),
        new(nameof(nvmlDeviceGetPowerManagementDefaultLimit), static (c, ref s) =>
        {
            uint mw;
            s.DefaultPowerLimitWatts = c.Ok(nvmlDeviceGetPowerManagementDefaultLimit(c.Handle, &mw)) ? mw / 1000.0 : null;
        }),
        new(nameof(nvmlDeviceGetMaxPcieLinkGeneration), static (c, ref s) =>
        {
            uint gen;
            s.PcieGenMax = c.Ok(nvmlDeviceGetMaxPcieLinkGeneration(c.Handle, &gen)) ? (int)gen : null;
        }),
        new(nameof(nvmlDeviceGetMaxPcieLinkWidth), static (c, ref s) =>
        {
            uint width;
            s.PcieWidthMax = c.Ok(nvmlDeviceGetMaxPcieLinkWidth(c.Handle, &width)) ? (int)width : null;
        }),
        new(nameof(nvmlDeviceGetMaxClockInfo), static (c, ref s) =>
        {
            var max = new Dictionary<GpuClock, double>();
            foreach (var clock in AllClocks)
            {
                uint mhz;
                if (c.Ok(nvmlDeviceGetMaxClockInfo(c.Handle, ToNative(clock), &mhz)) && mhz > 0)
                {
                    max[clock] = mhz * 1e6;
                }

                c.ForgetUnsupported(); // per clock domain, as for the thresholds
            }

            s.MaxClocks = max;
        }),
        new(nameof(nvmlDeviceGetNumFans), static (c, ref s) =>
        {
            uint fans;
            if (c.Exports.NumFans && c.Ok(nvmlDeviceGetNumFans(c.Handle, &fans)))
            {
                s.FanCount = (int)fans;
            }
            else
            {
                s.FanCount = c.Exports.FanSpeedV1 ? 1 : 0;
                s.LegacyFan = true;
            }
        }),
    ];

    /// <summary>The first reads of a cycle: a GPU found lost or needing a reset by them ends its cycle there.</summary>
    public static readonly NvmlRead<GpuReadingBuilder>[] Presence =
    [
        new(nameof(nvmlDeviceGetUtilizationRates), static (c, ref r) =>
        {
            Utilization util;
            if (c.Can && c.Ok(nvmlDeviceGetUtilizationRates(c.Handle, &util)))
            {
                r.Util = util.Gpu / 100.0;
                r.MemUtil = util.Memory / 100.0;
            }
        }),
        new(nameof(nvmlDeviceGetTemperature), static (c, ref r) =>
        {
            uint celsius;
            if (c.Can && c.Ok(nvmlDeviceGetTemperature(c.Handle, 0, &celsius)))
            {
                r.Temp = celsius;
            }
        }),
        new(nameof(nvmlDeviceGetMemoryInfo_v2), static (c, ref r) =>
        {
            if (!c.Exports.MemoryInfoV2 || !c.Can)
            {
                return;
            }

            var m = new MemoryV2 { Version = MemoryV2Version };
            var rc = nvmlDeviceGetMemoryInfo_v2(c.Handle, &m);
            if (rc == Return.Success)
            {
                r.MemTotal = m.Total;
                r.MemUsed = m.Used;
                r.MemFree = m.Free;
                r.MemReserved = m.Reserved;
                return;
            }

            if (rc is not (Return.NotSupported or Return.ArgumentVersionMismatch or Return.FunctionNotFound))
            {
                c.Check(rc);
                return;
            }

            // An older driver behind a newer export: fall back to v1 for good (used then includes reserved).
            c.MarkUnsupported();
        }),
        new(nameof(nvmlDeviceGetMemoryInfo), static (c, ref r) =>
        {
            // Only where the library has no _v2, or NVML said _v2 is not supported on this GPU.
            if (c.Exports.MemoryInfoV2 && !c.Device.Unsupported.Contains(nameof(nvmlDeviceGetMemoryInfo_v2)))
            {
                return;
            }

            Memory m;
            if (c.Can && c.Ok(nvmlDeviceGetMemoryInfo(c.Handle, &m)))
            {
                r.MemTotal = m.Total;
                r.MemUsed = m.Used;
                r.MemFree = m.Free;
            }
        }),
    ];

    /// <summary>The other readings of a cycle, for a GPU the presence reads found up.</summary>
    public static readonly NvmlRead<GpuReadingBuilder>[] Cycle =
    [
        new(nameof(nvmlDeviceGetEncoderUtilization), static (c, ref r) =>
        {
            uint percent, periodUs;
            if (c.Can && c.Ok(nvmlDeviceGetEncoderUtilization(c.Handle, &percent, &periodUs)))
            {
                r.EncUtil = percent / 100.0;
            }
        }),
        new(nameof(nvmlDeviceGetDecoderUtilization), static (c, ref r) =>
        {
            uint percent, periodUs;
            if (c.Can && c.Ok(nvmlDeviceGetDecoderUtilization(c.Handle, &percent, &periodUs)))
            {
                r.DecUtil = percent / 100.0;
            }
        }),
        new(nameof(nvmlDeviceGetFieldValues), static (c, ref r) =>
        {
            // Memory temperature. The call can succeed with the field itself not supported: remembered the same way.
            FieldValue field = default;
            field.FieldId = FieldMemoryTemperature;
            if (!(c.Can && c.Ok(nvmlDeviceGetFieldValues(c.Handle, 1, &field))))
            {
                return;
            }

            if (field.NvmlReturn == Return.Success)
            {
                r.MemTemp = FieldAsDouble(field);
            }
            else if (field.NvmlReturn == Return.NotSupported)
            {
                c.MarkUnsupported();
            }
            else
            {
                c.Check(field.NvmlReturn);
            }
        }),
        new(nameof(nvmlDeviceGetPowerUsage), static (c, ref r) =>
        {
            uint mw;
            if (c.Can && c.Ok(nvmlDeviceGetPowerUsage(c.Handle, &mw)))
            {
                r.Power = mw / 1000.0;
            }
        }),
        new(nameof(nvmlDeviceGetEnforcedPowerLimit), static (c, ref r) =>
        {
            uint mw;
            if (c.Can && c.Ok(nvmlDeviceGetEnforcedPowerLimit(c.Handle, &mw)))
            {
                r.PowerLimit = mw / 1000.0;
            }
        }),
        new(nameof(nvmlDeviceGetTotalEnergyConsumption), static (c, ref r) =>
        {
            ulong mj;
            if (c.Can && c.Ok(nvmlDeviceGetTotalEnergyConsumption(c.Handle, &mj)))
            {
                r.Energy = mj / 1000.0;
            }
        }),
        new(nameof(nvmlDeviceGetFanSpeed_v2), static (c, ref r) =>
        {
            // Every fan NVML counts, every cycle: not gated on the cache, a fan NVML does not support is just absent.
            if (!c.Exports.FanSpeedV2 || c.Device.Statics.LegacyFan)
            {
                return;
            }

            for (var fan = 0; fan < c.Device.Statics.FanCount; fan++)
            {
                uint percent;
                if (c.Ok(nvmlDeviceGetFanSpeed_v2(c.Handle, (uint)fan, &percent)))
                {
                    r.Fans.Add((fan, percent / 100.0));
                }
            }
        }),
        new(nameof(nvmlDeviceGetFanSpeed), static (c, ref r) =>
        {
            // Fan 0 only: a library without _v2 (not gated on the cache), or a GPU without a fan count (gated).
            var legacy = c.Device.Statics.LegacyFan;
            if (c.Exports.FanSpeedV2 && !legacy)
            {
                return;
            }

            uint percent;
            if (c.Device.Statics.FanCount > 0 && (!legacy || c.Can) && c.Ok(nvmlDeviceGetFanSpeed(c.Handle, &percent)))
            {
                r.Fans.Add((0, percent / 100.0));
            }
        }),
        new(nameof(nvmlDeviceGetClockInfo), static (c, ref r) =>
        {
            foreach (var clock in AllClocks)
            {
                uint mhz;
                if (c.Can && c.Ok(nvmlDeviceGetClockInfo(c.Handle, ToNative(clock), &mhz)))
                {
                    r.Clocks[clock] = mhz * 1e6;
                }
            }
        }),
        new(nameof(nvmlDeviceGetPerformanceState), static (c, ref r) =>
        {
            int pstate;
            if (c.Can && c.Ok(nvmlDeviceGetPerformanceState(c.Handle, &pstate)) && pstate is >= 0 and <= 15)
            {
                r.PState = pstate;
            }
        }),
        new(nameof(nvmlDeviceGetCurrentClocksEventReasons), static (c, ref r) =>
        {
            ulong reasons;
            if (c.Exports.ClocksEventReasons && c.Can && c.Ok(nvmlDeviceGetCurrentClocksEventReasons(c.Handle, &reasons)))
            {
                r.Reasons = (ClockEventReasons)reasons;
            }
        }),
        new(nameof(nvmlDeviceGetCurrentClocksThrottleReasons), static (c, ref r) =>
        {
            // The older name of the same reading, where the library lacks the newer one.
            ulong reasons;
            if (!c.Exports.ClocksEventReasons && c.Can && c.Ok(nvmlDeviceGetCurrentClocksThrottleReasons(c.Handle, &reasons)))
            {
                r.Reasons = (ClockEventReasons)reasons;
            }
        }),
        new(nameof(nvmlDeviceGetCurrPcieLinkGeneration), static (c, ref r) =>
        {
            uint gen;
            if (c.Can && c.Ok(nvmlDeviceGetCurrPcieLinkGeneration(c.Handle, &gen)))
            {
                r.PcieGen = (int)gen;
            }
        }),
        new(nameof(nvmlDeviceGetCurrPcieLinkWidth), static (c, ref r) =>
        {
            uint width;
            if (c.Can && c.Ok(nvmlDeviceGetCurrPcieLinkWidth(c.Handle, &width)))
            {
                r.PcieWidth = (int)width;
            }
        }),
        new(nameof(nvmlDeviceGetPcieReplayCounter), static (c, ref r) =>
        {
            uint replays;
            if (c.Can && c.Ok(nvmlDeviceGetPcieReplayCounter(c.Handle, &replays)))
            {
                r.PcieReplay = replays;
            }
        }),
        new(nameof(nvmlDeviceGetPersistenceMode), static (c, ref r) =>
        {
            int mode;
            if (c.Can && c.Ok(nvmlDeviceGetPersistenceMode(c.Handle, &mode)))
            {
                r.Persistence = mode != 0;
            }
        }),
        new(nameof(nvmlDeviceGetEccMode), static (c, ref r) =>
        {
            int current, pending;
            if (c.Can && c.Ok(nvmlDeviceGetEccMode(c.Handle, &current, &pending)))
            {
                r.Ecc = current != 0;
            }
        }),
        new(nameof(nvmlDeviceGetTotalEccErrors), static (c, ref r) =>
        {
            // Only with ECC on. One counter kind NOT_SUPPORTED must not hide the others: neither remembered nor counted.
            if (r.Ecc != true)
            {
                return;
            }

            r.EccVolCorr = Errors(c, MemoryErrorType.Corrected, EccCounterType.Volatile);
            r.EccVolUnc = Errors(c, MemoryErrorType.Uncorrected, EccCounterType.Volatile);
            r.EccAggCorr = Errors(c, MemoryErrorType.Corrected, EccCounterType.Aggregate);
            r.EccAggUnc = Errors(c, MemoryErrorType.Uncorrected, EccCounterType.Aggregate);

            static ulong? Errors(NvmlCall c, MemoryErrorType type, EccCounterType counter)
            {
                ulong count;
                return c.Check(nvmlDeviceGetTotalEccErrors(c.Handle, type, counter, &count)) ? count : null;
            }
        }),
        new(nameof(nvmlDeviceGetRemappedRows), static (c, ref r) =>
        {
            uint corr, unc, pending, failed;
            if (c.Can && c.Ok(nvmlDeviceGetRemappedRows(c.Handle, &corr, &unc, &pending, &failed)))
            {
                r.RemapCorr = corr;
                r.RemapUnc = unc;
                r.RemapPending = pending != 0;
                r.RemapFailed = failed != 0;
            }
        }),
    ];

    /// <summary>Runs <paramref name="reads"/> in order on one GPU, each bound to its export.</summary>
    public static void Run<T>(NvmlRead<T>[] reads, NvmlCallPolicy policy, NvmlExports exports, NvmlDevice device, ref T target)
    {
        foreach (var read in reads)
        {
            read.Body(new NvmlCall(policy, exports, device, read.Export), ref target);
        }
    }

    /// <summary>
    /// One cycle of one GPU: a GPU down after the presence reads, or after all of them, reports only that. With
    /// <paramref name="gpm"/>, the GPU's GPM sample too (its profiling figures, where it supports GPM).
    /// </summary>
    public static GpuReading ReadDevice(NvmlCallPolicy policy, NvmlExports exports, NvmlDevice device, bool processes, NvmlGpm? gpm = null)
    {
        device.Down = null;
        var r = new GpuReadingBuilder(device.Statics.FanCount);
        Run(Presence, policy, exports, device, ref r);
        if (device.Down is not null)
        {
            return device.DownReading();
        }

        Run(Cycle, policy, exports, device, ref r);
        gpm?.Read(policy, exports, device, ref r);
        if (processes)
        {
            Run(NvmlProcesses.Reads, policy, exports, device, ref r);
        }

        return device.Down is not null ? device.DownReading() : r.Build(device);
    }

    private static double? FieldAsDouble(in FieldValue field) => (Nvml.ValueType)field.ValueType switch
    {
        Nvml.ValueType.Double => BitConverter.UInt64BitsToDouble(field.Value),
        Nvml.ValueType.UnsignedInt => (uint)field.Value,
        Nvml.ValueType.UnsignedLong or Nvml.ValueType.UnsignedLongLong => field.Value,
        Nvml.ValueType.SignedLongLong => (long)field.Value,
        Nvml.ValueType.SignedInt => (int)(uint)field.Value,
        Nvml.ValueType.UnsignedShort => (ushort)field.Value,
        _ => null,
    };

    private static ClockType ToNative(GpuClock clock) => clock switch
    {
        GpuClock.Graphics => ClockType.Graphics,
        GpuClock.Sm => ClockType.Sm,
        GpuClock.Memory => ClockType.Memory,
        _ => ClockType.Video,
    };
}
