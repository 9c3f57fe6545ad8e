using Google.Protobuf;
using Onnx;

namespace ResNet.MLNet.Transforms;

/// <summary>
/// Prepares an exported ResNet graph for ML.NET's ONNX transformer: renames its input and probability output to
/// internal column names (so they never collide with the user's columns) and adds the arg-max as a uint32 output,
/// which becomes the predicted label's key.
/// </summary>
internal static class OnnxGraphAdapter
{
    internal const string InputColumn = ImagePreprocessing.PixelsColumn;
    internal const string ProbabilitiesColumn = "__ResNet_Probabilities";
    internal const string IndexColumn = "__ResNet_Index";
    private const string ProbabilitiesNxK = "__ResNet_ProbabilitiesNxK";
    private const string LogitsNxK = "__ResNet_LogitsNxK";

    /// <summary>Adapts <paramref name="onnx"/> as <paramref name="saved"/> describes, and records <paramref name="saved"/> in its metadata.</summary>
    public static byte[] Adapt(byte[] onnx, SavedScoring saved)
    {
        var model = ModelProto.Parser.ParseFrom(onnx);
        var graph = model.Graph;
        model.MetadataProps.Add(new StringStringEntryProto { Key = SavedScoringKey, Value = System.Text.Json.JsonSerializer.Serialize(saved) });
        Rename(graph, saved.InputName, InputColumn);
        const string batched = ProbabilitiesNxK;
        if (saved.ProbabilitiesAreLogits)
        {
            const string logits = LogitsNxK;
            Rename(graph, saved.ProbabilitiesName, logits);
            var softmax = new NodeProto { OpType = "Softmax", Name = "__ResNet_Softmax" };
            softmax.Input.Add(logits);
            softmax.Output.Add(batched);
            softmax.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
            graph.Node.Add(softmax);
        }
        else
        {
            Rename(graph, saved.ProbabilitiesName, batched);
        }

        // ML.NET's ONNX transformer runs one row at a time and types a column by the output's declared shape:
        // flattening [1, K] to [K] makes Score a plain Vector<Single, K>, as the batched path gives.
        graph.Output.Clear();
        Flatten(graph, batched, ProbabilitiesColumn, saved.ClassCount);
        const string argmax = "__ResNet_ArgMax";
        var argMaxNode = new NodeProto { OpType = "ArgMax", Name = argmax };
        argMaxNode.Input.Add(batched);
        argMaxNode.Output.Add(argmax);
        argMaxNode.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        argMaxNode.Attribute.Add(new AttributeProto { Name = "keepdims", Type = AttributeProto.Types.AttributeType.Int, I = 0 });
        var cast = new NodeProto { OpType = "Cast", Name = IndexColumn };
        cast.Input.Add(argmax);
        cast.Output.Add(IndexColumn);
        cast.Attribute.Add(new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)TensorProto.Types.DataType.Uint32 });
        graph.Node.Add(argMaxNode);
        graph.Node.Add(cast);

        graph.Output.Add(TensorOutput(IndexColumn, TensorProto.Types.DataType.Uint32, new TensorShapeProto.Types.Dimension { DimParam = "N" }));
        return model.ToByteArray();
    }

    /// <summary>Metadata key under which the adapted graph records how to undo the adaptation and score it in batches again.</summary>
    internal const string SavedScoringKey = "resnet.mlnet.scoring";
    private const string AddedPrefix = "__ResNet_";

    /// <summary>
    /// Undoes <see cref="Adapt"/> on a graph read back from a saved model: the added softmax, flattening and argmax go,
    /// the input and the class-score output get their own names back. Null when the graph was not adapted with a
    /// <see cref="SavedScoring"/> record (a featurizer, or a user's own ONNX model).
    /// </summary>
    public static (byte[] Onnx, SavedScoring Saved)? Restore(byte[] adapted)
    {
        var model = ModelProto.Parser.ParseFrom(adapted);
        var entry = model.MetadataProps.FirstOrDefault(p => p.Key == SavedScoringKey);
        if (entry is null) return null;
        var saved = System.Text.Json.JsonSerializer.Deserialize<SavedScoring>(entry.Value)
            ?? throw new InvalidDataException($"The saved ResNet scorer's record '{SavedScoringKey}' is empty.");
        model.MetadataProps.Remove(entry);
        var graph = model.Graph;
        foreach (var n in graph.Node.Where(n => n.Name.StartsWith(AddedPrefix, StringComparison.Ordinal)).ToList()) graph.Node.Remove(n);
        foreach (var t in graph.Initializer.Where(t => t.Name.StartsWith(AddedPrefix, StringComparison.Ordinal)).ToList()) graph.Initializer.Remove(t);
        graph.Output.Clear();
        string scores = saved.ProbabilitiesAreLogits ? LogitsNxK : ProbabilitiesNxK;
        var output = TensorOutput(scores, TensorProto.Types.DataType.Float, new TensorShapeProto.Types.Dimension { DimParam = "N" });
        output.Type.TensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = saved.ClassCount });
        graph.Output.Add(output);
        Rename(graph, scores, saved.ProbabilitiesName);
        Rename(graph, InputColumn, saved.InputName);
        return (model.ToByteArray(), saved);
    }

    internal const string FeaturesColumn = "__ResNet_Features";

    /// <summary>Keeps only the pooled-features output, flattened to [F] for ML.NET's row-at-a-time ONNX transformer.</summary>
    public static byte[] AdaptForFeatures(byte[] onnx, string inputName, string featuresName, int featureCount)
    {
        var model = ModelProto.Parser.ParseFrom(onnx);
        var graph = model.Graph;
        Rename(graph, inputName, InputColumn);
        const string batched = "__ResNet_FeaturesNxF";
        Rename(graph, featuresName, batched);
        graph.Output.Clear();
        Flatten(graph, batched, FeaturesColumn, featureCount);
        return model.ToByteArray();
    }

    private static void Flatten(GraphProto graph, string from, string to, int width)
    {
        string shapeName = "__ResNet_FlatShape_" + to;
        var flatShape = new TensorProto { Name = shapeName, DataType = (int)TensorProto.Types.DataType.Int64 };
        flatShape.Dims.Add(1);
        flatShape.Int64Data.Add(-1);
        graph.Initializer.Add(flatShape);
        var reshape = new NodeProto { OpType = "Reshape", Name = "__ResNet_Flatten_" + to };
        reshape.Input.Add(from);
        reshape.Input.Add(shapeName);
        reshape.Output.Add(to);
        graph.Node.Add(reshape);
        graph.Output.Add(TensorOutput(to, TensorProto.Types.DataType.Float, new TensorShapeProto.Types.Dimension { DimValue = width }));
    }

    private static ValueInfoProto TensorOutput(string name, TensorProto.Types.DataType type, TensorShapeProto.Types.Dimension dim)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(dim);
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    private static void Rename(GraphProto graph, string from, string to)
    {
        if (from == to) return;
        bool found = false;
        foreach (var v in graph.Input.Concat(graph.Output).Concat(graph.ValueInfo))
            if (v.Name == from) { v.Name = to; found = true; }
        foreach (var n in graph.Node)
        {
            for (int i = 0; i < n.Input.Count; i++) if (n.Input[i] == from) n.Input[i] = to;
            for (int i = 0; i < n.Output.Count; i++) if (n.Output[i] == from) n.Output[i] = to;
        }
        if (!found)
            throw new InvalidDataException($"The ONNX graph has no input or output named '{from}'.");
    }
}

/// <summary>How a fitted ResNet scoring transformer was set up, recorded in its saved graph so a load can rebuild it.</summary>
internal sealed record SavedScoring(string InputName, string ProbabilitiesName, bool ProbabilitiesAreLogits, int ClassCount,
    string ImageColumn, string? ImageFolder, string ScoreColumn, string PredictedLabelColumn, int BatchSize);
