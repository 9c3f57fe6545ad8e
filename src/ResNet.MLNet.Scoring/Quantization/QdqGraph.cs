using Onnx;

namespace ResNet.Scoring.Quantization;

/// <summary>
/// The graph edits of static quantization, in the order they happen: batch norms folded into convolutions,
/// a plan of which operators and tensors become 8-bit, ReLUs absorbed by the QuantizeLinear after a Conv or
/// Add, and finally the QuantizeLinear/DequantizeLinear pairs and int8 weights written.
/// </summary>
/// <remarks>
/// Placement follows what ONNX Runtime's CPU provider fuses at ORT_ENABLE_ALL: DQ(x), DQ(w), DQ(bias int32) -> Conv
/// -> Q becomes QLinearConv; DQ, DQ -> Add -> Q becomes QLinearAdd; DQ -> MaxPool/Slice/Reshape/Flatten -> Q with
/// equal scales runs on the 8-bit tensor directly. A ReLU before a uint8 Q with zero point 0 is what the Q's
/// saturation does anyway, so it is removed and its output's range is used.
/// </remarks>
internal sealed class QdqGraph
{
    // Operators whose output may share its input's scale and zero point, so the runtime can drop their Q/DQ pair.
    private static readonly HashSet<string> PassThrough = ["MaxPool", "Slice", "Pad", "Reshape", "Flatten"];

    private readonly GraphProto _graph;
    private readonly Dictionary<string, TensorProto> _initializers;
    private readonly HashSet<NodeProto> _quantizedNodes = new(ReferenceEqualityComparer.Instance);
    private readonly List<NodeProto> _reluFusions = [];

    /// <summary>Quantized activation tensors, in the order they become known; value = the tensor whose scale it shares (itself when calibrated).</summary>
    public Dictionary<string, string> Tensors { get; } = new(StringComparer.Ordinal);

    public int QuantizedNodeCount => _quantizedNodes.Count;
    public List<string> FloatNodes { get; } = [];
    public int FoldedBatchNorms { get; private set; }

    public QdqGraph(GraphProto graph)
    {
        _graph = graph;
        _initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    private bool IsInitializer(string name) => _initializers.ContainsKey(name);

    private Dictionary<string, List<NodeProto>> Consumers()
    {
        var consumers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var n in _graph.Node)
            foreach (var i in n.Input.Where(i => i.Length > 0))
                (consumers.TryGetValue(i, out var list) ? list : consumers[i] = []).Add(n);
        return consumers;
    }

    private bool IsGraphOutput(string name) => _graph.Output.Any(o => o.Name == name);

    /// <summary>Folds every BatchNormalization that directly follows a Conv with constant weights into it.</summary>
    public void FoldBatchNorms()
    {
        var consumers = Consumers();
        var producers = _graph.Node.SelectMany(n => n.Output.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n, StringComparer.Ordinal);
        foreach (var bn in _graph.Node.Where(n => n.OpType == "BatchNormalization").ToList())
        {
            if (!producers.TryGetValue(bn.Input[0], out var conv) || conv.OpType != "Conv" || !IsInitializer(conv.Input[1]) ||
                consumers[conv.Output[0]].Count != 1 || IsGraphOutput(conv.Output[0]) || bn.Output.Count != 1 ||
                !bn.Input.Skip(1).All(IsInitializer))
                continue;
            var w = _initializers[conv.Input[1]];
            float[] weights = OnnxTensors.ReadFloats(w);
            float[] gamma = OnnxTensors.ReadFloats(_initializers[bn.Input[1]]), beta = OnnxTensors.ReadFloats(_initializers[bn.Input[2]]);
            float[] mean = OnnxTensors.ReadFloats(_initializers[bn.Input[3]]), variance = OnnxTensors.ReadFloats(_initializers[bn.Input[4]]);
            float epsilon = OnnxTensors.FloatAttribute(bn, "epsilon", 1e-5f);
            float[] bias = conv.Input.Count > 2 && conv.Input[2].Length > 0 ? OnnxTensors.ReadFloats(_initializers[conv.Input[2]]) : new float[gamma.Length];
            int perChannel = weights.Length / gamma.Length;
            // w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta
            for (int o = 0; o < gamma.Length; o++)
            {
                float scale = gamma[o] / MathF.Sqrt(variance[o] + epsilon);
                for (int i = 0; i < perChannel; i++) weights[o * perChannel + i] *= scale;
                bias[o] = (bias[o] - mean[o]) * scale + beta[o];
            }
            string weightName = conv.Input[1] + ".folded", biasName = conv.Input[1] + ".folded_bias";
            AddInitializer(OnnxTensors.Float(weightName, weights, [.. w.Dims]));
            AddInitializer(OnnxTensors.Float(biasName, bias, gamma.Length));
            conv.Input[1] = weightName;
            if (conv.Input.Count > 2) conv.Input[2] = biasName; else conv.Input.Add(biasName);
            conv.Output[0] = bn.Output[0];
            _graph.Node.Remove(bn);
            FoldedBatchNorms++;
        }
        RemoveUnusedInitializers();
    }

    private void AddInitializer(TensorProto t)
    {
        _graph.Initializer.Add(t);
        _initializers[t.Name] = t;
    }

    private void RemoveUnusedInitializers()
    {
        var used = _graph.Node.SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
        foreach (var t in _graph.Initializer.Where(t => !used.Contains(t.Name)).ToList())
        {
            _graph.Initializer.Remove(t);
            _initializers.Remove(t.Name);
            // Files before IR version 4 also list each initializer as a graph input.
            if (_graph.Input.FirstOrDefault(i => i.Name == t.Name) is { } declared) _graph.Input.Remove(declared);
        }
    }

    /// <summary>Decides which operators run in 8-bit and which tensors get a Q/DQ pair; nothing is changed yet.</summary>
    public void Plan(bool keepFirstConvFloat, bool keepClassifierFloat)
    {
        var consumers = Consumers();
        var firstConv = _graph.Node.FirstOrDefault(n => n.OpType == "Conv");
        void Mark(string tensor) => Tensors.TryAdd(tensor, tensor);

        foreach (var n in _graph.Node)
        {
            bool quantize = n.OpType switch
            {
                "Conv" => IsInitializer(n.Input[1]) && !(keepFirstConvFloat && ReferenceEquals(n, firstConv)),
                "Gemm" => !keepClassifierFloat && IsInitializer(n.Input[1]) && _initializers[n.Input[1]].Dims.Count == 2 &&
                          OnnxTensors.IntAttribute(n, "transA", 0) == 0 && OnnxTensors.FloatAttribute(n, "alpha", 1f) == 1f &&
                          OnnxTensors.FloatAttribute(n, "beta", 1f) == 1f,
                "MatMul" => !keepClassifierFloat && IsInitializer(n.Input[1]) && _initializers[n.Input[1]].Dims.Count == 2,
                "Add" => n.Input.All(i => !IsInitializer(i)),
                _ => false,
            };
            if (!quantize)
            {
                if (n.OpType is "Conv" or "Gemm" or "MatMul") FloatNodes.Add(n.Name.Length > 0 ? n.Name : n.Output[0]);
                continue;
            }
            _quantizedNodes.Add(n);
            if (n.OpType == "Add") { Mark(n.Input[0]); Mark(n.Input[1]); }
            else Mark(n.Input[0]);
            if (n.OpType is "Conv" or "Add") Mark(n.Output[0]);
        }

        // Shape-only operators keep their input's scale, so the runtime runs them on the 8-bit tensor: first pull
        // quantization back to their inputs (last to first), then let outputs borrow the input's scale (first to last).
        // Not past a float producer (the first convolution kept float): there the operator runs in float and the
        // quantization follows it; for the MaxPool after the stem that is ONNX Runtime's fast NCHWc kernel instead of its
        // generic uint8 one, and a QuantizeLinear on a quarter of the tensor.
        CommuteReluAndMaxPool(consumers);
        var producers = Producers();
        var passThrough = _graph.Node.Where(n => PassThrough.Contains(n.OpType) && KeepsZero(n)).ToList();
        for (int i = passThrough.Count - 1; i >= 0; i--)
            if (Tensors.ContainsKey(passThrough[i].Output[0]) && ComesOutIn8Bit(passThrough[i].Input[0], producers)) Mark(passThrough[i].Input[0]);
        foreach (var n in passThrough)
            if (Tensors.ContainsKey(n.Input[0])) Tensors[n.Output[0]] = n.Input[0];

        // A ReLU between a Conv/Add and its Q is absorbed: the Q (zero point 0) clamps at 0 by itself.
        foreach (var relu in _graph.Node.Where(n => n.OpType == "Relu"))
        {
            string x = relu.Input[0];
            var producer = _graph.Node.FirstOrDefault(p => p.Output.Contains(x));
            if (producer?.OpType is "Conv" or "Add" && Tensors.TryGetValue(x, out var s) && s == x &&
                consumers[x].Count == 1 && !IsGraphOutput(x) && Tensors.TryGetValue(relu.Output[0], out var r) && r == relu.Output[0])
            {
                Tensors.Remove(x);
                _reluFusions.Add(relu);
            }
        }
    }

    private Dictionary<string, NodeProto> Producers() =>
        _graph.Node.SelectMany(n => n.Output.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n, StringComparer.Ordinal);

    /// <summary>
    /// Float producer -> Relu -> MaxPool becomes float producer -> MaxPool -> Relu (the two commute: max(relu(a), relu(b))
    /// = relu(max(a, b)), and MaxPool's padding never wins). The QuantizeLinear that the 8-bit consumers need then follows
    /// a Relu, which ONNX Runtime does not move it past, instead of a MaxPool, which it does: so the MaxPool runs in float
    /// in ONNX Runtime's NCHWc layout beside the convolution (its uint8 NCHW kernel is several times slower), the
    /// QuantizeLinear works on the pooled tensor (a quarter of the size for the stem's 3x3 stride-2 pool), and ONNX
    /// Runtime folds the Relu into it.
    /// </summary>
    private void CommuteReluAndMaxPool(Dictionary<string, List<NodeProto>> consumers)
    {
        var producers = Producers();
        foreach (var pool in _graph.Node.Where(n => n.OpType == "MaxPool" && n.Output.Count == 1).ToList())
        {
            if (!producers.TryGetValue(pool.Input[0], out var relu) || relu.OpType != "Relu" || consumers[relu.Output[0]].Count != 1 ||
                IsGraphOutput(relu.Output[0]) || IsGraphOutput(pool.Output[0]) || ComesOutIn8Bit(relu.Input[0], producers) ||
                !consumers.TryGetValue(pool.Output[0], out var readers) || !readers.Any(_quantizedNodes.Contains))
                continue;
            string pooled = pool.Output[0], activation = relu.Output[0];
            pool.Input[0] = relu.Input[0];
            pool.Output[0] = pooled + ".before_relu";
            relu.Input[0] = pool.Output[0];
            relu.Output[0] = pooled;
            _graph.Node.Remove(relu);
            _graph.Node.Insert(_graph.Node.IndexOf(pool) + 1, relu);
            if (_graph.ValueInfo.FirstOrDefault(v => v.Name == activation) is { } stale) _graph.ValueInfo.Remove(stale);
            consumers[pool.Output[0]] = [relu];
            consumers.Remove(activation);
            producers = Producers();
        }
    }

    // True when the tensor is made in 8-bit anyway: by a quantized operator (through a ReLU the Q absorbs), or by a
    // shape-only operator whose own input is. Graph inputs and float operators' outputs are not.
    private bool ComesOutIn8Bit(string tensor, Dictionary<string, NodeProto> producers)
    {
        if (!producers.TryGetValue(tensor, out var p)) return false;
        if (_quantizedNodes.Contains(p)) return true;
        if (p.OpType == "Relu") return producers.TryGetValue(p.Input[0], out var q) && q.OpType is "Conv" or "Add" && _quantizedNodes.Contains(q);
        return PassThrough.Contains(p.OpType) && KeepsZero(p) && ComesOutIn8Bit(p.Input[0], producers);
    }

    // Only zero padding maps exactly onto the zero point.
    private static bool KeepsZero(NodeProto n) =>
        n.OpType != "Pad" || !(n.Input.Count > 2 && n.Input[2].Length > 0 || n.Attribute.Any(a => a.Name == "mode" && a.S.ToStringUtf8() != "constant"));

    /// <summary>The tensors whose range has to be measured (those that do not borrow another tensor's scale).</summary>
    public IReadOnlyList<string> CalibratedTensors => Tensors.Where(t => t.Key == t.Value).Select(t => t.Key).ToList();

    /// <summary>Writes the plan into the graph: ReLUs removed, int8 weights and int32 biases, Q/DQ pairs.</summary>
    public void Apply(IReadOnlyDictionary<string, ActivationRange> ranges)
    {
        foreach (var relu in _reluFusions)
        {
            var producer = _graph.Node.First(p => p.Output.Contains(relu.Input[0]));
            producer.Output[0] = relu.Output[0];
            _graph.Node.Remove(relu);
        }
        var quantization = new Dictionary<string, (string Scale, string ZeroPoint, float ScaleValue)>(StringComparer.Ordinal);
        foreach (var (tensor, source) in Tensors.Where(t => t.Key == t.Value))
        {
            var (scale, zeroPoint) = ranges[tensor].ToUint8();
            AddInitializer(OnnxTensors.Float(tensor + ".scale", [scale]));
            AddInitializer(OnnxTensors.Uint8(tensor + ".zero_point", [zeroPoint]));
            quantization[tensor] = (tensor + ".scale", tensor + ".zero_point", scale);
        }
        (string Scale, string ZeroPoint, float ScaleValue) ParamsOf(string tensor)
        {
            while (Tensors[tensor] != tensor) tensor = Tensors[tensor];
            return quantization[tensor];
        }

        var graphInputs = _graph.Input.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var nodes = new List<NodeProto>();
        var renamedInputs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var input in Tensors.Keys.Where(graphInputs.Contains))
        {
            var p = ParamsOf(input);
            nodes.Add(QuantizeNode(input, input + ".quantized", p));
            nodes.Add(DequantizeNode(input + ".quantized", input + ".dequantized", p.Scale, p.ZeroPoint));
            renamedInputs[input] = input + ".dequantized";
        }
        foreach (var node in _graph.Node)
        {
            if (_quantizedNodes.Contains(node) && node.OpType != "Add")
                nodes.AddRange(QuantizeWeights(node, ParamsOf(node.Input[0]).ScaleValue));
            for (int i = 0; i < node.Input.Count; i++)
                if (renamedInputs.TryGetValue(node.Input[i], out var renamed)) node.Input[i] = renamed;
            string output = node.Output[0];
            nodes.Add(node);
            if (node.OpType == "Pad" && Tensors.TryGetValue(output, out var padded) && padded == node.Input[0])
            {
                // ONNX Runtime has no 8-bit rule for Pad: pad the 8-bit tensor itself, with the zero point as the fill.
                var p = ParamsOf(output);
                node.Input[0] += ".quantized";
                while (node.Input.Count < 3) node.Input.Add("");
                node.Input[2] = p.ZeroPoint;
                node.Output[0] = output + ".quantized";
                nodes.Add(DequantizeNode(output + ".quantized", output, p.Scale, p.ZeroPoint));
            }
            else if (Tensors.ContainsKey(output) && !graphInputs.Contains(output))
            {
                var p = ParamsOf(output);
                node.Output[0] = output + ".float";
                nodes.Add(QuantizeNode(output + ".float", output + ".quantized", p));
                nodes.Add(DequantizeNode(output + ".quantized", output, p.Scale, p.ZeroPoint));
            }
        }
        // A DequantizeLinear nobody reads (the one after a Slice whose Pad takes the 8-bit tensor) is left out.
        var read = nodes.SelectMany(n => n.Input).Concat(_graph.Output.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);
        nodes.RemoveAll(n => n.OpType == "DequantizeLinear" && !read.Contains(n.Output[0]));
        _graph.Node.Clear();
        _graph.Node.AddRange(nodes);
        RemoveUnusedInitializers();
    }

    private static NodeProto QuantizeNode(string input, string output, (string Scale, string ZeroPoint, float) p) => new()
    {
        OpType = "QuantizeLinear", Name = output + "/QuantizeLinear", Input = { input, p.Scale, p.ZeroPoint }, Output = { output },
    };

    private static NodeProto DequantizeNode(string input, string output, string scale, string zeroPoint, int? axis = null)
    {
        var n = new NodeProto { OpType = "DequantizeLinear", Name = output + "/DequantizeLinear", Input = { input, scale, zeroPoint }, Output = { output } };
        if (axis is int a) n.Attribute.Add(OnnxTensors.Int("axis", a));
        return n;
    }

    // Weights: int8, symmetric, one scale per output channel. Bias: int32 at scale input_scale * weight_scale, as QLinearConv takes it.
    private IEnumerable<NodeProto> QuantizeWeights(NodeProto node, float inputScale)
    {
        var w = _initializers[node.Input[1]];
        float[] weights = OnnxTensors.ReadFloats(w);
        // Output channels: axis 0 of Conv weights and of Gemm's transposed B; axis 1 of MatMul's and plain Gemm's B.
        int axis = node.OpType == "Conv" || (node.OpType == "Gemm" && OnnxTensors.IntAttribute(node, "transB", 0) == 1) ? 0 : 1;
        int channels = (int)w.Dims[axis];
        var scales = new float[channels];
        var q = new sbyte[weights.Length];
        int inner = axis == 0 ? weights.Length / channels : 1, stride = axis == 0 ? 1 : channels;
        int Index(int channel, int k) => axis == 0 ? channel * inner + k : k * stride + channel;
        int perChannel = weights.Length / channels;
        for (int c = 0; c < channels; c++)
        {
            float max = 0;
            for (int k = 0; k < perChannel; k++) max = Math.Max(max, Math.Abs(weights[Index(c, k)]));
            scales[c] = max > 0 ? max / 127f : 1f;
            for (int k = 0; k < perChannel; k++)
                q[Index(c, k)] = (sbyte)Math.Clamp(MathF.Round(weights[Index(c, k)] / scales[c], MidpointRounding.ToEven), -127, 127);
        }
        string name = node.Input[1];
        AddInitializer(OnnxTensors.Int8(name + ".int8", q, [.. w.Dims]));
        AddInitializer(OnnxTensors.Float(name + ".int8_scale", scales, channels));
        AddInitializer(OnnxTensors.Int8(name + ".int8_zero_point", new sbyte[channels], channels));
        yield return DequantizeNode(name + ".int8", name + ".dequantized", name + ".int8_scale", name + ".int8_zero_point", axis);
        node.Input[1] = name + ".dequantized";

        if (node.Input.Count > 2 && node.Input[2].Length > 0 && IsInitializer(node.Input[2]) &&
            _initializers[node.Input[2]] is { Dims.Count: 1 } b && b.Dims[0] == channels)
        {
            float[] bias = OnnxTensors.ReadFloats(b);
            var biasScales = scales.Select(s => s * inputScale).ToArray();
            var qb = new int[channels];
            for (int c = 0; c < channels; c++)
                qb[c] = (int)Math.Clamp(Math.Round(bias[c] / biasScales[c], MidpointRounding.ToEven), int.MinValue + 1, int.MaxValue);
            string bn = node.Input[2];
            AddInitializer(OnnxTensors.Int32(bn + ".int32", qb, channels));
            AddInitializer(OnnxTensors.Float(bn + ".int32_scale", biasScales, channels));
            AddInitializer(OnnxTensors.Int32(bn + ".int32_zero_point", new int[channels], channels));
            yield return DequantizeNode(bn + ".int32", bn + ".dequantized", bn + ".int32_scale", bn + ".int32_zero_point", 0);
            node.Input[2] = bn + ".dequantized";
        }
    }
}
