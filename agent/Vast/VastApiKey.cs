namespace VastHostAgent.Vast;

/// <summary>
/// The Vast API key. Its text is only handed to the HTTP Authorization header; <see cref="ToString"/>,
/// logs, exception messages and metrics never see it, and <see cref="Redact"/> scrubs it from any text
/// that comes back from outside (response bodies).
/// </summary>
public sealed class VastApiKey
{
    private readonly string _value;

    public VastApiKey(string value, string source)
    {
        _value = value;
        Source = source;
    }

    /// <summary>Where the key came from, for doctor (never the key itself).</summary>
    public string Source { get; }

    internal string Value => _value;

    /// <summary>Replaces every occurrence of the key in <paramref name="text"/>.</summary>
    public string Redact(string text) => _value.Length == 0 ? text : text.Replace(_value, "[redacted]", StringComparison.Ordinal);

    public override string ToString() => $"[API key from {Source}]";

    /// <summary>A short one-way fingerprint naming the account's key (first 16 hex digits of its SHA-256), for lock file names; never the key.</summary>
    public string Fingerprint() => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(_value)))[..16];
}

/// <summary>
/// Finds the API key: the systemd credential (<c>$CREDENTIALS_DIRECTORY/&lt;vast.apiKeyCredential&gt;</c>), else
/// <c>vast.apiKeyFile</c> (refused when group or others can read it), else the <c>VAST_API_KEY</c>
/// environment variable. Never reads /var/lib/vastai_kaalia/machine_id: that is the machine's own secret.
/// </summary>
public sealed class VastApiKeyProvider
{
    public const string EnvironmentVariable = "VAST_API_KEY";

    private readonly Lock _gate = new();
    private VastApiKey? _key;

    /// <summary>Null when a key is available and safe; otherwise one line saying what is wrong (naming the key, never its value).</summary>
    public string? Check(VastOptions options)
    {
        try
        {
            _ = Load(options);
            return null;
        }
        catch (VastConfigurationException ex)
        {
            return ex.Message;
        }
    }

    public VastApiKey Get(VastOptions options)
    {
        lock (_gate)
        {
            return _key ??= Load(options);
        }
    }

    private static VastApiKey Load(VastOptions options)
    {
        var credentials = Environment.GetEnvironmentVariable("CREDENTIALS_DIRECTORY");
        if (!string.IsNullOrEmpty(credentials))
        {
            // An empty credential is "no key yet": install.sh and the .deb create the file empty so that
            // systemd's LoadCredential= (which fails the start on a missing file) works before a key is added.
            var path = Path.Combine(credentials, options.ApiKeyCredential);
            if (File.Exists(path) && ReadKey(path, "systemd credential " + options.ApiKeyCredential, allowEmpty: true) is { Length: > 0 } key)
            {
                return new VastApiKey(key, $"systemd credential {options.ApiKeyCredential}");
            }
        }

        if (!string.IsNullOrWhiteSpace(options.ApiKeyFile))
        {
            var path = options.ApiKeyFile;
            if (!File.Exists(path))
            {
                throw new VastConfigurationException($"vast.apiKeyFile: {path} does not exist");
            }

            var mode = File.GetUnixFileMode(path);
            if ((mode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
            {
                throw new VastConfigurationException(
                    $"vast.apiKeyFile: {path} can be read by group or others (mode {Octal(mode)}); the key gives control of your machines: run 'chmod 600 {path}'");
            }

            return new VastApiKey(ReadKey(path, "vast.apiKeyFile: " + path), "file " + path);
        }

        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            // The same rule as for the files: one word. A key with a line break inside would fail every call.
            var key = fromEnvironment.Trim();
            if (key.Any(char.IsWhiteSpace))
            {
                throw new VastConfigurationException(
                    $"the {EnvironmentVariable} environment variable does not hold one API key (it contains a line break or a space): set it to the key alone");
            }

            return new VastApiKey(key, "environment variable " + EnvironmentVariable);
        }

        throw new VastConfigurationException(
            $"enabled but no API key: set apiKeyFile (mode 0600), or provide the systemd credential '{options.ApiKeyCredential}' (LoadCredential=), or the {EnvironmentVariable} environment variable");
    }

    /// <summary>The one key in the file; with <paramref name="allowEmpty"/> an empty file gives "" instead of an error.</summary>
    private static string ReadKey(string path, string what, bool allowEmpty = false)
    {
        string text;
        try
        {
            text = File.ReadAllText(path).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new VastConfigurationException($"{what} cannot be read: {ex.GetType().Name}");
        }

        if (text.Length == 0 && allowEmpty)
        {
            return text;
        }

        if (text.Length == 0 || text.Any(char.IsWhiteSpace))
        {
            throw new VastConfigurationException($"{what} does not hold one API key (empty, or several words)");
        }

        return text;
    }

    private static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0x1FF, 8);
}

/// <summary>A problem with the Vast configuration found before any API call.</summary>
public sealed class VastConfigurationException(string message) : Exception(message);
