using System.Runtime.InteropServices;
using Onnx;
using ResNet.Scoring.Quantization;

namespace ResNet.Scoring;

/// <summary>
/// Reads the classifier's weight matrix from a model's initializers, for class-activation maps: the fc layer is the Gemm
/// (or MatMul) that makes the logits; its B is a float initializer, or an int8 one behind a DequantizeLinear when the
/// quantizer also quantized the classifier.
/// </summary>
internal static class ClassifierWeights
{
    /// <summary>The weights as [classes, channels] row-major, scaled by the Gemm's alpha.</summary>
    /// <exception cref="OnnxModelFormatException">The logits are not made by a Gemm or MatMul with constant weights of that shape.</exception>
    public static float[] Read(ModelProto model, string logits, int classes, int channels, string source)
    {
        var graph = model.Graph;
        OnnxModelFormatException Unreadable(string why) => new(
            $"{source}: class-activation maps need the classifier's weights, but {why}. Export the model with `resnet export` " +
            "(its classifier is a Gemm with constant weights).");
        var node = graph.Node.FirstOrDefault(n => n.Output.Contains(logits))
            ?? throw Unreadable($"no node makes the '{logits}' output");
        if (node.OpType is not ("Gemm" or "MatMul") || node.Input.Count < 2)
            throw Unreadable($"'{logits}' is made by {node.OpType}, not by a Gemm or MatMul");
        if (node.OpType == "Gemm" && OnnxTensors.IntAttribute(node, "transA", 0) != 0)
            throw Unreadable("its Gemm transposes the features (transA = 1)");
        bool transposed = node.OpType == "Gemm" && OnnxTensors.IntAttribute(node, "transB", 0) == 1;
        float alpha = node.OpType == "Gemm" ? OnnxTensors.FloatAttribute(node, "alpha", 1f) : 1f;
        var (b, dims) = Constant(graph, node.Input[1]) ?? throw Unreadable($"its weights '{node.Input[1]}' are not a constant");
        long[] expected = transposed ? [classes, channels] : [channels, classes];
        if (!dims.SequenceEqual(expected))
            throw Unreadable($"its weights '{node.Input[1]}' have shape [{string.Join(", ", dims)}], not [{string.Join(", ", expected)}] for {classes} classes of {channels} channels");
        var w = new float[classes * channels];
        for (int k = 0; k < classes; k++)
            for (int c = 0; c < channels; c++)
                w[k * channels + c] = alpha * (transposed ? b[k * channels + c] : b[c * classes + k]);
        return w;
    }

    // A float initializer, or DequantizeLinear(int8/uint8 initializer, scale, zero point) per tensor or per axis.
    private static (float[] Values, long[] Dims)? Constant(GraphProto graph, string name)
    {
        if (Initializer(graph, name) is { } t)
            return OnnxTensors.IsFloat(t) && t.DataLocation != TensorProto.Types.DataLocation.External ? (OnnxTensors.ReadFloats(t), [.. t.Dims]) : null;
        var dq = graph.Node.FirstOrDefault(n => n.Output.Contains(name));
        if (dq is not { OpType: "DequantizeLinear" } || dq.Input.Count < 2 ||
            Initializer(graph, dq.Input[0]) is not { } q || Initializer(graph, dq.Input[1]) is not { } s || !OnnxTensors.IsFloat(s))
            return null;
        long[] dims = [.. q.Dims];
        int[]? values = Integers(q);
        var zp = dq.Input.Count > 2 && dq.Input[2].Length > 0 && Initializer(graph, dq.Input[2]) is { } z ? Integers(z) : [0];
        float[] scale = OnnxTensors.ReadFloats(s);
        if (values is null || zp is null || scale.Length == 0) return null;
        int axis = (int)OnnxTensors.IntAttribute(dq, "axis", 1);
        if (axis < 0) axis += dims.Length;
        int inner = 1;
        for (int d = axis + 1; d < dims.Length; d++) inner *= (int)dims[d];
        var result = new float[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            int channel = scale.Length == 1 ? 0 : i / inner % scale.Length;
            result[i] = (values[i] - zp[zp.Length == 1 ? 0 : channel]) * scale[channel];
        }
        return (result, dims);
    }

    private static TensorProto? Initializer(GraphProto graph, string name) => graph.Initializer.FirstOrDefault(t => t.Name == name);

    private static int[]? Integers(TensorProto t)
    {
        if (t.RawData.Length == 0) return [.. t.Int32Data];
        return (TensorProto.Types.DataType)t.DataType switch
        {
            TensorProto.Types.DataType.Int8 => MemoryMarshal.Cast<byte, sbyte>(t.RawData.Span).ToArray().Select(v => (int)v).ToArray(),
            TensorProto.Types.DataType.Uint8 => t.RawData.Span.ToArray().Select(v => (int)v).ToArray(),
            TensorProto.Types.DataType.Int32 => MemoryMarshal.Cast<byte, int>(t.RawData.Span).ToArray(),
            _ => null,
        };
    }
}
