using Microsoft.Extensions.Logging;

namespace VastHostAgent.Host;

/// <summary>Log messages of the host sensors feature (event ids 2000-2099).</summary>
internal static partial class HostLog
{
    [LoggerMessage(2000, LogLevel.Information, "Docker data root {Path} does not exist yet; reporting the filesystem of {Measured}")]
    public static partial void DiskPathMissing(ILogger logger, string path, string measured);
}
