using System.ComponentModel.DataAnnotations;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace VastHostAgent.Kernel;

/// <summary>
/// One configuration section and its options type, described by the type's source-generated JSON metadata:
/// key names (camelCase, as in the file), value types, nested sections and lists, and validation attributes.
/// Every configuration problem is phrased from that description — never from framework exception text — as one
/// line naming the key: <c>management.pricing.floor: must be between 0.001 and 100 (got '0')</c>.
/// </summary>
public interface IOptionsSection
{
    /// <summary>The section's key at the root of the configuration (e.g. <c>management</c>).</summary>
    string Name { get; }

    /// <summary>The options type's metadata.</summary>
    JsonTypeInfo Schema { get; }

    /// <summary>Checks the section: unknown keys and values that do not convert first; then binds and validates.</summary>
    IEnumerable<string> Check(IServiceProvider provider, IConfiguration configuration);
}

/// <summary>Reads configuration against an options type's metadata.</summary>
public static class OptionsSchema
{
    /// <summary>The keys of an options object, as written in the configuration file.</summary>
    public static IReadOnlyList<string> Keys(JsonTypeInfo type) =>
        type.Kind == JsonTypeInfoKind.Object ? [.. type.Properties.Select(p => p.Name)] : [];

    /// <summary>
    /// Unknown keys, values that do not convert to their property's type, objects where a value belongs and
    /// values where an object belongs, below <paramref name="section"/> (whose dotted path is <paramref name="path"/>).
    /// </summary>
    public static IEnumerable<string> Walk(string path, IConfigurationSection section, JsonTypeInfo type)
    {
        if (type.Kind != JsonTypeInfoKind.Object)
        {
            yield break;
        }

        foreach (var child in section.GetChildren())
        {
            var property = type.Properties.FirstOrDefault(p => string.Equals(p.Name, child.Key, StringComparison.OrdinalIgnoreCase));
            var key = $"{path}.{child.Key}";
            if (property is null)
            {
                yield return $"{key}: unknown key (known: {string.Join(", ", Keys(type))})";
                continue;
            }

            foreach (var problem in WalkValue($"{path}.{property.Name}", child, property.PropertyType, type.Options))
            {
                yield return problem;
            }
        }
    }

    private static IEnumerable<string> WalkValue(string key, IConfigurationSection value, Type type, System.Text.Json.JsonSerializerOptions options)
    {
        var info = options.GetTypeInfo(type);
        var hasChildren = value.GetChildren().Any();
        switch (info.Kind)
        {
            case JsonTypeInfoKind.Object:
                if (value.Value is { Length: > 0 })
                {
                    yield return $"{key}: must be an object with settings, not a single value";
                    yield break;
                }

                foreach (var problem in Walk(key, value, info))
                {
                    yield return problem;
                }

                yield break;

            case JsonTypeInfoKind.Dictionary when info.ElementType is { } valueType:
                if (value.Value is { Length: > 0 })
                {
                    yield return $"{key}: must be an object of named entries, not a single value";
                    yield break;
                }

                foreach (var item in value.GetChildren())
                {
                    foreach (var problem in WalkValue($"{key}.{item.Key}", item, valueType, options))
                    {
                        yield return problem;
                    }
                }

                yield break;

            case JsonTypeInfoKind.Enumerable when info.ElementType is { } element:
                if (value.Value is { Length: > 0 })
                {
                    yield return $"{key}: must be a list ([...]), not a single value";
                    yield break;
                }

                foreach (var item in value.GetChildren())
                {
                    foreach (var problem in WalkValue($"{key}.{item.Key}", item, element, options))
                    {
                        yield return problem;
                    }
                }

                yield break;

            default:
                if (hasChildren)
                {
                    yield return $"{key}: must be a single value, not an object or a list";
                    yield break;
                }

                if (Convert(value.Value, type) is { } hint)
                {
                    var target = Nullable.GetUnderlyingType(type) ?? type;
                    yield return target.IsEnum
                        ? $"{key}: must be {OneOf(EnumNames(target).ToList())} (got '{value.Value}')"
                        : $"{key}: '{value.Value}' is not {hint}";
                }

                yield break;
        }
    }

    /// <summary>Null when <paramref name="text"/> converts to <paramref name="type"/> as the binder reads it; else what it should be.</summary>
    internal static string? Convert(string? text, Type type)
    {
        var nullable = Nullable.GetUnderlyingType(type);
        var target = nullable ?? type;
        if (string.IsNullOrEmpty(text))
        {
            return nullable is not null || target == typeof(string) ? null : Hint(target);
        }

        var inv = CultureInfo.InvariantCulture;
        var ok = target switch
        {
            _ when target == typeof(string) => true,
            _ when target == typeof(bool) => bool.TryParse(text, out _),
            _ when target == typeof(int) => int.TryParse(text, NumberStyles.Integer, inv, out _),
            _ when target == typeof(long) => long.TryParse(text, NumberStyles.Integer, inv, out _),
            _ when target == typeof(double) => double.TryParse(text, NumberStyles.Float | NumberStyles.AllowThousands, inv, out var d) && double.IsFinite(d),
            _ when target == typeof(TimeSpan) => TimeSpan.TryParse(text, inv, out _),
            _ when target == typeof(DateTimeOffset) => DateTimeOffset.TryParse(text, inv, DateTimeStyles.None, out _),
            _ when target.IsEnum => EnumNames(target).Any(n => string.Equals(n, text, StringComparison.OrdinalIgnoreCase)),
            _ => true,
        };
        return ok ? null : Hint(target);
    }

    private static string Hint(Type type) => type switch
    {
        _ when type == typeof(TimeSpan) => "a valid duration (use hh:mm:ss, e.g. 00:00:05 for 5 seconds, or d.hh:mm:ss)",
        _ when type == typeof(bool) => "true or false",
        _ when type == typeof(int) || type == typeof(long) => "a whole number",
        _ when type == typeof(double) => "a number",
        _ when type == typeof(DateTimeOffset) => "a date and time (ISO 8601, e.g. 2026-12-01T02:00:00Z)",
        _ when type.IsEnum => "one of " + string.Join(", ", EnumNames(type)),
        _ => "a valid value",
    };

    private static string OneOf(List<string> names) => names.Count < 2 ? string.Concat(names) : string.Join(", ", names[..^1]) + " or " + names[^1];

    /// <summary>An enum's names as written in the configuration (camelCase).</summary>
    public static IEnumerable<string> EnumNames(Type type) => Enum.GetNames(type).Select(Camel);

    /// <summary>
    /// Validation attributes over a bound options object, walked through its metadata (nested sections and lists
    /// included). Each problem names the key, says what is wrong and, when the configuration has it, the value given.
    /// </summary>
    public static IEnumerable<string> Validate(string path, object? value, JsonTypeInfo type, IConfiguration configuration)
    {
        if (value is null || type.Kind != JsonTypeInfoKind.Object)
        {
            yield break;
        }

        foreach (var property in type.Properties)
        {
            if (property.Get is not { } get)
            {
                continue;
            }

            var key = $"{path}.{property.Name}";
            var current = get(value);
            foreach (var attribute in property.AttributeProvider?.GetCustomAttributes(typeof(ValidationAttribute), true).OfType<ValidationAttribute>() ?? [])
            {
                if (!attribute.IsValid(current))
                {
                    var raw = configuration[key.Replace('.', ':')];
                    yield return $"{key}: {Message(attribute)}{(raw is null ? "" : $" (got '{raw}')")}";
                }
            }

            var info = type.Options.GetTypeInfo(property.PropertyType);
            if (info.Kind == JsonTypeInfoKind.Object && current is not null)
            {
                foreach (var problem in Validate(key, current, info, configuration))
                {
                    yield return problem;
                }
            }
            else if (info is { Kind: JsonTypeInfoKind.Enumerable, ElementType: { } element } && current is System.Collections.IEnumerable items
                     && type.Options.GetTypeInfo(element) is { Kind: JsonTypeInfoKind.Object } elementInfo)
            {
                var index = 0;
                foreach (var item in items)
                {
                    foreach (var problem in Validate($"{key}.{index.ToString(CultureInfo.InvariantCulture)}", item, elementInfo, configuration))
                    {
                        yield return problem;
                    }

                    index++;
                }
            }
        }
    }

    /// <summary>The attribute's own message, or one phrased from the attribute (never the framework's "The field X…").</summary>
    private static string Message(ValidationAttribute attribute)
    {
        if (!string.IsNullOrEmpty(attribute.ErrorMessage))
        {
            return attribute.ErrorMessage;
        }

        return attribute switch
        {
            RangeAttribute { Maximum: long.MaxValue or int.MaxValue or double.MaxValue } r => string.Create(CultureInfo.InvariantCulture, $"must be at least {r.Minimum}"),
            RangeAttribute r => string.Create(CultureInfo.InvariantCulture, $"must be between {r.Minimum} and {r.Maximum}"),
            RequiredAttribute => "is required",
            RegularExpressionAttribute r => $"must match {r.Pattern}",
            _ => "is not valid",
        };
    }

    /// <summary>An enum value as written in the configuration and shown to the host: <c>DefaultJob</c> → <c>defaultJob</c>.</summary>
    public static string ConfigName<T>(this T value)
        where T : struct, Enum => Camel(value.ToString());

    /// <summary>"MinPeers" → "minPeers".</summary>
    public static string Camel(string name) =>
        name.Length == 0 || char.IsLower(name[0]) ? name : char.ToLowerInvariant(name[0]) + name[1..];
}

/// <summary>Validates an options object's attributes through its metadata (<see cref="OptionsSchema.Validate"/>).</summary>
internal sealed class SchemaValidator<T>(string section, JsonTypeInfo<T> schema, IConfiguration configuration) : IValidateOptions<T>
    where T : class
{
    public ValidateOptionsResult Validate(string? name, T options)
    {
        var problems = OptionsSchema.Validate(section, options, schema, configuration).ToList();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}

/// <summary>The check of one section: the metadata walk, then binding with every validator.</summary>
internal sealed class OptionsSection<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] T>(string name, JsonTypeInfo<T> schema)
    : IOptionsSection
    where T : class
{
    public string Name => name;

    public JsonTypeInfo Schema => schema;

    public IEnumerable<string> Check(IServiceProvider provider, IConfiguration configuration)
    {
        var section = configuration.GetSection(name);
        if (section.Value is { Length: > 0 })
        {
            return [$"{name}: must be an object with settings, not a single value"];
        }

        var shape = OptionsSchema.Walk(name, section, schema).ToList();
        if (shape.Count > 0)
        {
            return shape;
        }

        try
        {
            _ = provider.GetRequiredService<IOptions<T>>().Value;
            return [];
        }
        catch (OptionsValidationException ex)
        {
            // Every validator phrases its failures as "key: message" (SchemaValidator and the features' own rules).
            return ex.Failures;
        }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or OverflowException)
        {
            // The walk above leaves the binder nothing to refuse; should it still, say which section.
            return [$"{name}: cannot be read ({ex.GetBaseException().GetType().Name})"];
        }
    }
}

/// <summary>Registration helpers shared by every feature's <c>AddXxx()</c>.</summary>
public static class OptionsRegistration
{
    /// <summary>
    /// Registers the start-up check of section <paramref name="section"/> (exit code 2, one line per problem)
    /// and the validation of its attributes, both from <paramref name="schema"/>. The feature binds the section
    /// itself (the configuration binder generator needs the concrete type at the call site) and adds its own
    /// rules as <see cref="IValidateOptions{TOptions}"/> that phrase failures as <c>section.key: message</c>.
    /// </summary>
    public static IServiceCollection AddOptionsCheck<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicParameterlessConstructor)] T>(
        this IServiceCollection services, IConfiguration configuration, string section, JsonTypeInfo<T> schema)
        where T : class
    {
        services.AddSingleton<IValidateOptions<T>>(new SchemaValidator<T>(section, schema, configuration));
        services.AddSingleton<IOptionsSection>(new OptionsSection<T>(section, schema));
        services.AddOptions<T>().ValidateOnStart();
        return services;
    }
}
