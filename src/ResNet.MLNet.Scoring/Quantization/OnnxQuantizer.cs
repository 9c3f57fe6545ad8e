using System.Globalization;
using System.Text.Json;
using Google.Protobuf;
using Onnx;

namespace ResNet.Scoring.Quantization;

/// <summary>
/// Static post-training INT8 quantization of an ONNX image classifier, in QDQ form: batch norms folded into the
/// convolutions, weights int8 symmetric per output channel, activations uint8 per tensor with ranges measured by
/// running the model on calibration images (ONNX Runtime). ONNX Runtime's CPU provider turns the result into
/// QLinearConv/QLinearAdd at ORT_ENABLE_ALL. Inputs, outputs and metadata stay as they were; the settings are
/// added to the metadata under <see cref="MetadataKey"/>.
/// </summary>
public static class OnnxQuantizer
{
    /// <summary>Metadata key holding the quantization settings as JSON; its presence marks a quantized model.</summary>
    public const string MetadataKey = "resnet.quantization";

    /// <summary>The operators a model may use; anything else is refused by name.</summary>
    /// <remarks>
    /// Cast, Gather and Slice/Pad are what the exporter writes for predicted_index, BGR models and option-A shortcuts; Concat,
    /// Split and ReduceMean for flip test-time augmentation (they stay in float).
    /// </remarks>
    public static IReadOnlySet<string> SupportedOperators { get; } = new SortedSet<string>(StringComparer.Ordinal)
    {
        "Conv", "BatchNormalization", "Relu", "Add", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm", "MatMul", "Softmax",
        "ArgMax", "Cast", "Sub", "Div", "Mul", "Gather", "Reshape", "Slice", "Pad", "Concat", "Split", "ReduceMean",
    };

    // Operators that only a quantized graph has.
    private static readonly string[] QuantizedOperators = ["QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger", "MatMulInteger"];

    /// <summary>
    /// Quantizes the ONNX file at <paramref name="modelPath"/> with ranges measured on <paramref name="calibration"/>
    /// (image files and folders, searched recursively) and writes <paramref name="outputPath"/> (atomically).
    /// Images that cannot be decoded are skipped with a warning through <see cref="QuantizationOptions.Log"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">The model does not exist.</exception>
    /// <exception cref="OnnxModelFormatException">Not ONNX, already quantized, or an operator outside <see cref="SupportedOperators"/>.</exception>
    /// <exception cref="CalibrationDataException">Fewer than <see cref="QuantizationOptions.MinimumCalibrationImages"/> decodable images.</exception>
    public static QuantizationSummary Quantize(string modelPath, IEnumerable<string> calibration, string outputPath, QuantizationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(modelPath);
        ArgumentNullException.ThrowIfNull(calibration);
        ArgumentNullException.ThrowIfNull(outputPath);
        options ??= new QuantizationOptions();
        if (!File.Exists(modelPath))
            throw new FileNotFoundException($"ONNX model '{modelPath}' does not exist. Check the path, or create one with `resnet export`.", modelPath);
        string source = $"ONNX model '{modelPath}'";
        var model = Parse(File.ReadAllBytes(modelPath), source);
        var (shape, range) = Check(model, source);
        // Calibration images are prepared as the scorer prepares them: the model's recorded resize and crop, else stretched.
        var info = InfoOf(model, shape, source);

        var paths = calibration.ToList();
        string where = paths.Count == 1 ? $"'{paths[0]}'" : $"the {paths.Count} calibration paths";
        foreach (var p in paths.Where(p => !File.Exists(p) && !Directory.Exists(p)))
            throw new CalibrationDataException($"Calibration folder '{p}' does not exist. Pass a folder of images like the ones the model will score (at least {QuantizationOptions.MinimumCalibrationImages}; 100-1000 covering every class is better).");
        var files = ImageTensors.FindImages(paths);
        var picked = Spread(files, options.MaxCalibrationImages);
        // Kept as 8-bit pixels (a quarter of the floats' memory) and converted batch by batch during calibration.
        var decoded = new List<RawImage>(picked.Count);
        int skipped = 0;
        foreach (var f in picked)
        {
            try
            {
                decoded.Add(ImageTensors.Decode(f, info));
            }
            catch (CorruptDataException ex)
            {
                skipped++;
                options.Log?.Invoke($"warning: calibration image skipped: {ex.Message}");
            }
        }
        var images = new ConvertedImages(decoded, range);
        var (bytes, summary) = Quantize(model, images, options, source, where, skipped);
        AtomicFile.WriteAllBytes(outputPath, bytes);
        return summary;
    }

    /// <summary>
    /// Quantizes an ONNX model held in memory with calibration images already converted to the model's input
    /// (each C x H x W floats, RGB in the model's pixel range, as <see cref="ImageTensors.Load(string, OnnxModelInfo)"/> gives them).
    /// </summary>
    /// <exception cref="OnnxModelFormatException">Not ONNX, already quantized, or an operator outside <see cref="SupportedOperators"/>.</exception>
    /// <exception cref="CalibrationDataException">Fewer than <see cref="QuantizationOptions.MinimumCalibrationImages"/> images.</exception>
    public static (byte[] Model, QuantizationSummary Summary) Quantize(byte[] model, IReadOnlyList<float[]> calibration, QuantizationOptions? options = null, string source = "ONNX model")
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(calibration);
        var proto = Parse(model, source);
        Check(proto, source);
        return Quantize(proto, calibration, options ?? new QuantizationOptions(), source, "the calibration set", 0);
    }

    /// <summary>The refusals of <see cref="Quantize(byte[], IReadOnlyList{float[]}, QuantizationOptions?, string)"/> that need no images, for callers that read images first.</summary>
    internal static void CheckModel(byte[] model, string source) => Check(Parse(model, source), source);

    /// <summary>True when the model was written by a quantizer (ours or another: QuantizeLinear, QLinear*, *Integer operators).</summary>
    public static bool IsQuantized(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return FindQuantizedOperator(model) is not null || model.MetadataProps.Any(p => p.Key == MetadataKey);
    }

    /// <summary>True when the ONNX file at <paramref name="path"/> is quantized (see <see cref="IsQuantized(ModelProto)"/>).</summary>
    /// <exception cref="OnnxModelFormatException">The file is not ONNX.</exception>
    public static bool IsQuantized(string path) => IsQuantized(Parse(File.ReadAllBytes(path), $"ONNX model '{path}'"));

    private static string? FindQuantizedOperator(ModelProto model) =>
        model.Graph.Node.Select(n => n.OpType).FirstOrDefault(op => QuantizedOperators.Contains(op) || op.StartsWith("QLinear", StringComparison.Ordinal) || op == "QGemm");

    private static ModelProto Parse(byte[] bytes, string source)
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new OnnxModelFormatException($"{source} is not an ONNX file, or it is truncated ({ex.Message}). Export it again, or check that the whole file was copied.", ex);
        }
        if (model.Graph is null || model.Graph.Node.Count == 0)
            throw new OnnxModelFormatException($"{source} is not an ONNX model: it has no graph nodes. Check the file name; export ResNets with `resnet export`.");
        return model;
    }

    // Refusals, checked before any image is read: already quantized, a foreign operator, an old opset, no image input.
    private static (int[] Shape, PixelRange Range) Check(ModelProto model, string source)
    {
        string? q = FindQuantizedOperator(model);
        if (q is not null || model.MetadataProps.Any(p => p.Key == MetadataKey))
            throw new OnnxModelFormatException(
                $"{source} is already quantized ({(q is null ? $"its metadata has '{MetadataKey}'" : $"it has {q} operators")}). Quantize the float model it was made from.");
        if (model.Graph.Node.FirstOrDefault(n => n.Domain is not ("" or "ai.onnx") || !SupportedOperators.Contains(n.OpType)) is { } bad)
            throw new OnnxModelFormatException(
                $"{source} uses the operator {(bad.Domain is "" or "ai.onnx" ? "" : bad.Domain + ".")}{bad.OpType} (node '{bad.Name}'), which the quantizer does not support. " +
                $"It quantizes ResNet-like image classifiers made of: {string.Join(", ", SupportedOperators)}.");
        long opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();
        if (opset < 13)
            throw new OnnxModelFormatException($"{source} uses ONNX opset {opset}; per-channel QDQ quantization needs opset 13 or later. Convert the model to a newer opset first (e.g. onnx.version_converter).");
        var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var inputs = model.Graph.Input.Where(i => !initializers.Contains(i.Name)).ToList();
        var dims = inputs.Count == 1 ? inputs[0].Type?.TensorType?.Shape?.Dim : null;
        if (dims is null || dims.Count != 4 || inputs[0].Type.TensorType.ElemType != (int)TensorProto.Types.DataType.Float ||
            dims.Skip(1).Any(d => d.ValueCase != TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue || d.DimValue < 1))
            throw new OnnxModelFormatException($"{source} is not an image classifier: the quantizer needs one float input of shape [N, C, H, W] with fixed C, H and W.");
        var range = model.MetadataProps.FirstOrDefault(p => p.Key == OnnxMetadataKeys.InputRange)?.Value == "0..255" ? PixelRange.ZeroTo255 : PixelRange.ZeroToOne;
        return ([(int)dims[1].DimValue, (int)dims[2].DimValue, (int)dims[3].DimValue], range);
    }

    // The model's input as the scorer reads it (OnnxModelInfo.FromMetadata), from the graph and its metadata.
    private static OnnxModelInfo InfoOf(ModelProto model, int[] shape, string source)
    {
        var metadata = model.MetadataProps.GroupBy(p => p.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Last().Value, StringComparer.Ordinal);
        // The class count only checks the class names against the graph: the classifier output's width when the graph fixes it.
        var output = model.Graph.Output.FirstOrDefault(o => o.Name is OnnxNames.ProbabilitiesOutput or OnnxNames.LogitsOutput);
        var dims = output?.Type?.TensorType?.Shape?.Dim;
        int classes;
        if (dims is { Count: 2 } && dims[1].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && dims[1].DimValue > 0)
            classes = (int)dims[1].DimValue;
        else
        {
            metadata.Remove(OnnxMetadataKeys.ClassNames);
            classes = 1;
        }
        return OnnxModelInfo.FromMetadata(metadata, shape[0], shape[1], shape[2], classes, source);
    }

    private static (byte[], QuantizationSummary) Quantize(ModelProto model, IReadOnlyList<float[]> images, QuantizationOptions options, string source, string where, int skipped)
    {
        var (shape, _) = Check(model, source);
        if (images.Count < QuantizationOptions.MinimumCalibrationImages)
            throw new CalibrationDataException(
                $"{where} gave {images.Count} decodable calibration image(s){(skipped > 0 ? $" ({skipped} skipped as unreadable)" : "")}; " +
                $"quantization needs at least {QuantizationOptions.MinimumCalibrationImages} to measure activation ranges, and 100-1000 images covering every class give better ones. " +
                "Point it at the training images or a sample of the images the model will score.");
        int per = shape[0] * shape[1] * shape[2];
        if (images.FirstOrDefault(i => i.Length != per) is { } wrong)
            throw new InputShapeException($"A calibration image has {wrong.Length} floats; {source} takes {shape[0]}x{shape[1]}x{shape[2]} = {per}. Convert the images with ImageTensors.Load.");

        var result = model.Clone();
        var graph = new QdqGraph(result.Graph);
        graph.FoldBatchNorms();
        graph.Plan(options.KeepFirstConvFloat, options.KeepClassifierFloat);
        options.Log?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"calibrating {graph.CalibratedTensors.Count} activation tensors on {images.Count} images ({options.Method})"));
        var ranges = Calibrator.Measure(result, graph.CalibratedTensors, images, shape, options);
        graph.Apply(ranges);

        string settings = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["format"] = "QDQ",
            ["weights"] = "int8 symmetric per output channel",
            ["activations"] = "uint8 per tensor",
            ["calibration_method"] = options.Method.ToString().ToLowerInvariant(),
            ["percentile"] = options.Method == CalibrationMethod.Percentile ? options.Percentile : null!,
            ["calibration_images"] = images.Count,
            ["float_nodes"] = graph.FloatNodes,
            ["folded_batchnorms"] = graph.FoldedBatchNorms,
        }.Where(p => p.Value is not null).ToDictionary());
        SetMetadata(result, MetadataKey, settings);
        if (graph.FoldedBatchNorms > 0 || result.MetadataProps.Any(p => p.Key == OnnxMetadataKeys.BatchNormFolded))
            SetMetadata(result, OnnxMetadataKeys.BatchNormFolded, "true");
        result.ProducerName = string.IsNullOrEmpty(model.ProducerName) ? "ResNet.MLNet quantizer" : model.ProducerName + " + ResNet.MLNet quantizer";
        var summary = new QuantizationSummary(images.Count, skipped, graph.QuantizedNodeCount, graph.FloatNodes, graph.FoldedBatchNorms, graph.Tensors.Count, settings);
        return (result.ToByteArray(), summary);
    }

    private static void SetMetadata(ModelProto model, string key, string value)
    {
        if (model.MetadataProps.FirstOrDefault(p => p.Key == key) is { } entry) entry.Value = value;
        else model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
    }

    // Floats made on demand from decoded pixels: each calibration pass converts one batch at a time.
    private sealed class ConvertedImages(IReadOnlyList<RawImage> images, PixelRange range) : IReadOnlyList<float[]>
    {
        public float[] this[int index] => ImageTensors.ToTensor(images[index], range);
        public int Count => images.Count;
        public IEnumerator<float[]> GetEnumerator() => Enumerable.Range(0, Count).Select(i => this[i]).GetEnumerator();
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    // An even spread over the sorted list, so a capped sample still covers every class folder.
    private static IReadOnlyList<string> Spread(IReadOnlyList<string> files, int max) =>
        files.Count <= max || max < 1 ? files : Enumerable.Range(0, max).Select(i => files[(int)((long)i * files.Count / max)]).ToList();

}
