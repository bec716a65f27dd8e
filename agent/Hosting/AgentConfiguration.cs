using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using VastHostAgent.Kernel;

namespace VastHostAgent.Hosting;

/// <summary>A configuration problem, phrased for the host: the key and what is wrong with it.</summary>
public sealed class ConfigurationException(IReadOnlyList<string> problems)
    : Exception(string.Join(Environment.NewLine, problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>
/// Loads configuration in order: built-in defaults (the options classes), then the JSON file
/// (<c>--config</c>, else <c>VASTHOST_CONFIG</c>, else <c>/etc/vast-host-agent/agent.json</c> when it exists),
/// then environment variables prefixed <c>VASTHOST_</c> (<c>VASTHOST_METRICS__LISTENADDRESS</c>), then
/// command-line overrides. Validation binds and validates every options section through the same
/// registrations the daemon uses, and turns every failure into one line naming the key.
/// </summary>
public static class AgentConfiguration
{
    public const string DefaultPath = "/etc/vast-host-agent/agent.json";
    public const string EnvironmentPrefix = "VASTHOST_";
    public const string ConfigPathVariable = "VASTHOST_CONFIG";

    /// <summary>Root keys that are not options sections but are allowed.</summary>
    private static readonly string[] ExtraRootKeys = ["logging", "config", "$schema"];

    /// <summary>Where the JSON file came from, for logs and <c>doctor</c>.</summary>
    public sealed record Source(string? Path, bool Explicit);

    /// <summary>Resolves which file to read: the option, else the environment variable, else the default if present.</summary>
    public static Source ResolvePath(string? optionPath)
    {
        if (!string.IsNullOrWhiteSpace(optionPath))
        {
            return new Source(Path.GetFullPath(optionPath), true);
        }

        var fromEnv = Environment.GetEnvironmentVariable(ConfigPathVariable);
        if (!string.IsNullOrWhiteSpace(fromEnv))
        {
            return new Source(Path.GetFullPath(fromEnv), true);
        }

        return File.Exists(DefaultPath) ? new Source(DefaultPath, false) : new Source(null, false);
    }

    /// <summary>The largest configuration file the agent reads (the example, fully commented, is about 15 KiB).</summary>
    public const int MaxFileBytes = 1024 * 1024;

    /// <summary>How long reading the file may take: a FIFO nobody writes to would otherwise block the start for ever.</summary>
    public static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The user the packaged service runs as (systemd unit, install.sh, the .deb).</summary>
    public const string ServiceUser = "vast-host-agent";

    /// <summary>Builds the configuration. Throws <see cref="ConfigurationException"/> for a missing, unreadable or malformed file.</summary>
    public static IConfigurationRoot Build(Source source, IReadOnlyDictionary<string, string?>? overrides = null)
    {
        var builder = new ConfigurationBuilder();
        if (source.Path is { } path)
        {
            builder.AddJsonStream(new MemoryStream(ReadFile(path), writable: false));
        }

        builder.AddEnvironmentVariables(EnvironmentPrefix);
        if (overrides is not null)
        {
            builder.AddInMemoryCollection(overrides);
        }

        try
        {
            return builder.Build();
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or JsonException)
        {
            throw new ConfigurationException([DescribeLoadFailure(source.Path, ex)]);
        }
    }

    /// <summary>
    /// Reads the whole file into memory, at most <see cref="MaxFileBytes"/> (so <c>--config /dev/zero</c> cannot
    /// grow memory without bound) and within <see cref="ReadTimeout"/> (a FIFO without a writer blocks in open(2)).
    /// Every failure is one line naming the file.
    /// </summary>
    internal static byte[] ReadFile(string path)
    {
        if (Directory.Exists(path))
        {
            throw new ConfigurationException([$"configuration file {path} is a directory, not a file (give the JSON file itself, e.g. {System.IO.Path.Combine(path, "agent.json")})"]);
        }

        // A dedicated background thread: if open(2) or read(2) never returns, the caller still does, and the
        // thread does not keep the process alive.
        var read = Task.Factory.StartNew(() => ReadCapped(path), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (!read.Wait(ReadTimeout))
        {
            throw new ConfigurationException([string.Create(CultureInfo.InvariantCulture,
                $"configuration file {path} could not be read within {ReadTimeout.TotalSeconds:0} s: it is not a regular file (a FIFO waits for a writer); use a regular file")]);
        }

        var (bytes, problem) = read.Result;
        return bytes ?? throw new ConfigurationException([problem!]);
    }

    private static (byte[]? Bytes, string? Problem) ReadCapped(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
            var buffer = new byte[stream.CanSeek ? (int)Math.Min(stream.Length, MaxFileBytes) + 1 : 64 * 1024];
            var total = 0;
            while (total <= MaxFileBytes)
            {
                if (total == buffer.Length)
                {
                    Array.Resize(ref buffer, Math.Min(buffer.Length * 2, MaxFileBytes + 1));
                }

                var n = stream.Read(buffer, total, buffer.Length - total);
                if (n == 0)
                {
                    return (buffer.AsSpan(0, total).ToArray(), null);
                }

                total += n;
            }

            return (null, $"configuration file {path} is larger than {MaxFileBytes / (1024 * 1024)} MiB, the limit for a configuration file (is it the right file?)");
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return (null, $"configuration file {path} does not exist");
        }
        catch (UnauthorizedAccessException)
        {
            return (null, $"configuration file {path} cannot be read: permission denied (the service runs as user {ServiceUser}: make the file and its directories readable to it, e.g. chmod 644 {path})");
        }
        catch (IOException ex)
        {
            return (null, $"configuration file {path} cannot be read: {ex.Message}");
        }
    }

    /// <summary>
    /// Checks every options section registered in <paramref name="services"/> (unknown keys and values that do not
    /// convert, read from each options type's metadata; then binding with every validator), the unknown root keys,
    /// and the rules that involve more than one section. Returns one line per problem, each naming the key.
    /// </summary>
    public static IReadOnlyList<string> Validate(IConfiguration configuration, IServiceCollection services)
    {
        var problems = new List<string>();
        using var provider = services.BuildServiceProvider();
        var sections = provider.GetServices<IOptionsSection>().ToList();

        var known = sections.Select(c => c.Name).Concat(ExtraRootKeys).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var child in configuration.GetChildren())
        {
            if (!known.Contains(child.Key))
            {
                problems.Add($"{child.Key}: unknown section (known: {string.Join(", ", sections.Select(c => c.Name).Order(StringComparer.Ordinal))})");
            }
        }

        foreach (var section in sections)
        {
            problems.AddRange(section.Check(provider, configuration));
        }

        problems.AddRange(CrossSectionProblems(configuration));
        return problems;
    }

    /// <summary>Rules that involve more than one section (each section's own validator cannot see the others).</summary>
    private static IEnumerable<string> CrossSectionProblems(IConfiguration configuration)
    {
        // Listing management works only through the Vast API: without it the daemon would start and manage nothing, silently.
        if (Read(() => configuration.GetSection(Management.ManagementOptions.SectionName).Get<Management.ManagementOptions>())?.Enabled == true
            && Read(() => configuration.GetSection(Vast.VastOptions.SectionName).Get<Vast.VastOptions>())?.Enabled != true)
        {
            yield return "management.enabled: needs vast.enabled=true (listing management works through the Vast API); set vast.enabled to true with an API key, or management.enabled to false";
        }

        var role = Read(() => configuration.GetSection(AgentOptions.SectionName).Get<AgentOptions>())?.Role ?? AgentRole.Standalone;
        if (role == AgentRole.Rig)
        {
            // A rig agent holds no key and makes no Vast call: the controller does that for the whole account.
            if (Read(() => configuration.GetSection(Vast.VastOptions.SectionName).Get<Vast.VastOptions>())?.Enabled == true)
            {
                yield return "vast.enabled: agent.role is rig: a rig agent holds no API key and makes no Vast call (the controller manages the account); remove the vast section or set agent.role to standalone";
            }
        }

        if (role == AgentRole.Controller)
        {
            if (Read(() => configuration.GetSection(Vast.VastOptions.SectionName).Get<Vast.VastOptions>())?.Enabled != true)
            {
                yield return "agent.role: controller manages the account through the Vast API: set vast.enabled to true with an API key";
            }

            foreach (var problem in Fleet.FleetServiceCollectionExtensions.ConfigurationProblems(configuration))
            {
                yield return problem;
            }
        }
    }

    /// <summary>A section bound to its options type; null when it does not bind (its own check reports why).</summary>
    private static T? Read<T>(Func<T?> bind)
        where T : class
    {
        try
        {
            return bind();
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or ArgumentException or OverflowException)
        {
            return null;
        }
    }

    private static string DescribeLoadFailure(string? path, Exception ex)
    {
        var inner = ex.InnerException ?? ex;
        for (var e = (Exception?)ex; e is not null; e = e.InnerException)
        {
            if (e is JsonException)
            {
                inner = e;
                break;
            }
        }

        if (inner is JsonException json)
        {
            var where = json.LineNumber is { } line
                ? string.Create(CultureInfo.InvariantCulture, $" at line {line + 1}, position {json.BytePositionInLine + 1}")
                : "";
            var reason = json.Message.Split(" LineNumber:", 2)[0].Split(" Path:", 2)[0].TrimEnd('.', ' ');
            return $"configuration file {path} is not valid JSON{where}: {reason}";
        }

        return inner is FormatException format
            ? $"configuration file {path}: {format.Message.TrimEnd('.')}"
            : $"configuration file {path} cannot be read: {inner.Message}";
    }
}
