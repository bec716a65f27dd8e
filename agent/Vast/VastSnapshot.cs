using VastHostAgent.Kernel;

namespace VastHostAgent.Vast;

/// <summary>This feature's part of the <see cref="HostSnapshot"/>, by name.</summary>
public static class VastSnapshot
{
    extension(HostSnapshot snapshot)
    {
        /// <summary>This machine and account as the Vast API reports them; null while the Vast API is off.</summary>
        public VastState? Vast => snapshot.Part<VastState>();

        /// <summary>The snapshot with <c>Vast</c> replaced.</summary>
        public HostSnapshot WithVast(VastState? value) => snapshot.WithPart(value);
    }
}
