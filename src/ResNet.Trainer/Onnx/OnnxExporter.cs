using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using ResNet.Trainer.Models;
using static TorchSharp.torch;

namespace ResNet.Trainer.Onnx;

/// <summary>Choices for <see cref="OnnxExporter"/>.</summary>
public sealed class OnnxExportOptions
{
    /// <summary>Class names in output order; default <c>0</c>, <c>1</c>, ... Must have one name per class.</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>Input height the model was trained at; default the family's (32 for CIFAR, 224 for ImageNet models).</summary>
    public int? ImageHeight { get; init; }

    /// <summary>Input width the model was trained at; default <see cref="ImageHeight"/>.</summary>
    public int? ImageWidth { get; init; }

    /// <summary>The normalization the model was trained with; folded into the graph. Default: none (input 0..1 as is).</summary>
    public InputNormalization? Normalization { get; init; }

    /// <summary>Also output the pooled features (<see cref="OnnxExporter.FeaturesOutput"/>, [N, FeatureCount]). Default true.</summary>
    public bool IncludeFeatures { get; init; } = true;

    /// <summary>
    /// Also output the most probable class index as uint32 [N] (<see cref="OnnxExporter.PredictedIndexOutput"/>), for
    /// consumers such as ML.NET's ApplyOnnxModel that map it to a key column. Default false.
    /// </summary>
    public bool IncludePredictedIndex { get; init; }

    /// <summary>
    /// The resize and centre crop images get before the graph (a pretrained network's evaluation transform), recorded in the
    /// metadata (<see cref="OnnxMetadataKeys.Preprocessing"/>) for the scorers to apply; the crop must equal the input size.
    /// Default none: scorers stretch images to the input size.
    /// </summary>
    public ResizeCrop? Preprocessing { get; init; }

    /// <summary>
    /// Also output the last stage's activations before global average pooling (<see cref="OnnxExporter.ActivationsOutput"/>,
    /// float [N, FeatureCount, h, w]): with the classifier's weights, which stay in the file, they give class-activation
    /// maps without libtorch. The network computes them anyway; the output only makes them visible. Default false.
    /// </summary>
    public bool IncludeActivations { get; init; }

    /// <summary>Fold each batch norm into the convolution before it (faster scoring; such files can be scored, not imported for training).</summary>
    public bool FoldBatchNorm { get; init; }

    /// <summary>
    /// Flip test-time augmentation inside the graph: each image and its horizontal mirror go through the network as one batch,
    /// and the pooled features (so the logits, the classifier being linear) are the mean of the two views'; the activations
    /// output, when included, is the mean of the two with the mirror's flipped back. Scores as
    /// <see cref="Training.EvaluationOptions.FlipTestTimeAugmentation"/> evaluates, at twice the compute. Default false.
    /// </summary>
    public bool FlipTestTimeAugmentation { get; init; }
}

/// <summary>
/// Writes a standard ONNX file (opset 17, IR version 8) from any model of the family: walks
/// <see cref="ResNetPlan.Blocks"/> and reads tensors from <c>state_dict()</c> by their torchvision keys.
/// The batch dimension is dynamic; normalization is folded in; metadata describes the input and the classes.
/// The same weights and options always give the same bytes.
/// </summary>
public static class OnnxExporter
{
    /// <summary>Name of the graph input (<see cref="OnnxNames.Input"/>).</summary>
    public const string Input = OnnxNames.Input;
    /// <summary>Name of the logits output (<see cref="OnnxNames.LogitsOutput"/>).</summary>
    public const string LogitsOutput = OnnxNames.LogitsOutput;
    /// <summary>Name of the softmax output (<see cref="OnnxNames.ProbabilitiesOutput"/>).</summary>
    public const string ProbabilitiesOutput = OnnxNames.ProbabilitiesOutput;
    /// <summary>Name of the pooled-features output (<see cref="OnnxNames.FeaturesOutput"/>).</summary>
    public const string FeaturesOutput = OnnxNames.FeaturesOutput;
    /// <summary>Name of the optional predicted-class output (<see cref="OnnxNames.PredictedIndexOutput"/>).</summary>
    public const string PredictedIndexOutput = OnnxNames.PredictedIndexOutput;
    /// <summary>Name of the optional last-stage activation output (<see cref="OnnxNames.ActivationsOutput"/>).</summary>
    public const string ActivationsOutput = OnnxNames.ActivationsOutput;
    /// <summary>Initializer holding the mean image (<see cref="OnnxNames.MeanImageInitializer"/>).</summary>
    public const string MeanImageInitializer = OnnxNames.MeanImageInitializer;
    /// <summary>The ONNX operator set written (Debian's python3-onnx 1.12 checks up to 17).</summary>
    public const int Opset = 17;
    /// <summary>The ONNX IR version written (the one that goes with opset 17).</summary>
    public const int IrVersion = 8;

    // ResNet builds every BatchNorm2d with PyTorch's default epsilon.
    internal const float BatchNormEpsilon = 1e-5f;

    /// <summary>The version string written as producer version.</summary>
    public static string ProducerVersion { get; } = typeof(OnnxExporter).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>Serializes the model to ONNX bytes.</summary>
    public static byte[] Export(Models.ResNetModel model, OnnxExportOptions? options = null) => Build(model, options).ToByteArray();

    /// <summary>Writes the model to an ONNX file (atomically: a partial file is never left behind).</summary>
    public static void Export(Models.ResNetModel model, string path, OnnxExportOptions? options = null)
    {
        AtomicFile.WriteAllBytes(path, Export(model, options));
    }

    /// <summary>Builds the ONNX model in memory.</summary>
    /// <exception cref="ClassCountMismatchException">The class names do not match the model's class count.</exception>
    /// <exception cref="ArgumentException">The image size or normalization does not fit the model.</exception>
    public static ModelProto Build(Models.ResNetModel model, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new OnnxExportOptions();
        var spec = model.Spec;
        int height = options.ImageHeight ?? spec.DefaultImageSize;
        int width = options.ImageWidth ?? height;
        if (height < 1 || width < 1)
            throw new ArgumentException($"Image size must be positive, got {height}x{width}.", nameof(options));
        var classNames = options.ClassNames ?? Enumerable.Range(0, spec.NumClasses).Select(i => OnnxMetadataKeys.Int(i)).ToArray();
        if (classNames.Count != spec.NumClasses)
            throw new ClassCountMismatchException(
                $"{classNames.Count} class names were given for {spec.Name}, which has {spec.NumClasses} classes. Give exactly one name per class, in output order.");
        var norm = options.Normalization ?? InputNormalization.Identity(spec.InputChannels);
        norm.Validate(spec.InputChannels, height, width);
        if (options.Preprocessing is { } prep)
        {
            prep.Validate();
            if (prep.CropSize != height || prep.CropSize != width)
                throw new ArgumentException($"The preprocessing crops {prep.CropSize}x{prep.CropSize}, but the model is exported for {width}x{height} images; export it at the crop size.", nameof(options));
        }

        var state = model.state_dict();
        var g = new GraphBuilder(state, options.FoldBatchNorm);
        bool flip = options.FlipTestTimeAugmentation;
        // Mirrored before normalization, as training's flip is (a per-pixel mean image is not symmetric).
        string x = g.Normalize(flip ? g.WithMirrors(Input) : Input, norm, spec.InputChannels, height, width);

        // size: the height and width of x, which CNTK-style padding of strided windows depends on.
        var size = (H: height, W: width);
        (x, size) = g.ConvBn(x, ResNetPlan.Stem(spec), spec.Padding, size);
        x = g.Relu(x, "relu");
        if (spec.Stem == StemKind.ImageNet)
        {
            x = g.Node("MaxPool", "maxpool", [x], [Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Pads(spec.Padding, 3, 2, size)]);
            size = ResNetPlan.WindowOutput(spec.Padding, 3, 2, size);
        }

        var blocks = ResNetPlan.Blocks(spec);
        for (int i = 0; i < blocks.Count; i++)
            (x, size) = Block(g, spec, blocks[i], x, size, options.IncludeActivations && !flip && i == blocks.Count - 1 ? ActivationsOutput : null);
        var (outH, outW) = ResNetPlan.OutputSize(spec, height, width);
        if (flip && options.IncludeActivations)
            g.MeanOfViews(x, ActivationsOutput, [spec.FeatureCount, outH, outW], mirrorBack: true);

        var pooled = g.Node("GlobalAveragePool", "avgpool", [x], []);
        g.Graph.Node.Add(new NodeProto { Name = "flatten", OpType = "Flatten", Input = { pooled }, Output = { flip ? "flatten.views" : FeaturesOutput }, Attribute = { Int("axis", 1) } });
        if (flip) g.MeanOfViews("flatten.views", FeaturesOutput, [spec.FeatureCount], mirrorBack: false);
        g.Graph.Node.Add(new NodeProto
        {
            Name = "fc", OpType = "Gemm",
            Input = { FeaturesOutput, g.Weight("fc.weight"), g.Weight("fc.bias") },
            Output = { LogitsOutput },
            Attribute = { Int("transB", 1) },
        });
        g.Graph.Node.Add(new NodeProto { Name = "softmax", OpType = "Softmax", Input = { LogitsOutput }, Output = { ProbabilitiesOutput }, Attribute = { Int("axis", 1) } });

        if (options.IncludePredictedIndex)
        {
            string argmax = g.Node("ArgMax", "argmax", [ProbabilitiesOutput], [Int("axis", 1), Int("keepdims", 0)]);
            g.Graph.Node.Add(new NodeProto { Name = "predicted_index.cast", OpType = "Cast", Input = { argmax }, Output = { PredictedIndexOutput }, Attribute = { Int("to", (int)TensorProto.Types.DataType.Uint32) } });
        }

        var graph = g.Graph;
        graph.Name = spec.Name;
        graph.Input.Add(TensorValue(Input, "N", spec.InputChannels, height, width));
        graph.Output.Add(TensorValue(LogitsOutput, "N", spec.NumClasses));
        graph.Output.Add(TensorValue(ProbabilitiesOutput, "N", spec.NumClasses));
        if (options.IncludeFeatures)
            graph.Output.Add(TensorValue(FeaturesOutput, "N", spec.FeatureCount));
        if (options.IncludePredictedIndex)
            graph.Output.Add(TensorValue(PredictedIndexOutput, "N", TensorProto.Types.DataType.Uint32));
        if (options.IncludeActivations)
            graph.Output.Add(TensorValue(ActivationsOutput, "N", spec.FeatureCount, outH, outW));

        var m = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "ResNet.MLNet",
            ProducerVersion = ProducerVersion,
            Domain = "ResNet.MLNet",
            ModelVersion = 1,
            Graph = graph,
        };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        string outputs = string.Join(",", graph.Output.Select(o => o.Name));
        foreach (var (key, value) in new[]
        {
            (OnnxMetadataKeys.Architecture, spec.Name),
            (OnnxMetadataKeys.Spec, ResNetSpecJson.ToJson(spec)),
            (OnnxMetadataKeys.ClassNames, OnnxMetadataKeys.ClassNamesJson(classNames)),
            (OnnxMetadataKeys.InputChannels, OnnxMetadataKeys.Int(spec.InputChannels)),
            (OnnxMetadataKeys.InputHeight, OnnxMetadataKeys.Int(height)),
            (OnnxMetadataKeys.InputWidth, OnnxMetadataKeys.Int(width)),
            (OnnxMetadataKeys.InputRange, OnnxMetadataKeys.RangeText(norm.Range)),
            (OnnxMetadataKeys.InputChannelOrder, "RGB"),
            (OnnxMetadataKeys.Normalization, OnnxMetadataKeys.NormalizationJson(norm)),
            (OnnxMetadataKeys.BatchNormFolded, options.FoldBatchNorm ? "true" : "false"),
            (OnnxMetadataKeys.Outputs, outputs),
            (OnnxMetadataKeys.ProducerVersion, ProducerVersion),
        })
            m.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        if (flip)
            m.MetadataProps.Add(new StringStringEntryProto { Key = OnnxMetadataKeys.TestTimeAugmentation, Value = "flip" });
        if (options.Preprocessing is { } recorded)
            m.MetadataProps.Add(new StringStringEntryProto { Key = OnnxMetadataKeys.Preprocessing, Value = OnnxMetadataKeys.PreprocessingJson(recorded) });
        return m;
    }

    // The last block's output may be named as a graph output (the activations) instead of after its node.
    private static (string Output, (int H, int W) Size) Block(GraphBuilder g, ResNetSpec spec, BlockPlan b, string x, (int H, int W) size, string? output)
    {
        string p = b.Path;
        string y = x;
        var ySize = size;
        for (int i = 0; i < b.Convs.Count; i++)
        {
            (y, ySize) = g.ConvBn(y, b.Convs[i], spec.Padding, ySize);
            if (i < b.Convs.Count - 1) y = g.Relu(y, $"{p}.relu{i + 1}");
        }
        string? shortcut = b.Shortcut switch
        {
            ShortcutKind.Identity => x,
            ShortcutKind.Projection => g.ConvBn(x, b.Downsample!, spec.Padding, size).Output,
            ShortcutKind.ZeroPad => g.ZeroPadShortcut(x, p, b.Stride, b.OutChannels - b.InChannels),
            _ => null,
        };
        if (shortcut is not null)
            y = g.Node("Add", $"{p}.add", [y, shortcut], []);
        return (g.Relu(y, $"{p}.relu", output), ySize);
    }

    // The pads attribute of a window over an input of this size: [top, left, bottom, right].
    internal static AttributeProto Pads(PaddingStyle style, int kernel, int stride, (int H, int W) size)
    {
        var (top, bottom) = ResNetPlan.Padding(style, kernel, stride, size.H);
        var (left, right) = ResNetPlan.Padding(style, kernel, stride, size.W);
        return Ints("pads", top, left, bottom, right);
    }

    internal static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    internal static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    internal static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    private static ValueInfoProto TensorValue(string name, string batch, params long[] dims) =>
        TensorValue(name, batch, TensorProto.Types.DataType.Float, dims);

    private static ValueInfoProto TensorValue(string name, string batch, TensorProto.Types.DataType type, params long[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = batch });
        foreach (long d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    internal static TensorProto FloatTensor(string name, float[] data, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(data.AsSpan())) };
        t.Dims.AddRange(dims);
        return t;
    }

    internal static TensorProto Int64Tensor(string name, long[] data)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(data.AsSpan())) };
        t.Dims.Add(data.Length);
        return t;
    }

    /// <summary>Adds nodes and initializers in a fixed order, reading weights from the state_dict by key.</summary>
    private sealed class GraphBuilder(Dictionary<string, Tensor> state, bool foldBatchNorm)
    {
        public GraphProto Graph { get; } = new();

        private (float[] Data, long[] Shape) Read(string key)
        {
            if (!state.TryGetValue(key, out var t))
                throw new InvalidOperationException($"The model's state_dict has no '{key}'; the module tree does not follow ResNetPlan.");
            using var scope = NewDisposeScope(); // each step of the conversion makes a tensor
            var c = t.detach().cpu().to_type(ScalarType.Float32).contiguous();
            return (c.data<float>().ToArray(), c.shape);
        }

        public string Weight(string key)
        {
            var (data, shape) = Read(key);
            Graph.Initializer.Add(FloatTensor(key, data, shape));
            return key;
        }

        public string Node(string op, string name, string[] inputs, AttributeProto[] attributes, string? output = null)
        {
            output ??= name;
            var n = new NodeProto { OpType = op, Name = name, Output = { output } };
            n.Input.AddRange(inputs);
            n.Attribute.AddRange(attributes);
            Graph.Node.Add(n);
            return output;
        }

        public string Relu(string x, string name, string? output = null) => Node("Relu", name, [x], [], output);

        /// <summary>A convolution and its batch norm (folded or not) on <paramref name="x"/> of <paramref name="size"/>; the output and its size.</summary>
        public (string Output, (int H, int W) Size) ConvBn(string x, ConvPlan plan, PaddingStyle padding, (int H, int W) size) =>
            (ConvBn(x, plan, Pads(padding, plan.Kernel, plan.Stride, size)), ResNetPlan.WindowOutput(padding, plan.Kernel, plan.Stride, size));

        private string ConvBn(string x, ConvPlan plan, AttributeProto pads)
        {
            var (conv, bn, kernel, stride) = (plan.Key, plan.NormKey, plan.Kernel, plan.Stride);
            AttributeProto[] attrs = [Ints("kernel_shape", kernel, kernel), Ints("strides", stride, stride), pads];
            if (!foldBatchNorm)
            {
                string c = Node("Conv", conv, [x, Weight($"{conv}.weight")], attrs);
                return Node("BatchNormalization", bn,
                    [c, Weight($"{bn}.weight"), Weight($"{bn}.bias"), Weight($"{bn}.running_mean"), Weight($"{bn}.running_var")],
                    [Float("epsilon", BatchNormEpsilon)]);
            }
            // w' = w * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps)
            var (w, shape) = Read($"{conv}.weight");
            var (gamma, _) = Read($"{bn}.weight");
            var (beta, _) = Read($"{bn}.bias");
            var (mean, _) = Read($"{bn}.running_mean");
            var (variance, _) = Read($"{bn}.running_var");
            int perChannel = w.Length / gamma.Length;
            var bias = new float[gamma.Length];
            for (int o = 0; o < gamma.Length; o++)
            {
                float scale = gamma[o] / MathF.Sqrt(variance[o] + BatchNormEpsilon);
                for (int i = 0; i < perChannel; i++) w[o * perChannel + i] *= scale;
                bias[o] = beta[o] - mean[o] * scale;
            }
            Graph.Initializer.Add(FloatTensor($"{conv}.weight", w, shape));
            Graph.Initializer.Add(FloatTensor($"{conv}.bias", bias, gamma.Length));
            return Node("Conv", conv, [x, $"{conv}.weight", $"{conv}.bias"], attrs);
        }

        // Option A: x[:, :, ::2, ::2], then zero channels appended at the end (as ResidualBlock does).
        public string ZeroPadShortcut(string x, string path, int stride, int extraChannels)
        {
            if (stride == 2)
            {
                Graph.Initializer.Add(Int64Tensor($"{path}.shortcut.starts", [0, 0]));
                Graph.Initializer.Add(Int64Tensor($"{path}.shortcut.ends", [long.MaxValue, long.MaxValue]));
                Graph.Initializer.Add(Int64Tensor($"{path}.shortcut.axes", [2, 3]));
                Graph.Initializer.Add(Int64Tensor($"{path}.shortcut.steps", [2, 2]));
                x = Node("Slice", $"{path}.shortcut.subsample",
                    [x, $"{path}.shortcut.starts", $"{path}.shortcut.ends", $"{path}.shortcut.axes", $"{path}.shortcut.steps"], []);
            }
            if (extraChannels > 0)
            {
                // ONNX pads: all begins (N, C, H, W), then all ends.
                Graph.Initializer.Add(Int64Tensor($"{path}.shortcut.pads", [0, 0, 0, 0, 0, extraChannels, 0, 0]));
                x = Node("Pad", $"{path}.shortcut.pad", [x, $"{path}.shortcut.pads"], [StringAttr("mode", "constant")]);
            }
            return x;
        }

        // [N, C, H, W] -> [2N, C, H, W]: the images, then their horizontal mirrors.
        public string WithMirrors(string input)
        {
            string mirrored = Reversed(input, "input.mirror", axis: 3);
            return Node("Concat", "input.with_mirrors", [input, mirrored], [Int("axis", 0)]);
        }

        // [2N, dims...] (images, then mirrors) -> [N, dims...]: the mean of each image's two views, the mirror's flipped back first.
        public void MeanOfViews(string views, string output, long[] dims, bool mirrorBack)
        {
            Graph.Initializer.Add(Int64Tensor($"{output}.views_shape", [2, -1, .. dims]));
            string x = Node("Reshape", $"{output}.views", [views, $"{output}.views_shape"], []);
            if (mirrorBack)
            {
                Graph.Initializer.Add(Int64Tensor($"{output}.split", [1, 1]));
                var split = new NodeProto { OpType = "Split", Name = $"{output}.split", Input = { x, $"{output}.split" }, Output = { $"{output}.image", $"{output}.mirror" }, Attribute = { Int("axis", 0) } };
                Graph.Node.Add(split);
                string back = Reversed($"{output}.mirror", $"{output}.unmirror", axis: dims.Length + 1);
                x = Node("Concat", $"{output}.aligned", [$"{output}.image", back], [Int("axis", 0)]);
            }
            Node("ReduceMean", $"{output}.mean", [x], [Ints("axes", 0), Int("keepdims", 0)], output);
        }

        // The input reversed along one axis (Slice with step -1).
        private string Reversed(string input, string name, int axis)
        {
            Graph.Initializer.Add(Int64Tensor($"{name}.starts", [-1]));
            Graph.Initializer.Add(Int64Tensor($"{name}.ends", [long.MinValue]));
            Graph.Initializer.Add(Int64Tensor($"{name}.axes", [axis]));
            Graph.Initializer.Add(Int64Tensor($"{name}.steps", [-1]));
            return Node("Slice", name, [input, $"{name}.starts", $"{name}.ends", $"{name}.axes", $"{name}.steps"], []);
        }

        public string Normalize(string input, InputNormalization norm, int channels, int height, int width)
        {
            string x = input;
            if (norm.NetworkOrder == ChannelOrder.Bgr)
            {
                Graph.Initializer.Add(Int64Tensor("input.bgr_indices", [2, 1, 0]));
                x = Node("Gather", "input.to_bgr", [x, "input.bgr_indices"], [Int("axis", 1)]);
            }
            if (norm.MeanImage is not null)
            {
                Graph.Initializer.Add(FloatTensor(MeanImageInitializer, [.. norm.MeanImage], 1, channels, height, width));
                x = Node("Sub", "input.sub_mean", [x, MeanImageInitializer], []);
            }
            else if (norm.Mean.Any(m => m != 0f))
            {
                Graph.Initializer.Add(FloatTensor("input.mean", [.. norm.Mean], 1, channels, 1, 1));
                x = Node("Sub", "input.sub_mean", [x, "input.mean"], []);
            }
            if (norm.Std.Any(s => s != 1f))
            {
                Graph.Initializer.Add(FloatTensor("input.std", [.. norm.Std], 1, channels, 1, 1));
                x = Node("Div", "input.div_std", [x, "input.std"], []);
            }
            return x;
        }
    }

    internal static AttributeProto StringAttr(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };
}
