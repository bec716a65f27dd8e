using Microsoft.Extensions.Configuration;
using VastHostAgent.Kernel;
using VastHostAgent.Vast;

namespace VastHostAgent.Fleet;

/// <summary>
/// One controller per account: a flock on <c>{fleet.lockDirectory}/vast-host-agent-controller-{key fingerprint}.lock</c>
/// (the fingerprint is a one-way hash of the API key, never the key). A second controller for the same account on
/// the host refuses to start with one line saying so.
/// </summary>
public static class ControllerLock
{
    /// <summary>Takes the lock; <c>Busy</c> when another controller holds it, <c>Warning</c> when it cannot be taken at all.</summary>
    public static (IDisposable? Lock, string? Busy, string? Warning) Acquire(IConfiguration configuration)
    {
        var fleet = configuration.GetSection(FleetOptions.SectionName).Get<FleetOptions>() ?? new FleetOptions();
        var vast = configuration.GetSection(VastOptions.SectionName).Get<VastOptions>() ?? new VastOptions();
        string fingerprint;
        try
        {
            fingerprint = new VastApiKeyProvider().Get(vast).Fingerprint();
        }
        catch (VastConfigurationException ex)
        {
            return (null, null, "no per-account controller lock: " + ex.Message);
        }

        var path = Path.Combine(fleet.LockDirectory, $"vast-host-agent-controller-{fingerprint}.lock");
        var (held, busy, problem) = ProcessLock.Acquire(path);
        return held is not null ? (held, null, null)
            : busy ? (null, $"another controller is already running for this Vast account (it holds {path}): one controller per account; stop it first", null)
            : (null, null, $"cannot take the per-account controller lock ({problem}): a second controller for this account would not be noticed");
    }
}
