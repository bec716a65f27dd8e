using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>Small helpers over System.Text.Json.Nodes: lenient value reads and compact writing.</summary>
internal static class Js
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Compact JSON where every float the emulator produced is written the way Python does (34.0, not 34), so a client
    /// that reads a float field into an integer type fails here as it would against the real API.
    /// Values parsed from requests (echoed in you_sent) keep their original text.
    /// </summary>
    public static string Write(JsonNode? node)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            WriteNode(writer, node);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteNode(Utf8JsonWriter writer, JsonNode? node)
    {
        switch (node)
        {
            case null:
                writer.WriteNullValue();
                break;
            case JsonObject obj:
                writer.WriteStartObject();
                foreach (var (name, value) in obj)
                {
                    writer.WritePropertyName(name);
                    WriteNode(writer, value);
                }

                writer.WriteEndObject();
                break;
            case JsonArray array:
                writer.WriteStartArray();
                foreach (var item in array)
                {
                    WriteNode(writer, item);
                }

                writer.WriteEndArray();
                break;
            case JsonValue value when !value.TryGetValue<JsonElement>(out _) && value.TryGetValue<double>(out var d) && double.IsFinite(d):
                writer.WriteRawValue(Format(d));
                break;
            default:
                node.WriteTo(writer);
                break;
        }
    }

    public static JsonValue? Num(double? value) => value is { } v ? JsonValue.Create(v) : null;

    public static JsonValue? Num(int? value) => value is { } v ? JsonValue.Create(v) : null;

    public static JsonValue? Str(string? value) => value is null ? null : JsonValue.Create(value);

    public static JsonValueKind Kind(JsonNode? node) => node is null ? JsonValueKind.Null : node.GetValueKind();

    /// <summary>A JSON number, as a double.</summary>
    public static bool TryNumber(JsonNode? node, out double value)
    {
        value = 0;
        if (node is not JsonValue v || v.GetValueKind() != JsonValueKind.Number)
        {
            return false;
        }

        if (v.TryGetValue(out double d))
        {
            value = d;
            return true;
        }

        if (v.TryGetValue(out int i))
        {
            value = i;
            return true;
        }

        if (v.TryGetValue(out long l))
        {
            value = l;
            return true;
        }

        return double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>A JSON number or a numeric string (what Python's float() accepts, roughly).</summary>
    public static bool TryNumberOrString(JsonNode? node, out double value)
    {
        if (TryNumber(node, out value))
        {
            return true;
        }

        return node is JsonValue v && v.GetValueKind() == JsonValueKind.String
            && double.TryParse(v.GetValue<string>().Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out value)
            && double.IsFinite(value);
    }

    /// <summary>What Python's int() accepts: an integral number (int(2.0) = 2, int(2.5) = 2 too) or an integer string.</summary>
    public static bool TryInt(JsonNode? node, out int value)
    {
        value = 0;
        if (TryNumber(node, out var d))
        {
            if (!double.IsFinite(d) || d > int.MaxValue || d < int.MinValue)
            {
                return false;
            }

            value = (int)Math.Truncate(d);
            return true;
        }

        return node is JsonValue v && v.GetValueKind() == JsonValueKind.String
            && int.TryParse(v.GetValue<string>().Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out value);
    }

    public static bool TryBool(JsonNode? node, out bool value)
    {
        value = false;
        switch (Kind(node))
        {
            case JsonValueKind.True:
                value = true;
                return true;
            case JsonValueKind.False:
                return true;
            case JsonValueKind.Number when TryNumber(node, out var d):
                value = d != 0;
                return true;
            case JsonValueKind.String:
                var s = node!.GetValue<string>().Trim();
                if (s.Equals("true", StringComparison.OrdinalIgnoreCase) || s == "1")
                {
                    value = true;
                    return true;
                }

                return s.Equals("false", StringComparison.OrdinalIgnoreCase) || s == "0";
            default:
                return false;
        }
    }

    public static string? String(JsonNode? node) => Kind(node) == JsonValueKind.String ? node!.GetValue<string>() : null;

    /// <summary>The text of a scalar (string content, or the JSON text of a number/bool).</summary>
    public static string ScalarText(JsonNode? node) => Kind(node) switch
    {
        JsonValueKind.String => node!.GetValue<string>(),
        JsonValueKind.Null => "null",
        _ => node!.ToJsonString(),
    };

    /// <summary>Parses a query value the way the CLI encodes it: JSON first, raw string otherwise.</summary>
    public static JsonNode? ParseQueryValue(string raw)
    {
        try
        {
            return JsonNode.Parse(raw);
        }
        catch (JsonException)
        {
            return JsonValue.Create(raw);
        }
    }

    public static double Round(double value, int digits) => Math.Round(value, digits, MidpointRounding.AwayFromZero);

    /// <summary>Python's float repr for the common cases: 1.8, 1.0 (not 1), 0.018.</summary>
    public static string Format(double value) =>
        value == Math.Floor(value) && Math.Abs(value) < 1e16
            ? value.ToString("F1", CultureInfo.InvariantCulture)
            : value.ToString("R", CultureInfo.InvariantCulture);
}
