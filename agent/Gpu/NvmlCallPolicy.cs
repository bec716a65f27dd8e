using Microsoft.Extensions.Logging;
using static VastHostAgent.Interop.Nvml;

namespace VastHostAgent.Gpu;

/// <summary>
/// What an NVML return code means for the session, by the export that returned it: NOT_SUPPORTED is remembered
/// per GPU, GPU_IS_LOST / RESET_REQUIRED / GPU_NOT_FOUND take the GPU down for the cycle (logged once per code),
/// UNINITIALIZED / LIB_RM_VERSION_MISMATCH ask for re-initialisation, and every failure is counted by export and
/// code for <c>vasthost_nvml_errors_total{function,code}</c>. Counts live as long as the telemetry.
/// </summary>
internal sealed class NvmlCallPolicy(ILogger logger)
{
    private readonly Dictionary<(string Function, Return Code), ulong> _errors = [];

    /// <summary>NVML asked for re-initialisation (or the GPUs changed); the session shuts down at the end of the cycle.</summary>
    public bool ReinitRequested { get; set; }

    /// <summary>Runs the per-call policy: remembers NOT_SUPPORTED, marks a lost GPU, requests re-init, counts errors.</summary>
    public bool Call(NvmlDevice d, string function, Return rc)
    {
        if (rc == Return.Success)
        {
            return true;
        }

        if (rc == Return.NotSupported)
        {
            d.Unsupported.Add(function);
            return false;
        }

        return Check(d, function, rc);
    }

    /// <summary>As <see cref="Call"/>, but NOT_SUPPORTED is neither remembered nor counted.</summary>
    public bool Check(NvmlDevice? d, string function, Return rc)
    {
        switch (rc)
        {
            case Return.Success:
                return true;
            case Return.NotSupported:
                return false;
            case Return.GpuIsLost or Return.ResetRequired or Return.GpuNotFound:
                CountError(function, rc);
                if (d is not null && d.Down is null)
                {
                    d.Down = rc;
                    if (d.LoggedDown != rc)
                    {
                        GpuLog.GpuDown(logger, d.Index, d.Uuid, NvmlCodes.Name(rc), function); // the identity may not be read yet
                        d.LoggedDown = rc;
                    }
                }

                return false;
            case Return.Uninitialized or Return.LibRmVersionMismatch:
                CountError(function, rc);
                ReinitRequested = true;
                return false;
            default:
                CountError(function, rc);
                return false;
        }
    }

    public void CountError(string function, Return rc)
    {
        var key = (function, rc);
        _errors[key] = _errors.GetValueOrDefault(key) + 1;
    }

    public List<NvmlErrorCount> ErrorSnapshot() =>
        [.. _errors.Select(e => new NvmlErrorCount(e.Key.Function, NvmlCodes.Name(e.Key.Code), e.Value))];
}

/// <summary>
/// One read's view of NVML: the GPU, the library's exports, and the policy bound to the read's export, so a body
/// never names the export as a string: the NOT_SUPPORTED cache and the error counter both key on <see cref="Export"/>.
/// </summary>
internal readonly unsafe struct NvmlCall
{
    private readonly NvmlCallPolicy _policy;

    public NvmlCall(NvmlCallPolicy policy, NvmlExports exports, NvmlDevice device, string export)
    {
        _policy = policy;
        Exports = exports;
        Device = device;
        Export = export;
    }

    public NvmlExports Exports { get; }

    public NvmlDevice Device { get; }

    public string Export { get; }

    public nint Handle => Device.Handle;

    /// <summary>False when the GPU went down earlier in this cycle or NVML said the export is not supported on it.</summary>
    public bool Can => Device.Down is null && !Device.Unsupported.Contains(Export);

    /// <summary>True on success; otherwise the policy of <see cref="NvmlCallPolicy.Call"/> (NOT_SUPPORTED remembered).</summary>
    public bool Ok(Return rc) => _policy.Call(Device, Export, rc);

    /// <summary>True on success; otherwise the policy of <see cref="NvmlCallPolicy.Check"/> (NOT_SUPPORTED not remembered).</summary>
    public bool Check(Return rc) => _policy.Check(Device, Export, rc);

    /// <summary>Remembers the export as not supported on this GPU (a NOT_SUPPORTED that came another way than the return code).</summary>
    public void MarkUnsupported() => Device.Unsupported.Add(Export);

    /// <summary>Forgets a NOT_SUPPORTED: for an export called with several arguments, one unsupported must not hide the others.</summary>
    public void ForgetUnsupported() => Device.Unsupported.Remove(Export);

    /// <summary>Calls <paramref name="fn"/>, this read's string export, with a buffer of <paramref name="size"/> bytes, through <see cref="Ok"/>.</summary>
    public string? ReadString(delegate*<nint, byte*, uint, Return> fn, int size)
    {
        var buffer = stackalloc byte[size];
        var rc = fn(Handle, buffer, (uint)size);
        return Ok(rc) ? DecodeString(new ReadOnlySpan<byte>(buffer, size)) : null;
    }
}
