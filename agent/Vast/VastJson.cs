using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace VastHostAgent.Vast;

/// <summary>A converter for a nullable value the API sends in more than one form: every one writes null the same way.</summary>
internal abstract class NullableValueConverter<T> : JsonConverter<T?>
    where T : struct
{
    public sealed override void Write(Utf8JsonWriter writer, T? value, JsonSerializerOptions options)
    {
        if (value is { } v)
        {
            WriteValue(writer, v);
        }
        else
        {
            writer.WriteNullValue();
        }
    }

    protected abstract void WriteValue(Utf8JsonWriter writer, T value);
}

/// <summary><c>machine_maintenance</c> is a list of windows, or null, or (seen in the wild) a string: tolerate all.</summary>
internal sealed class MaintenanceListConverter : JsonConverter<IReadOnlyList<VastMaintenance>?>
{
    public override IReadOnlyList<VastMaintenance>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            reader.Skip();
            return null;
        }

        var list = new List<VastMaintenance>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType == JsonTokenType.StartObject)
            {
                var item = JsonSerializer.Deserialize(ref reader, VastJsonContext.Default.VastMaintenance);
                if (item is not null)
                {
                    list.Add(item);
                }
            }
            else
            {
                reader.Skip();
            }
        }

        return list;
    }

    public override void Write(Utf8JsonWriter writer, IReadOnlyList<VastMaintenance>? value, JsonSerializerOptions options)
    {
        if (value is null)
        {
            writer.WriteNullValue();
            return;
        }

        writer.WriteStartArray();
        foreach (var item in value)
        {
            JsonSerializer.Serialize(writer, item, VastJsonContext.Default.VastMaintenance);
        }

        writer.WriteEndArray();
    }
}

/// <summary><c>gpus</c> is a list, or <c>{}</c> for hosts without machines.</summary>
internal sealed class GpuMetricsListConverter : JsonConverter<IReadOnlyList<VastGpuMetric>?>
{
    public override IReadOnlyList<VastGpuMetric>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            reader.Skip();
            return [];
        }

        var list = new List<VastGpuMetric>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var item = JsonSerializer.Deserialize(ref reader, VastJsonContext.Default.VastGpuMetric);
            if (item is not null)
            {
                list.Add(item);
            }
        }

        return list;
    }

    public override void Write(Utf8JsonWriter writer, IReadOnlyList<VastGpuMetric>? value, JsonSerializerOptions options) =>
        JsonSerializer.Serialize(writer, value?.ToList() ?? [], VastJsonContext.Default.ListVastGpuMetric);
}

/// <summary>A timestamp as epoch seconds (number or numeric string) or an ISO-8601 string.</summary>
internal sealed class FlexibleTimestampConverter : NullableValueConverter<double>
{
    public override double? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Number:
                return reader.GetDouble();
            case JsonTokenType.String:
                var text = reader.GetString();
                if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
                {
                    return seconds;
                }

                return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
                    ? at.ToUnixTimeMilliseconds() / 1000.0
                    : null;
            default:
                reader.Skip();
                return null;
        }
    }

    protected override void WriteValue(Utf8JsonWriter writer, double value) => writer.WriteNumberValue(value);
}

/// <summary>An integer that may arrive as 8, 8.0, "8" or null.</summary>
internal sealed class LenientInt64Converter : NullableValueConverter<long>
{
    public override long? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Number:
                return reader.TryGetInt64(out var l) ? l : (long)Math.Round(reader.GetDouble());
            case JsonTokenType.String:
                return double.TryParse(reader.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? (long)Math.Round(d) : null;
            case JsonTokenType.Null:
                return null;
            default:
                reader.Skip();
                return null;
        }
    }

    protected override void WriteValue(Utf8JsonWriter writer, long value) => writer.WriteNumberValue(value);
}

/// <summary>A boolean that may arrive as true/false, 1/0 or "true"/"false".</summary>
internal sealed class LenientBooleanConverter : NullableValueConverter<bool>
{
    public override bool? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.TokenType switch
    {
        JsonTokenType.True => true,
        JsonTokenType.False => false,
        JsonTokenType.Number => reader.GetDouble() != 0,
        JsonTokenType.String => reader.GetString() is { } s && (s.Equals("true", StringComparison.OrdinalIgnoreCase) || s == "1"),
        _ => SkipNull(ref reader),
    };

    protected override void WriteValue(Utf8JsonWriter writer, bool value) => writer.WriteBooleanValue(value);

    private static bool? SkipNull(ref Utf8JsonReader reader)
    {
        reader.Skip();
        return null;
    }
}

/// <summary>Source-generated serialisation of the Vast wire models (NativeAOT: no reflection).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    NumberHandling = JsonNumberHandling.AllowReadingFromString,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    Converters = [typeof(LenientInt64Converter), typeof(LenientBooleanConverter)])]
[JsonSerializable(typeof(VastMachinesResponse))]
[JsonSerializable(typeof(List<VastMachine>))]
[JsonSerializable(typeof(VastMachine))]
[JsonSerializable(typeof(VastResult))]
[JsonSerializable(typeof(CreateAsksRequest))]
[JsonSerializable(typeof(MinBidRequest))]
[JsonSerializable(typeof(CreateBidsRequest))]
[JsonSerializable(typeof(ScheduleMaintenanceRequest))]
[JsonSerializable(typeof(CancelMaintenanceRequest))]
[JsonSerializable(typeof(EmptyRequest))]
[JsonSerializable(typeof(List<VastMaintenance>))]
[JsonSerializable(typeof(VastMaintenance))]
[JsonSerializable(typeof(List<VastReport>))]
[JsonSerializable(typeof(VastEarnings))]
[JsonSerializable(typeof(VastUser))]
[JsonSerializable(typeof(VastOffersResponse))]
[JsonSerializable(typeof(VastGpuMetricsResponse))]
[JsonSerializable(typeof(List<VastGpuMetric>))]
[JsonSerializable(typeof(VastGpuMetric))]
public sealed partial class VastJsonContext : JsonSerializerContext;
