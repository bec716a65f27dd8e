using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VastEmulator;

/// <summary>
/// The unauthenticated test-control API under /_emulator/ (README.md lists every route). Not logged in the request log.
/// </summary>
internal sealed class AdminHttpHandler(EmulatorState state)
{
    public async Task HandleAsync(HttpContext context)
    {
        var method = context.Request.Method.ToUpperInvariant();
        var segments = (context.Request.Path.Value ?? "").Split('/', StringSplitOptions.RemoveEmptyEntries)[1..];
        JsonObject body;
        try
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            var text = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
            body = string.IsNullOrWhiteSpace(text) ? [] : JsonNode.Parse(text) as JsonObject ?? throw new EmulatorException(400, "the body must be a JSON object");
            var (status, response) = Dispatch(method, segments, body);
            await WriteAsync(context, status, response).ConfigureAwait(false);
        }
        catch (JsonException)
        {
            await WriteAsync(context, 400, new JsonObject { ["error"] = "invalid JSON body" }).ConfigureAwait(false);
        }
        catch (EmulatorException e)
        {
            await WriteAsync(context, e.Status, new JsonObject { ["error"] = e.Message }).ConfigureAwait(false);
        }
        catch (InvalidOperationException e)
        {
            // A JSON value of the wrong type (e.g. "gpus": "two").
            await WriteAsync(context, 400, new JsonObject { ["error"] = e.Message }).ConfigureAwait(false);
        }
        catch (FormatException e)
        {
            await WriteAsync(context, 400, new JsonObject { ["error"] = e.Message }).ConfigureAwait(false);
        }
    }

    private (int Status, JsonNode? Body) Dispatch(string method, string[] path, JsonObject body)
    {
        switch (method, path)
        {
            case ("GET", []):
                return (200, new JsonObject
                {
                    ["emulator"] = "vast-api",
                    ["endpoints"] = new JsonArray([.. Endpoints.Names.Select(n => (JsonNode)n)]),
                    ["primary_user_id"] = state.PrimaryUserId,
                    ["other_user_id"] = state.OtherUserId,
                    ["own_machine_ids"] = new JsonArray([.. state.OwnMachineIds.Select(i => (JsonNode)i)]),
                    ["other_machine_id"] = state.OtherMachineId,
                });
            case ("GET", ["requests"]):
                return (200, state.RequestsJson());
            case ("DELETE", ["requests"]):
                state.ClearRequests();
                return Ok();
            case ("GET", ["state"]):
                return (200, state.StateJson());
            case ("GET", ["offers"]):
                return (200, state.OffersJson());
            case ("GET", ["faults"]):
                return (200, state.StateJson()["faults"]!.DeepClone());
            case ("POST", ["faults"]):
                state.AddFault(new FaultSpec(
                    Endpoint: Js.String(body["endpoint"]) ?? "*",
                    Status: body["status"] is { } s ? s.GetValue<int>() : null,
                    Count: body["count"]?.GetValue<int>() ?? 1,
                    DelayMs: body["delayMs"]?.GetValue<int>() ?? 0,
                    Malformed: body["malformed"]?.GetValue<bool>() ?? false,
                    Timeout: body["timeout"]?.GetValue<bool>() ?? false,
                    PassThrough: body["passThrough"]?.GetValue<bool>() ?? false));
                return Ok();
            case ("DELETE", ["faults"]):
                state.ClearFaults();
                return Ok();
            case ("GET", ["ratelimit"]):
                return (200, new JsonObject { ["enabled"] = state.RateLimitsEnabled, ["scale"] = state.RateLimitScale });
            case ("POST", ["ratelimit"]):
                state.SetRateLimits(body["enabled"]?.GetValue<bool>() ?? state.RateLimitsEnabled, body["scale"]?.GetValue<double>());
                return (200, new JsonObject { ["enabled"] = state.RateLimitsEnabled, ["scale"] = state.RateLimitScale });
            case ("POST", ["machines"]):
                var added = state.AddMachine(
                    Js.String(body["hostname"]) ?? throw new EmulatorException(400, "hostname is required"),
                    Js.String(body["gpu_name"]) ?? "RTX 4090",
                    body["num_gpus"]?.GetValue<int>() ?? 8,
                    body["owner_id"]?.GetValue<int>(),
                    body["listed"]?.GetValue<bool>() ?? false);
                return (200, new JsonObject { ["success"] = true, ["id"] = added, ["machine_id"] = added });
            case ("POST", ["machines", var id, "rentals"]):
                var rentalId = state.StartRental(Id(id), new RentalRequest(
                    Js.String(body["type"]) ?? "on-demand",
                    body["gpus"]?.GetValue<int>() ?? 1,
                    Number(body["price"]),
                    Number(body["endDate"]),
                    Number(body["startDate"]),
                    body["running"]?.GetValue<bool>() ?? true));
                return (200, new JsonObject { ["success"] = true, ["id"] = rentalId });
            case ("DELETE", ["machines", var id, "rentals", var rental]):
                state.EndRental(Id(id), Id(rental));
                return Ok();
            case ("POST", ["machines", var id, "online"]):
                state.SetOnline(Id(id), body["online"]?.GetValue<bool>() ?? true);
                return Ok();
            case ("POST", ["reports"]):
                state.AddReport(
                    body["machine_id"]?.GetValue<int>() ?? throw new EmulatorException(400, "machine_id is required"),
                    Js.String(body["problem"]) ?? "other",
                    Js.String(body["message"]) ?? "");
                return Ok();
            case ("POST", ["pending-price-increases", var pending, "accept"]):
                state.AcceptPriceIncrease(Id(pending));
                return Ok();
            case ("POST", ["pending-price-increases", var pending, "reject"]):
                state.RejectPriceIncrease(Id(pending));
                return Ok();
            case ("POST", ["reset"]):
                state.Reset();
                return Ok();
            default:
                throw new EmulatorException(404, $"no admin route {method} /_emulator/{string.Join('/', path)}");
        }
    }

    private static (int, JsonNode?) Ok() => (200, new JsonObject { ["success"] = true });

    private static int Id(string segment) =>
        int.TryParse(segment, NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : throw new EmulatorException(404, $"'{segment}' is not an id");

    private static double? Number(JsonNode? node) =>
        node is null ? null : Js.TryNumberOrString(node, out var value) ? value : throw new EmulatorException(400, $"'{node.ToJsonString()}' is not a number");

    private static async Task WriteAsync(HttpContext context, int status, JsonNode? body)
    {
        var bytes = Encoding.UTF8.GetBytes(Js.Write(body));
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = bytes.Length;
        await context.Response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
    }
}
