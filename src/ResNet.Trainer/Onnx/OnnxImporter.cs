using System.Runtime.InteropServices;
using System.Text.Json;
using Google.Protobuf;
using Onnx;
using ResNet.Trainer.Models;
using static TorchSharp.torch;

namespace ResNet.Trainer.Onnx;

/// <summary>
/// The importer's result: a live TorchSharp network rebuilt from an ONNX file, with what the file says about it
/// (<see cref="OnnxModelInfo"/>) and which of this library's optional outputs it had, so it can be scored, fine-tuned or exported again.
/// </summary>
/// <param name="Model">The TorchSharp model (eval mode), weights and BN statistics copied from the file.</param>
/// <param name="Info">What the file says: class names, input size, and the normalization to apply to RGB pixels before
/// <paramref name="Model"/> (what the file folded in, or what its preprocessing graph did).</param>
/// <param name="HasClassifier">False when the file held only the trunk (its <c>fc</c> is freshly initialised).</param>
/// <param name="HasFeaturesOutput">True when the file had a features output.</param>
/// <param name="HasPredictedIndexOutput">True when the file had a predicted-index output.</param>
/// <param name="HasActivationsOutput">True when the file had the last-stage activation output.</param>
public sealed record ImportedModel(
    Models.ResNetModel Model,
    OnnxModelInfo Info,
    bool HasClassifier,
    bool HasFeaturesOutput,
    bool HasPredictedIndexOutput = false,
    bool HasActivationsOutput = false)
{
    /// <summary>Export options that write the model back as it came (export -> import -> export gives the same bytes).</summary>
    public OnnxExportOptions ExportOptions => new()
    {
        ClassNames = Info.ClassNames,
        ImageHeight = Info.Height,
        ImageWidth = Info.Width,
        Normalization = Info.Normalization,
        IncludeFeatures = HasFeaturesOutput,
        IncludePredictedIndex = HasPredictedIndexOutput,
        IncludeActivations = HasActivationsOutput,
    };
}

/// <summary>
/// Reads the weights of an ONNX ResNet into a model of the family. The graph is matched structurally
/// (stem, then basic or bottleneck blocks with identity, zero-pad or projection shortcuts, then pooling and
/// an optional classifier), so this reads both this library's exports and foreign ones such as the CNTK
/// ResNet18 of <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>.
/// </summary>
public static class OnnxImporter
{
    /// <summary>Imports an ONNX file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="numClasses">Classes of the new classifier when the file has none (a trunk); default 1000.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="OnnxModelFormatException">Not ONNX, truncated, or not a ResNet this family can express.</exception>
    /// <exception cref="UnknownArchitectureException">The metadata names an architecture this library does not know.</exception>
    public static ImportedModel Import(string path, int? numClasses = null)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"ONNX model '{path}' does not exist. Check the path.", path);
        return Import(File.ReadAllBytes(path), numClasses, $"ONNX model '{path}'");
    }

    /// <summary>Imports an ONNX model held in memory; <paramref name="source"/> names it in messages.</summary>
    public static ImportedModel Import(byte[] bytes, int? numClasses = null, string source = "ONNX model") =>
        Import(Parse(bytes, source), numClasses, source, nameOverride: null);

    /// <summary>
    /// Imports the ImageNet-trained ResNet18 trunk shipped in NuGet <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>
    /// (<c>ResNet18.onnx</c>, CNTK: stages [2, 2, 2, 3], projection shortcuts, asymmetric padding) together with its
    /// preprocessing (<c>ResNetPreprocess.onnx</c>: RGB to BGR, mean image subtraction, input 0..255).
    /// The classifier is new (<paramref name="numClasses"/> outputs) for fine-tuning.
    /// </summary>
    public static ImportedModel ImportDnnImageFeaturizer(string resnetPath, string preprocessPath, int numClasses = 1000, long? seed = null)
    {
        if (!File.Exists(resnetPath))
            throw new FileNotFoundException($"ResNet18 ONNX file '{resnetPath}' does not exist. Reference NuGet Microsoft.ML.DnnImageFeaturizer.ResNet18; it copies DnnImageModels/ResNet18Onnx/ResNet18.onnx to the output.", resnetPath);
        if (!File.Exists(preprocessPath))
            throw new FileNotFoundException($"Preprocessing file '{preprocessPath}' does not exist; it ships beside ResNet18.onnx as DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx.", preprocessPath);
        string source = $"ONNX model '{resnetPath}'";
        var imported = Import(Parse(File.ReadAllBytes(resnetPath), source), numClasses, source, nameOverride: "resnet18-cntk", seed);
        var norm = ReadPreprocessing(preprocessPath);
        norm.Validate(imported.Model.Spec.InputChannels, imported.Info.Height, imported.Info.Width);
        return imported with { Info = imported.Info with { Normalization = norm } };
    }

    /// <summary>
    /// Reads a preprocessing graph of the DnnImageFeaturizer kind: an optional channel swap (Split + Concat in
    /// reverse order) and a subtraction of a mean image or per-channel means; inputs are 0..255.
    /// </summary>
    public static InputNormalization ReadPreprocessing(string path)
    {
        string source = $"preprocessing model '{path}'";
        var g = Parse(File.ReadAllBytes(path), source).Graph;
        var inits = g.Initializer.ToDictionary(t => t.Name);
        var order = ChannelOrder.Rgb;
        IReadOnlyList<float>? meanImage = null;
        float[] mean = [0f, 0f, 0f];
        foreach (var n in g.Node)
        {
            if (n.OpType == "Concat")
            {
                var split = g.Node.FirstOrDefault(s => s.OpType == "Split" && s.Output.Count == 3);
                if (split is not null && n.Input.SequenceEqual(split.Output.Reverse()))
                    order = ChannelOrder.Bgr;
            }
            else if (n.OpType == "Sub" && n.Input.Count == 2 && inits.TryGetValue(n.Input[1], out var m))
            {
                float[] values = Floats(m, source);
                if (values.Length == 3) mean = values;
                else meanImage = values;
            }
        }
        return new InputNormalization(PixelRange.ZeroTo255, mean, [1f, 1f, 1f], order, meanImage);
    }

    internal static ModelProto Parse(byte[] bytes, string source)
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
        if (model.Graph is null || model.Graph.Node.Count == 0 || model.OpsetImport.Count == 0)
            throw new OnnxModelFormatException($"{source} is not an ONNX model: it has no graph nodes or operator set. Check the file name; export ResNets with `resnet export`.");
        return model;
    }

    private static ImportedModel Import(ModelProto proto, int? numClasses, string source, string? nameOverride, long? seed = null)
    {
        TorchNative.EnsureReady();
        var meta = proto.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        var trace = new GraphTrace(proto.Graph, source);
        var (spec, state, hasClassifier) = trace.Read();
        if (hasClassifier && numClasses is { } k && k != spec.NumClasses)
            throw new ClassCountMismatchException($"{source} has a classifier with {spec.NumClasses} classes, but {k} were asked for. Leave the class count unset, or import the trunk only.");
        if (!hasClassifier) spec = spec with { NumClasses = numClasses ?? 1000 };
        var (height, width) = trace.InputSize();
        var info = OnnxModelInfo.FromMetadata(meta, spec.InputChannels, height, width, spec.NumClasses, source, () => MeanImage(proto.Graph, source));
        ResNetSpec? declared = info.SpecJson is { } specJson ? ResNetSpecJson.Parse(specJson, source)
            : info.Architecture.Length > 0 ? ResNetNames.Parse(info.Architecture) : null;

        if (declared is not null)
        {
            var expected = declared with { Name = spec.Name, ZeroInitResidual = false, NumClasses = spec.NumClasses };
            if (!SameArchitecture(expected, spec))
                throw new OnnxModelFormatException($"{source}: the graph is {Describe(spec)}, but its metadata says {Describe(declared)}. The file was edited or mis-exported; export it again.");
            spec = spec with { Name = declared.Name, ZeroInitResidual = declared.ZeroInitResidual };
        }
        if (nameOverride is not null) spec = spec with { Name = nameOverride };

        var model = new Models.ResNetModel(spec, seed); // the seed draws the new classifier of a trunk; the rest is copied
        using (no_grad())
        {
            foreach (var (key, target) in model.state_dict())
            {
                if (key.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue;
                if (!state.TryGetValue(key, out var value))
                {
                    if (key.StartsWith("fc.", StringComparison.Ordinal) && !hasClassifier) continue;
                    throw new OnnxModelFormatException($"{source}: no weights found for '{key}' of {spec.Name}.");
                }
                if (!value.Shape.SequenceEqual(target.shape))
                    throw new OnnxModelFormatException($"{source}: '{key}' has shape [{string.Join(", ", value.Shape)}] in the file, [{string.Join(", ", target.shape)}] in {spec.Name}.");
                using var t = tensor(value.Data, value.Shape);
                target.copy_(t);
            }
        }
        model.eval();

        bool features = proto.Graph.Output.Any(o => o.Name == OnnxExporter.FeaturesOutput);
        bool predicted = proto.Graph.Output.Any(o => o.Name == OnnxExporter.PredictedIndexOutput);
        bool activations = proto.Graph.Output.Any(o => o.Name == OnnxExporter.ActivationsOutput);
        return new ImportedModel(model, info, hasClassifier, features, predicted, activations);
    }

    private static bool SameArchitecture(ResNetSpec a, ResNetSpec b) =>
        a.Block == b.Block && a.StageDepths.SequenceEqual(b.StageDepths) && a.StageWidths.SequenceEqual(b.StageWidths) &&
        a.Stem == b.Stem && a.StemWidth == b.StemWidth && a.Residual == b.Residual && a.InputChannels == b.InputChannels &&
        (a.Block == BlockKind.Basic || a.StridePlacement == b.StridePlacement) && a.Padding == b.Padding &&
        ResNetPlan.Blocks(a).Select(x => x.Shortcut).SequenceEqual(ResNetPlan.Blocks(b).Select(x => x.Shortcut));

    private static string Describe(ResNetSpec s) =>
        $"{(s.Residual ? "a residual" : "a plain")} {s.Block.ToString().ToLowerInvariant()} net with stages [{string.Join(", ", s.StageDepths)}] of widths [{string.Join(", ", s.StageWidths)}], {s.Stem} stem, shortcut {s.Shortcut}, {s.InputChannels} input channel(s)";

    private static float[] MeanImage(GraphProto graph, string source)
    {
        var init = graph.Initializer.FirstOrDefault(t => t.Name == OnnxNames.MeanImageInitializer)
            ?? throw new OnnxModelFormatException($"{source}: metadata says a mean image is used, but there is no '{OnnxNames.MeanImageInitializer}' initializer. Export the model again.");
        return Floats(init, source);
    }

    internal static float[] Floats(TensorProto t, string source)
    {
        if (t.DataType != (int)TensorProto.Types.DataType.Float)
            throw new OnnxModelFormatException($"{source}: initializer '{t.Name}' is of ONNX type {t.DataType}; only float32 weights are supported.");
        if (t.DataLocation == TensorProto.Types.DataLocation.External)
            throw new OnnxModelFormatException($"{source}: initializer '{t.Name}' is stored in an external file; save the model with its weights inside.");
        return t.RawData.Length > 0 ? MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray() : [.. t.FloatData];
    }

    /// <summary>Follows the graph from the stem to the classifier and collects weights under torchvision keys.</summary>
    private sealed class GraphTrace
    {
        private readonly GraphProto _g;
        private readonly string _source;
        private readonly Dictionary<string, NodeProto> _producer = [];
        private readonly Dictionary<string, List<NodeProto>> _consumers = [];
        private readonly Dictionary<string, TensorProto> _init;
        private readonly Dictionary<string, (float[] Data, long[] Shape)> _state = [];

        public GraphTrace(GraphProto g, string source)
        {
            _g = g;
            _source = source;
            _init = g.Initializer.ToDictionary(t => t.Name);
            foreach (var n in g.Node)
            {
                foreach (var o in n.Output) _producer[o] = n;
                foreach (var i in n.Input)
                {
                    if (!_consumers.TryGetValue(i, out var list)) _consumers[i] = list = [];
                    list.Add(n);
                }
            }
        }

        private OnnxModelFormatException NotAResNet(string what) => new(
            $"{_source} is not a ResNet this library can import: {what}. Expected a stem (convolution, batch norm, ReLU, optional max-pool), " +
            "basic or bottleneck residual blocks, global average pooling and an optional fully connected classifier.");

        public (int Height, int Width) InputSize()
        {
            var input = _g.Input.First(i => !_init.ContainsKey(i.Name));
            var dims = input.Type?.TensorType?.Shape?.Dim;
            if (dims is null || dims.Count != 4 || dims[2].DimValue < 1 || dims[3].DimValue < 1)
                throw NotAClassifierInput(input);
            return ((int)dims[2].DimValue, (int)dims[3].DimValue);
        }

        private OnnxModelFormatException NotAClassifierInput(ValueInfoProto input) => new(
            $"{_source}: input '{input.Name}' must be a float image batch [N, C, H, W] with fixed H and W; export the model with a fixed image size.");

        private List<NodeProto> Consumers(string tensor) => _consumers.TryGetValue(tensor, out var l) ? l : [];

        private NodeProto Next(string tensor, string op, string context) =>
            Consumers(tensor).FirstOrDefault(n => n.OpType == op) ?? throw NotAResNet($"after {context} expected {op}, found {string.Join("/", Consumers(tensor).Select(n => n.OpType).DefaultIfEmpty("nothing"))}");

        private float[] Init(string name, string context) =>
            _init.TryGetValue(name, out var t) ? Floats(t, _source) : throw NotAResNet($"{context}: '{name}' is not a constant initializer");

        private long[] Dims(string name) => [.. _init[name].Dims];

        private static long[] Attr(NodeProto n, string name, long[] fallback) =>
            n.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? [.. a.Ints] : fallback;

        private sealed record ConvBn(int Kernel, int Stride, long Lo, long Hi, long InChannels, long OutChannels, string Output);

        // A convolution and the batch norm after it (or a folded convolution with a bias) under torchvision keys.
        private ConvBn ReadConvBn(NodeProto conv, string convKey, string bnKey)
        {
            if (conv.OpType != "Conv") throw NotAResNet($"'{conv.Name}' ({convKey}) is {conv.OpType}, expected Conv");
            string ctx = $"'{conv.Name}' ({convKey})";
            if (conv.Attribute.FirstOrDefault(a => a.Name == "auto_pad") is { } ap && ap.S.ToStringUtf8() is not ("" or "NOTSET"))
                throw NotAResNet($"{ctx} uses auto_pad {ap.S.ToStringUtf8()}; explicit pads are needed");
            if (Attr(conv, "dilations", [1, 1]).Any(d => d != 1) || conv.Attribute.Any(a => a.Name == "group" && a.I != 1))
                throw NotAResNet($"{ctx} is dilated or grouped");
            var wDims = Dims(conv.Input[1]);
            int k = (int)wDims[2];
            var strides = Attr(conv, "strides", [1, 1]);
            var pads = Attr(conv, "pads", [0, 0, 0, 0]);
            if (wDims[2] != wDims[3] || strides[0] != strides[1] || pads[0] != pads[1] || pads[2] != pads[3])
                throw NotAResNet($"{ctx} is not square (kernel {wDims[2]}x{wDims[3]}, strides [{string.Join(", ", strides)}], pads [{string.Join(", ", pads)}])");
            _state[$"{convKey}.weight"] = (Init(conv.Input[1], ctx), wDims);
            float[]? convBias = conv.Input.Count > 2 && conv.Input[2].Length > 0 ? Init(conv.Input[2], ctx) : null;
            long cout = wDims[0];
            string output = conv.Output[0];
            var bn = Consumers(output).Count == 1 && Consumers(output)[0].OpType == "BatchNormalization" ? Consumers(output)[0] : null;
            float[] gamma, beta, mean, variance;
            if (bn is not null)
            {
                string bctx = $"'{bn.Name}' ({bnKey})";
                gamma = Init(bn.Input[1], bctx); beta = Init(bn.Input[2], bctx); mean = Init(bn.Input[3], bctx); variance = Init(bn.Input[4], bctx);
                float eps = bn.Attribute.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f;
                if (Math.Abs(eps - OnnxExporter.BatchNormEpsilon) > 1e-7f)
                    throw NotAResNet($"{bctx} has epsilon {eps}; the family's batch norms use {OnnxExporter.BatchNormEpsilon}");
                // BN(conv(x) + b) = BN'(conv(x)) with the running mean shifted by b.
                if (convBias is not null) for (int i = 0; i < mean.Length; i++) mean[i] -= convBias[i];
                output = bn.Output[0];
            }
            else if (convBias is not null)
            {
                // A folded convolution: an identity batch norm that adds the bias.
                gamma = Enumerable.Repeat(1f, (int)cout).ToArray();
                beta = convBias;
                mean = new float[cout];
                variance = Enumerable.Repeat(1f - OnnxExporter.BatchNormEpsilon, (int)cout).ToArray();
            }
            else throw NotAResNet($"{ctx} has neither a batch norm after it nor a bias");
            _state[$"{bnKey}.weight"] = (gamma, [cout]);
            _state[$"{bnKey}.bias"] = (beta, [cout]);
            _state[$"{bnKey}.running_mean"] = (mean, [cout]);
            _state[$"{bnKey}.running_var"] = (variance, [cout]);
            return new ConvBn(k, (int)strides[0], pads[0], pads[2], wDims[1], cout, output);
        }

        private readonly List<(int Kernel, int Stride, long Lo, long Hi)> _windows = [];

        private ConvBn Track(ConvBn c)
        {
            _windows.Add((c.Kernel, c.Stride, c.Lo, c.Hi));
            return c;
        }

        public (ResNetSpec Spec, Dictionary<string, (float[] Data, long[] Shape)> State, bool HasClassifier) Read()
        {
            var stemConv = _g.Node.FirstOrDefault(n => n.OpType == "Conv") ?? throw NotAResNet("it has no convolution");
            var stem = Track(ReadConvBn(stemConv, "conv1", "bn1"));
            string x = Next(stem.Output, "Relu", "the stem").Output[0];
            StemKind stemKind;
            var pool = Consumers(x).FirstOrDefault(n => n.OpType == "MaxPool");
            if (stem.Kernel == 7 && stem.Stride == 2 && pool is not null)
            {
                var k = Attr(pool, "kernel_shape", []);
                var s = Attr(pool, "strides", [1, 1]);
                var p = Attr(pool, "pads", [0, 0, 0, 0]);
                if (k.Length != 2 || k[0] != 3 || s[0] != 2 || p[0] != p[1] || p[2] != p[3])
                    throw NotAResNet($"the stem's max-pool is not 3x3/2 (kernel [{string.Join(", ", k)}], strides [{string.Join(", ", s)}])");
                _windows.Add((3, 2, p[0], p[2]));
                x = pool.Output[0];
                stemKind = StemKind.ImageNet;
            }
            else if (stem.Kernel == 3 && stem.Stride is 1 or 2 && pool is null)
                stemKind = stem.Stride == 1 ? StemKind.Cifar : StemKind.CifarStrided;
            else
                throw NotAResNet($"the stem is a {stem.Kernel}x{stem.Kernel}/{stem.Stride} convolution {(pool is null ? "without" : "with")} max-pool; the family has 7x7/2 + max-pool (ImageNet), 3x3/1 (CIFAR) or 3x3/2 (CIFAR at half resolution)");

            var blocks = new List<(BlockKind Kind, int Width, long Out, int Stride, bool StrideOnFirst, ShortcutKind Shortcut, (int Kernel, int Stride, long Out)[] Convs)>();
            int stage = 1, index = 0;
            while (!Consumers(x).Any(n => n.OpType is "GlobalAveragePool" or "AveragePool" or "ReduceMean"))
            {
                var convs = Consumers(x).Where(n => n.OpType == "Conv").ToList();
                if (convs.Count == 0 || convs.Count > 2)
                    throw NotAResNet($"after '{x}' expected a block's convolution(s) or global average pooling, found {string.Join("/", Consumers(x).Select(n => n.OpType).DefaultIfEmpty("nothing"))}");
                // The main path's first conv leads (through BN) to a ReLU; a projection's leads to the Add.
                NodeProto main = convs.FirstOrDefault(c => LeadsTo(c, "Relu")) ?? throw NotAResNet($"no block's first convolution after '{x}'");
                NodeProto? projection = convs.FirstOrDefault(c => c != main);
                int blockStride = (int)Math.Max(Attr(main, "strides", [1, 1])[0], projection is null ? 1 : Attr(projection, "strides", [1, 1])[0]);
                if (index > 0 && blockStride == 2) { stage++; index = 0; }
                string p = $"layer{stage}.{index}";

                var c1 = Track(ReadConvBn(main, $"{p}.conv1", $"{p}.bn1"));
                bool bottleneck = c1.Kernel == 1;
                var y = Next(c1.Output, "Relu", $"{p}.conv1").Output[0];
                var c2 = Track(ReadConvBn(Next(y, "Conv", $"{p}.relu1"), $"{p}.conv2", $"{p}.bn2"));
                var last = c2;
                if (bottleneck)
                {
                    y = Next(c2.Output, "Relu", $"{p}.conv2").Output[0];
                    last = Track(ReadConvBn(Next(y, "Conv", $"{p}.relu2"), $"{p}.conv3", $"{p}.bn3"));
                }
                var after = Consumers(last.Output);
                ShortcutKind shortcut;
                if (after.Count == 1 && after[0].OpType == "Add")
                {
                    var add = after[0];
                    string other = add.Input[0] == last.Output ? add.Input[1] : add.Input[0];
                    shortcut = other == x ? ShortcutKind.Identity
                        : projection is not null ? ShortcutKind.Projection
                        : FromZeroPad(other, x) ? ShortcutKind.ZeroPad
                        : throw NotAResNet($"the shortcut of {p} is neither identity, zero padding nor a projection");
                    if (shortcut == ShortcutKind.Projection)
                    {
                        var proj = Track(ReadConvBn(projection!, $"{p}.downsample.0", $"{p}.downsample.1"));
                        if (proj.Output != other) throw NotAResNet($"the projection of {p} does not feed its Add");
                    }
                    x = Next(add.Output[0], "Relu", $"{p}.add").Output[0];
                }
                else if (after.Count == 1 && after[0].OpType == "Relu" && projection is null)
                {
                    shortcut = ShortcutKind.None;
                    x = after[0].Output[0];
                }
                else throw NotAResNet($"after the last convolution of {p} expected Add or Relu, found {string.Join("/", after.Select(n => n.OpType).DefaultIfEmpty("nothing"))}");

                if (blocks.Count == 0 && blockStride == 2) throw NotAResNet("the first block downsamples");
                var read = (bottleneck ? new[] { c1, c2, last } : [c1, c2]).Select(c => (c.Kernel, c.Stride, c.OutChannels)).ToArray();
                blocks.Add((bottleneck ? BlockKind.Bottleneck : BlockKind.Basic, (int)c1.OutChannels, last.OutChannels, blockStride, c1.Stride == 2, shortcut, read));
                index++;
            }

            var stages = new List<(int Depth, int Width)>();
            int s0 = 0;
            for (int i = 0; i < blocks.Count; i++)
            {
                if (i > 0 && blocks[i].Stride == 2) s0++;
                if (s0 == stages.Count) stages.Add((0, blocks[i].Width));
                stages[s0] = (stages[s0].Depth + 1, stages[s0].Width);
            }
            var kind = blocks[0].Kind;
            if (blocks.Any(b => b.Kind != kind)) throw NotAResNet("it mixes basic and bottleneck blocks");
            bool residual = blocks.Any(b => b.Shortcut != ShortcutKind.None);
            var option = blocks.Any(b => b.Shortcut == ShortcutKind.ZeroPad) || !residual ? ShortcutOption.A
                : blocks.All(b => b.Shortcut == ShortcutKind.Projection) ? ShortcutOption.C : ShortcutOption.B;
            var padding = _windows.Any(w => w.Lo != w.Hi) ? PaddingStyle.CntkAsymmetric : PaddingStyle.Symmetric;
            // CNTK-style padding depends on whether the stride divides the window's input; either case is the style's.
            foreach (var w in _windows)
                if (!Enumerable.Range(0, w.Stride).Any(r => ResNetPlan.Padding(padding, w.Kernel, w.Stride, w.Kernel * w.Stride + r) == ((int)w.Lo, (int)w.Hi)))
                    throw NotAResNet($"a {w.Kernel}x{w.Kernel}/{w.Stride} window is padded ({w.Lo} before, {w.Hi} after), which neither symmetric nor CNTK padding gives");
            var placement = blocks.Any(b => b.Kind == BlockKind.Bottleneck && b.Stride == 2 && b.StrideOnFirst) ? BottleneckStride.Paper : BottleneckStride.V15;

            var (classes, hasClassifier) = ReadHead(x, blocks[^1].Out);
            var spec = new ResNetSpec("imported", kind, stages.Select(s => s.Depth).ToArray(),
                stages.Select(s => s.Width).ToArray(), stemKind, (int)stem.OutChannels, option, residual, (int)stem.InChannels,
                Math.Max(classes, 1), false, placement, padding);
            spec = spec with { Name = $"{(residual ? "resnet" : "plain")}{spec.Depth}-imported" };
            var planned = ResNetPlan.Blocks(spec);
            for (int i = 0; i < planned.Count; i++)
            {
                if (planned[i].Shortcut != blocks[i].Shortcut || planned[i].Stride != blocks[i].Stride || planned[i].OutChannels != blocks[i].Out)
                    throw NotAResNet($"block {planned[i].Path} has a {blocks[i].Shortcut} shortcut, stride {blocks[i].Stride} and {blocks[i].Out} channels, where shortcut option {option} plans {planned[i].Shortcut}, stride {planned[i].Stride}, {planned[i].OutChannels}");
                var plannedConvs = planned[i].Convs.Select(c => (c.Kernel, c.Stride, (long)c.OutChannels)).ToArray();
                if (!plannedConvs.SequenceEqual(blocks[i].Convs))
                    throw NotAResNet($"block {planned[i].Path} has convolutions {Describe(blocks[i].Convs)}, where {placement} stride placement plans {Describe(plannedConvs)}");
            }
            return (spec, _state, hasClassifier);
        }

        private static string Describe((int Kernel, int Stride, long Out)[] convs) =>
            string.Join(" / ", convs.Select(c => $"{c.Kernel}x{c.Kernel}/{c.Stride},{c.Out}"));

        private bool LeadsTo(NodeProto conv, string op)
        {
            var next = Consumers(conv.Output[0]);
            if (next.Count == 1 && next[0].OpType == "BatchNormalization") next = Consumers(next[0].Output[0]);
            return next.Count == 1 && next[0].OpType == op;
        }

        // Option A: Slice (subsample) and/or Pad (zero channels) leading back to the block input.
        private bool FromZeroPad(string tensor, string blockInput)
        {
            for (int hops = 0; hops < 3; hops++)
            {
                if (tensor == blockInput) return hops > 0;
                if (!_producer.TryGetValue(tensor, out var n) || n.OpType is not ("Slice" or "Pad")) return false;
                tensor = n.Input[0];
            }
            return tensor == blockInput;
        }

        private (int Classes, bool HasClassifier) ReadHead(string x, long features)
        {
            var pool = Consumers(x).First(n => n.OpType is "GlobalAveragePool" or "AveragePool" or "ReduceMean");
            string t = pool.Output[0];
            for (int hops = 0; hops < 3; hops++)
            {
                var next = Consumers(t).FirstOrDefault(n => n.OpType is "Flatten" or "Reshape" or "Squeeze");
                if (next is null) break;
                t = next.Output[0];
            }
            var gemm = Consumers(t).FirstOrDefault(n => n.OpType == "Gemm");
            if (gemm is null) return (0, false);
            bool transB = gemm.Attribute.Any(a => a.Name == "transB" && a.I == 1);
            var w = Init(gemm.Input[1], "the classifier");
            var dims = Dims(gemm.Input[1]);
            long k = transB ? dims[0] : dims[1];
            if ((transB ? dims[1] : dims[0]) != features)
                throw NotAResNet($"the classifier takes {(transB ? dims[1] : dims[0])} features, the trunk gives {features}");
            if (!transB)
            {
                var tr = new float[w.Length];
                for (int i = 0; i < features; i++) for (int j = 0; j < k; j++) tr[j * features + i] = w[i * k + j];
                w = tr;
            }
            _state["fc.weight"] = (w, [k, features]);
            _state["fc.bias"] = (gemm.Input.Count > 2 ? Init(gemm.Input[2], "the classifier") : new float[k], [k]);
            return ((int)k, true);
        }
    }
}
