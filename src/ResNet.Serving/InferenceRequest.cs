using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using ResNet.Scoring;

namespace ResNet.Serving;

/// <summary>
/// One Open Inference Protocol (KServe v2) infer request, parsed and checked against a model: FP32 input as JSON
/// <c>data</c> or as Triton's binary-data extension (a JSON header of <c>Inference-Header-Content-Length</c> bytes,
/// then raw little-endian tensors, each input's size in its <c>binary_data_size</c> parameter).
/// </summary>
internal sealed class InferenceRequest
{
    public const string HeaderLengthHeader = "Inference-Header-Content-Length";

    private sealed record RequestedOutput(ModelOutput Output, int Classification, bool Binary);

    private readonly List<RequestedOutput> _outputs = [];
    private string? _id;

    public float[] Images { get; private set; } = [];
    public int Count { get; private set; }
    public bool WantsFeatures => _outputs.Any(o => o.Output.Kind == OutputKind.Features);

    private static RequestException Bad(string message) => new(StatusCodes.Status400BadRequest, message);

    public static InferenceRequest Parse(byte[] body, string? headerLength, ServedModel model)
    {
        int jsonLength = body.Length;
        if (!string.IsNullOrEmpty(headerLength) &&
            (!int.TryParse(headerLength, NumberStyles.None, CultureInfo.InvariantCulture, out jsonLength) || jsonLength > body.Length || jsonLength == 0))
            throw Bad($"{HeaderLengthHeader} is '{headerLength}' but the body has {body.Length} bytes; it must be the JSON header's length in bytes.");
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(body.AsSpan(0, jsonLength));
        }
        catch (JsonException ex)
        {
            throw Bad($"The inference request is not valid JSON ({ex.Message}). Send {{\"inputs\": [{{\"name\", \"shape\", \"datatype\", \"data\"}}]}}.");
        }
        if (root is not JsonObject obj)
            throw Bad("The inference request must be a JSON object with an \"inputs\" array.");
        var r = new InferenceRequest { _id = obj["id"]?.GetValue<string>() };
        r.ReadInput(obj, model, body.AsMemory(jsonLength));
        r.ReadOutputs(obj, model);
        return r;
    }

    private void ReadInput(JsonObject obj, ServedModel model, ReadOnlyMemory<byte> binary)
    {
        var scorer = model.Scorer;
        var info = scorer.Info;
        if (obj["inputs"] is not JsonArray inputs || inputs.Count != 1 || inputs[0] is not JsonObject input)
            throw Bad($"Model '{model.Name}' takes exactly one input, '{scorer.InputName}'; send \"inputs\" as an array of one tensor.");
        string? name = Text(input, "name");
        if (name != scorer.InputName)
            throw Bad($"Model '{model.Name}' has no input '{name}'; its input is '{scorer.InputName}'.");
        string? datatype = Text(input, "datatype");
        if (datatype != "FP32")
            throw Bad($"Input '{name}' has datatype '{datatype}'; model '{model.Name}' takes FP32.");
        if (input["shape"] is not JsonArray shapeNode)
            throw Bad($"Input '{name}' has no \"shape\"; send [N, {info.Channels}, {info.Height}, {info.Width}].");
        long[] shape;
        try { shape = shapeNode.Select(d => d!.GetValue<long>()).ToArray(); }
        catch (Exception ex) when (ex is InvalidOperationException or FormatException or NullReferenceException)
        { throw Bad($"Input '{name}' has a shape that is not a list of whole numbers; send [N, {info.Channels}, {info.Height}, {info.Width}]."); }
        if (shape.Length != 4 || shape[0] < 1 || shape[0] > 1_000_000 || shape[1] != info.Channels || shape[2] != info.Height || shape[3] != info.Width)
            throw Bad($"Input '{name}' has shape [{string.Join(", ", shape)}]; model '{model.Name}' takes [N, {info.Channels}, {info.Height}, {info.Width}] with N >= 1.");
        Count = (int)shape[0];
        int floats = Count * scorer.ImageLength;
        Images = new float[floats];
        if (input["parameters"]?["binary_data_size"] is JsonNode sizeNode)
        {
            long size = sizeNode.GetValue<long>();
            if (size != (long)floats * 4 || binary.Length < size)
                throw Bad($"Input '{name}' says binary_data_size {size} with {binary.Length} binary bytes after the JSON header; shape [{string.Join(", ", shape)}] FP32 needs {floats * 4L}.");
            var bytes = binary.Span[..(int)size];
            for (int i = 0; i < floats; i++) Images[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.Slice(i * 4, 4));
            return;
        }
        if (input["data"] is not JsonArray data)
            throw Bad($"Input '{name}' has no \"data\" (and no binary_data_size parameter); send its {floats} values.");
        int n = 0;
        Flatten(data, ref n, name!, floats);
        if (n != floats)
            throw Bad($"Input '{name}' has {n} values but shape [{string.Join(", ", shape)}] needs {floats}.");
    }

    // The protocol allows nested ("row-major") or flat data; both are read in order.
    private void Flatten(JsonArray data, ref int n, string name, int floats)
    {
        foreach (var v in data)
        {
            if (v is JsonArray inner) { Flatten(inner, ref n, name, floats); continue; }
            if (v is not JsonValue value || value.GetValueKind() != JsonValueKind.Number)
                throw Bad($"Input '{name}' holds {(v is null ? "null" : v.GetValueKind().ToString().ToLowerInvariant())} at value {n}; FP32 data must be numbers.");
            if (n >= floats) { n++; continue; }
            Images[n++] = value.GetValue<float>();
        }
    }

    private void ReadOutputs(JsonObject obj, ServedModel model)
    {
        bool binaryDefault = obj["parameters"]?["binary_data_output"]?.GetValue<bool>() ?? false;
        if (obj["outputs"] is not JsonArray requested)
        {
            foreach (var o in model.Outputs.Where(o => o.Kind != OutputKind.Features))
                _outputs.Add(new RequestedOutput(o, 0, binaryDefault));
            return;
        }
        foreach (var node in requested)
        {
            string? name = node is JsonObject ro ? Text(ro, "name") : null;
            var output = model.Outputs.FirstOrDefault(o => o.Name == name)
                ?? throw Bad($"Model '{model.Name}' has no output '{name}'; it has {string.Join(", ", model.Outputs.Select(o => $"'{o.Name}'"))}.");
            var p = node!["parameters"];
            int k = p?["classification"]?.GetValue<int>() ?? 0;
            if (k < 0 || (k > 0 && !output.IsClassScores))
                throw Bad($"classification on output '{name}' must be a whole number >= 1, on an output with one score per class.");
            _outputs.Add(new RequestedOutput(output, Math.Min(k, output.Length), p?["binary_data"]?.GetValue<bool>() ?? binaryDefault));
        }
    }

    private static string? Text(JsonObject o, string key) =>
        o[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    /// <summary>The response: its JSON, and the binary tensors that follow it (empty when none was asked for binary).</summary>
    public (byte[] Json, byte[] Binary) Respond(ServedModel model, ScoreResult result)
    {
        var binary = new MemoryStream();
        var outputs = new JsonArray();
        foreach (var (output, k, asBinary) in _outputs)
        {
            var values = output.Values(result);
            var o = new JsonObject { ["name"] = output.Name };
            if (k > 0)
            {
                o["datatype"] = "BYTES";
                o["shape"] = new JsonArray(result.Count, k);
                var labels = Classify(model, values, result.Count, output.Length, k);
                if (asBinary) AppendBinary(binary, o, labels.SelectMany(EncodeBytesElement).ToArray());
                else o["data"] = new JsonArray(labels.Select(l => (JsonNode)l).ToArray());
            }
            else
            {
                o["datatype"] = "FP32";
                o["shape"] = new JsonArray(result.Count, output.Length);
                int n = result.Count * output.Length;
                if (asBinary)
                {
                    var bytes = new byte[n * 4];
                    for (int i = 0; i < n; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
                    AppendBinary(binary, o, bytes);
                }
                else o["data"] = new JsonArray(values.Take(n).Select(v => (JsonNode)v).ToArray());
            }
            outputs.Add(o);
        }
        var response = new JsonObject { ["model_name"] = model.Name, ["model_version"] = "1" };
        if (_id is not null) response["id"] = _id;
        response["outputs"] = outputs;
        return (JsonSerializer.SerializeToUtf8Bytes(response), binary.ToArray());
    }

    private static void AppendBinary(MemoryStream binary, JsonObject o, byte[] bytes)
    {
        o["parameters"] = new JsonObject { ["binary_data_size"] = bytes.Length };
        binary.Write(bytes);
    }

    // Triton's BYTES wire format: each element is a 4-byte little-endian length, then its bytes.
    private static byte[] EncodeBytesElement(string s)
    {
        var utf8 = Encoding.UTF8.GetBytes(s);
        var e = new byte[4 + utf8.Length];
        BinaryPrimitives.WriteInt32LittleEndian(e, utf8.Length);
        utf8.CopyTo(e, 4);
        return e;
    }

    /// <summary>The classification extension: the top k of each row as "value:index:label", best first.</summary>
    internal static List<string> Classify(ServedModel model, float[] values, int rows, int length, int k)
    {
        var names = model.Scorer.Info.ClassNames;
        var labels = new List<string>(rows * k);
        for (int r = 0; r < rows; r++)
        {
            var row = values.AsSpan(r * length, length).ToArray();
            foreach (int c in Enumerable.Range(0, length).OrderByDescending(c => row[c]).ThenBy(c => c).Take(k))
                labels.Add(string.Create(CultureInfo.InvariantCulture, $"{row[c]}:{c}:{names[c]}"));
        }
        return labels;
    }
}
