using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace ResNet.Scoring.Quantization;

/// <summary>Reads and writes the initializers the quantizer touches (float, int8, uint8, int32; raw or typed fields).</summary>
internal static class OnnxTensors
{
    public static float[] ReadFloats(TensorProto t) =>
        t.RawData.Length > 0 ? MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray() : [.. t.FloatData];

    public static bool IsFloat(TensorProto t) => t.DataType == (int)TensorProto.Types.DataType.Float;

    public static TensorProto Float(string name, ReadOnlySpan<float> data, params long[] dims) =>
        Make(name, TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(data), dims);

    public static TensorProto Int8(string name, ReadOnlySpan<sbyte> data, params long[] dims) =>
        Make(name, TensorProto.Types.DataType.Int8, MemoryMarshal.AsBytes(data), dims);

    public static TensorProto Uint8(string name, ReadOnlySpan<byte> data, params long[] dims) =>
        Make(name, TensorProto.Types.DataType.Uint8, data, dims);

    public static TensorProto Int32(string name, ReadOnlySpan<int> data, params long[] dims) =>
        Make(name, TensorProto.Types.DataType.Int32, MemoryMarshal.AsBytes(data), dims);

    private static TensorProto Make(string name, TensorProto.Types.DataType type, ReadOnlySpan<byte> bytes, long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
        t.Dims.AddRange(dims);
        return t;
    }

    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static long IntAttribute(NodeProto node, string name, long fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.I : fallback;

    public static float FloatAttribute(NodeProto node, string name, float fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.F : fallback;
}
