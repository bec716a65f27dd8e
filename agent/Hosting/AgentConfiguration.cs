using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

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
public static partial class AgentConfiguration
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
    /// Binds and validates every options section registered in <paramref name="services"/>'s checks.
    /// Returns one line per problem, each naming the key (e.g. <c>metrics.listenAddress: ...</c>).
    /// </summary>
    public static IReadOnlyList<string> Validate(IConfiguration configuration, IServiceCollection services)
    {
        var problems = new List<string>();
        using var provider = services.BuildServiceProvider();
        var checks = provider.GetServices<IOptionsCheck>().ToList();

        var known = checks.Select(c => c.Section).Concat(ExtraRootKeys).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var child in configuration.GetChildren())
        {
            if (!known.Contains(child.Key))
            {
                problems.Add($"{child.Key}: unknown section (known: {string.Join(", ", checks.Select(c => c.Section).Order(StringComparer.Ordinal))})");
            }
        }

        foreach (var check in checks)
        {
            var section = configuration.GetSection(check.Section);
            if (section.Value is not null)
            {
                problems.Add($"{check.Section}: must be an object with settings, not a single value");
                continue;
            }

            problems.AddRange(check.Run(provider, configuration));
        }

        problems.AddRange(CrossSectionProblems(configuration));
        return problems;
    }

    /// <summary>Rules that involve more than one section (each section's own validator cannot see the others).</summary>
    private static IEnumerable<string> CrossSectionProblems(IConfiguration configuration)
    {
        // Listing management works only through the Vast API: without it the daemon would start and manage nothing, silently.
        if (IsTrue(configuration["management:enabled"]) && !IsTrue(configuration["vast:enabled"]))
        {
            yield return "management.enabled: needs vast.enabled=true (listing management works through the Vast API); set vast.enabled to true with an API key, or management.enabled to false";
        }
    }

    /// <summary>A value the binder would read as true (an invalid one is reported by its section's check).</summary>
    private static bool IsTrue(string? value) => bool.TryParse(value, out var b) && b;

    /// <summary>Phrases an exception from binding or validating section <paramref name="section"/> for the host.</summary>
    internal static IEnumerable<string> Describe(
        string section, Exception ex, IConfiguration configuration, IReadOnlyList<string> validKeys,
        IReadOnlyDictionary<string, (string Path, string[] Keys)>? nested = null)
    {
        switch (ex)
        {
            case OptionsValidationException validation:
                foreach (var failure in validation.Failures)
                {
                    yield return DescribeValidationFailure(section, failure, configuration);
                }

                yield break;

            case InvalidOperationException when UnknownKeys().Match(ex.Message) is { Success: true } unknown:
                var (prefix, known) = nested is not null && nested.TryGetValue(unknown.Groups["type"].Value.Trim(), out var inner)
                    ? ($"{section}.{inner.Path}", inner.Keys)
                    : (section, validKeys);
                foreach (var key in unknown.Groups["keys"].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    var name = key.Trim('\'');
                    yield return $"{prefix}.{name}: unknown key (known: {string.Join(", ", known)})";
                }

                yield break;

            case InvalidOperationException when ConversionFailed().Match(ex.Message) is { Success: true } conversion:
                var path = conversion.Groups["path"].Value;
                var type = conversion.Groups["type"].Value;
                yield return $"{Dotted(path)}: '{configuration[path]}' is not {TypeHint(type)}";
                yield break;

            default:
                yield return $"{section}: {ex.GetBaseException().Message}";
                yield break;
        }
    }

    private static string DescribeValidationFailure(string section, string failure, IConfiguration configuration)
    {
        // Source-generated validators report: "<Member>: <message>" or
        // "DataAnnotation validation failed for '<Type>' members: '<Member>' with the error: '<message>'."
        var match = DataAnnotationFailure().Match(failure);
        string member, message;
        if (match.Success)
        {
            member = NestedMember(match);
            message = match.Groups["message"].Value;
        }
        else if (failure.IndexOf(": ", StringComparison.Ordinal) is > 0 and var colon && !failure[..colon].Contains(' ', StringComparison.Ordinal))
        {
            member = failure[..colon];
            message = failure[(colon + 2)..];
        }
        else
        {
            return $"{section}: {PlainMessage(failure)}";
        }

        var key = $"{section}:{member.Replace('.', ':')}";
        var value = configuration[key];
        var got = value is null ? "" : $" (got '{value}')";
        return $"{section}.{string.Join('.', member.Split('.').Select(Camel))}: {PlainMessage(message).TrimEnd('.')}{got}";
    }

    /// <summary>
    /// A DataAnnotations message without the C# member name it starts with: the line names the key already.
    /// The options validator generator's own copy of [Range] ignores ErrorMessage (dotnet/runtime#123137) and
    /// says "The field ManagementOptions.Jitter must be between 0 and 0.5."; [Required] without a message says
    /// "The AgentOptions.StateDirectory field is required.".
    /// </summary>
    internal static string PlainMessage(string message)
    {
        var match = DefaultMessage().Match(message.Trim());
        if (!match.Success)
        {
            return message;
        }

        var rest = match.Groups["rest"].Value.TrimEnd('.');
        // [Range(0, long.MaxValue)] (a lower bound only) reads "between 0 and 9.223372036854776E+18".
        var between = RangeMessage().Match(rest);
        return between.Success && double.TryParse(between.Groups["max"].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var max) && max >= 1e15
            ? $"must be at least {between.Groups["min"].Value}"
            : rest;
    }

    /// <summary>
    /// A nested section's validator failure as "<paramref name="prefix"/>Member: message", whichever form the
    /// source-generated validator used, so the top-level phrasing names the full key.
    /// </summary>
    public static string NormalizeFailure(string prefix, string failure)
    {
        var match = DataAnnotationFailure().Match(failure);
        return match.Success ? $"{prefix}{NestedMember(match)}: {PlainMessage(match.Groups["message"].Value)}" : prefix + failure;
    }

    /// <summary>Adds a nested section validator's failures to <paramref name="failures"/>, each named with its full key.</summary>
    public static void AddFailures(List<string> failures, ValidateOptionsResult result, string prefix)
    {
        if (result.Failed)
        {
            failures.AddRange(result.Failures.Select(f => NormalizeFailure(prefix, f)));
        }
    }

    /// <summary>"ManagementOptions.Pricing.Market" + "MinPeers" → "Pricing.Market.MinPeers" (nested sections validated with [ValidateObjectMembers]).</summary>
    private static string NestedMember(Match match)
    {
        var type = match.Groups["type"].Value;
        var dot = type.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? match.Groups["member"].Value : $"{type[(dot + 1)..]}.{match.Groups["member"].Value}";
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

    private static string TypeHint(string type) => type switch
    {
        "System.TimeSpan" => "a valid duration (use hh:mm:ss, e.g. 00:00:05 for 5 seconds, or d.hh:mm:ss)",
        "System.Boolean" => "true or false",
        "System.Int32" or "System.Int64" => "a whole number",
        "System.Double" or "System.Decimal" => "a number",
        _ => $"a valid {type.Split('.')[^1]}",
    };

    private static string Dotted(string path)
    {
        var parts = path.Split(':');
        return string.Join('.', parts.Select((p, i) => i == 0 ? p : Camel(p)));
    }

    internal static string Camel(string name) =>
        name.Length == 0 || char.IsLower(name[0]) ? name : char.ToLowerInvariant(name[0]) + name[1..];

    [GeneratedRegex(@"following properties were not found on the instance of (?<type>[^:]+): (?<keys>.+)$", RegexOptions.Singleline)]
    private static partial Regex UnknownKeys();

    [GeneratedRegex(@"Failed to convert configuration value (?:'[^']*' )?at '(?<path>[^']+)' to type '(?<type>[^']+)'")]
    private static partial Regex ConversionFailed();

    [GeneratedRegex(@"^The (?:field (?<name>[\w.\[\]]+) (?<rest>.+)|(?<name>[\w.\[\]]+) field (?<rest>.+))$", RegexOptions.Singleline)]
    private static partial Regex DefaultMessage();

    [GeneratedRegex(@"^must be between (?<min>\S+) and (?<max>\S+)$")]
    private static partial Regex RangeMessage();

    [GeneratedRegex(@"for '(?<type>[^']*)' members: '(?<member>[^']+)' with the error: '(?<message>.*)'\.?$", RegexOptions.Singleline)]
    private static partial Regex DataAnnotationFailure();
}

/// <summary>One options section to bind and validate at start.</summary>
public interface IOptionsCheck
{
    string Section { get; }

    IEnumerable<string> Run(IServiceProvider provider, IConfiguration configuration);
}

/// <summary>Resolves <c>IOptions&lt;T&gt;</c> (binding plus validators) and phrases any failure.</summary>
internal sealed class OptionsCheck<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] T>(
    string section, IReadOnlyList<string> validKeys, IReadOnlyDictionary<string, (string Path, string[] Keys)>? nested = null) : IOptionsCheck where T : class
{
    public string Section => section;

    public IEnumerable<string> Run(IServiceProvider provider, IConfiguration configuration)
    {
        try
        {
            _ = provider.GetRequiredService<IOptions<T>>().Value;
            return [];
        }
        catch (Exception ex) when (ex is OptionsValidationException or InvalidOperationException or FormatException or OverflowException)
        {
            return [.. AgentConfiguration.Describe(section, ex, configuration, validKeys, nested)];
        }
    }
}

/// <summary>Registration helpers shared by every feature's <c>AddXxx()</c>.</summary>
public static class OptionsRegistration
{
    /// <summary>
    /// Registers <typeparamref name="TValidator"/> and the start-up check that turns binding and validation
    /// failures of section <paramref name="section"/> into exit code 2. The feature binds the section itself
    /// (the configuration binder generator needs the concrete type at the call site).
    /// </summary>
    public static IServiceCollection AddOptionsCheck<
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] T,
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TValidator>(
        this IServiceCollection services, string section, params string[] validKeys)
        where T : class
        where TValidator : class, IValidateOptions<T> =>
        services.AddOptionsCheck<T, TValidator>(section, validKeys, null);

    /// <summary>As above, for a section with nested objects: type full name → (path under the section, its keys).</summary>
    public static IServiceCollection AddOptionsCheck<
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] T,
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TValidator>(
        this IServiceCollection services, string section, string[] validKeys, IReadOnlyDictionary<string, (string Path, string[] Keys)>? nested)
        where T : class
        where TValidator : class, IValidateOptions<T>
    {
        services.AddSingleton<IValidateOptions<T>, TValidator>();
        services.AddSingleton<IOptionsCheck>(new OptionsCheck<T>(section, validKeys, nested));
        services.AddOptions<T>().ValidateOnStart();
        return services;
    }
}
