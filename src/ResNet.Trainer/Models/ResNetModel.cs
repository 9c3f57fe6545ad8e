using ResNet.Trainer.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace ResNet.Trainer.Models;

/// <summary>
/// A deep residual network (He et al. 2015) built from a <see cref="ResNetSpec"/>. Module names follow
/// torchvision (<c>conv1</c>, <c>bn1</c>, <c>layer1.0.conv1</c>, <c>layer1.0.downsample.0</c>, <c>fc</c>)
/// so torchvision state_dicts load by key.
/// </summary>
public sealed class ResNetModel : Module<Tensor, Tensor>
{
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn1;
    private readonly MaxPool2d? maxpool;
    private readonly Sequential[] layers;
    private readonly Linear fc;
    private readonly ConvPlan _stem;

    /// <summary>The spec this network was built from.</summary>
    public ResNetSpec Spec { get; }

    /// <summary>The blocks, in order, as planned from the spec.</summary>
    public IReadOnlyList<BlockPlan> Plan { get; }

    /// <summary>Builds the network and initialises it (He normal, fan_out, for convolutions; BN weight 1, bias 0).</summary>
    /// <param name="spec">The architecture.</param>
    /// <param name="seed">When set, the initial weights are drawn from this seed (the global generator is restored afterwards).</param>
    public ResNetModel(ResNetSpec spec, long? seed = null) : base(ReadyName(spec))
    {
        Spec = spec;
        Plan = ResNetPlan.Blocks(spec);

        _stem = ResNetPlan.Stem(spec);
        conv1 = ConvOf(spec.Padding, _stem);
        if (spec.Stem == StemKind.ImageNet)
            maxpool = MaxPool2d(3, stride: 2, padding: spec.Padding == PaddingStyle.Symmetric ? 1 : 0);
        bn1 = BatchNorm2d(spec.StemWidth);
        register_module("conv1", conv1);
        register_module("bn1", bn1);
        if (maxpool is not null) register_module("maxpool", maxpool);

        layers = new Sequential[spec.StageDepths.Count];
        for (int s = 0; s < layers.Length; s++)
        {
            var blocks = Plan.Where(b => b.Stage == s + 1)
                .Select(b => (Module<Tensor, Tensor>)new ResidualBlock(spec, b)).ToArray();
            layers[s] = Sequential(blocks);
            register_module($"layer{s + 1}", layers[s]);
        }
        fc = Linear(spec.FeatureCount, spec.NumClasses);
        register_module("fc", fc);

        _norms = modules().OfType<BatchNorm2d>().ToArray();
        Initialize(seed);
    }

    private readonly BatchNorm2d[] _norms;

    // The base constructor already calls into libtorch, so the backend must be loaded before it runs.
    private static string ReadyName(ResNetSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        TorchNative.EnsureReady();
        Native.OneDnnGuard.Check(spec);
        return spec.Name;
    }

    // A convolution as planned, without bias (BN follows every one).
    internal static Conv2d ConvOf(PaddingStyle style, ConvPlan c) =>
        Conv2d(c.InChannels, c.OutChannels, c.Kernel, stride: c.Stride, padding: ResNetPlan.BuiltInPadding(style, c), bias: false);

    // A planned convolution in the compute type: the input and a cast of the float32 weight (the cast is part of the graph,
    // so the gradient reaches the float32 master weight in float32), as PyTorch's autocast does for convolutions.
    // The batch norm after it keeps its float32 weight, bias and running statistics and accumulates in float32 (libtorch's
    // mixed-type CPU kernel) on the bfloat16 output, which stays bfloat16 for the next convolution. Casting to float32
    // around batch norm instead was 1.6-1.8x slower per CPU-second (ResNet-18 at 224, 2026-12-02): the casts cost more.
    internal static Tensor Convolve(Conv2d conv, PaddingStyle style, ConvPlan c, Tensor x, ScalarType? compute)
    {
        x = PadInput(style, c, x);
        if (compute is not ScalarType t) return conv.forward(x);
        int pad = ResNetPlan.BuiltInPadding(style, c);
        return functional.conv2d(x.to(t), conv.weight!.to(t), strides: [c.Stride, c.Stride], padding: [pad, pad]);
    }

    // The input of a planned convolution: strided windows with CNTK-style padding are padded here, not by the convolution.
    internal static Tensor PadInput(PaddingStyle style, ConvPlan c, Tensor x) => c.Stride == 1 ? x : PadFor(style, x, c.Kernel, c.Stride);

    // Paper section 3.4: "We initialize the weights as in [13]" (He init); BN after every convolution.
    // Paper section 3.4: "We initialize the weights as in [13]" (He init, fan_out); BN after every convolution.
    // A seeded model draws from its own generator, so other threads drawing random numbers cannot change it.
    // (TorchSharp 0.107's init.normal_/uniform_ ignore their generator argument; randn/rand honour it.)
    private void Initialize(long? seed)
    {
        using var _ = no_grad();
        using var generator = seed is long s ? new Generator(unchecked((ulong)s)) : null;
        foreach (var (_, module) in named_modules())
        {
            switch (module)
            {
                case Conv2d conv:
                    var w = conv.weight!;
                    long fanOut = w.shape[0] * w.shape[2] * w.shape[3];
                    using (var draw = randn(w.shape, generator: generator))
                    using (var std = Math.Sqrt(2.0 / fanOut).ToScalar()) w.copy_(draw.mul_(std));
                    break;
                case BatchNorm2d bn:
                    init.ones_(bn.weight);
                    init.zeros_(bn.bias);
                    break;
            }
        }
        if (Spec.ZeroInitResidual)
            foreach (var block in layers.SelectMany(l => l.children()).OfType<ResidualBlock>())
                init.zeros_(block.LastBatchNorm.weight);
        // PyTorch's default Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
        double bound = 1.0 / Math.Sqrt(fc.in_features);
        using Scalar width = (2 * bound).ToScalar(), low = bound.ToScalar();
        foreach (var p in new[] { fc.weight!, fc.bias! })
            using (var draw = rand(p.shape, generator: generator)) p.copy_(draw.mul_(width).sub_(low));
    }

    /// <summary>Logits, shape [N, NumClasses], for input [N, InputChannels, H, W].</summary>
    public override Tensor forward(Tensor input) => fc.forward(Features(input));

    private ScalarType? _compute;

    /// <summary>
    /// The type convolutions compute in (null: the weights' own type). Weights, gradients and batch norm stay in float32.
    /// </summary>
    internal ScalarType? ComputeType
    {
        get => _compute;
        set
        {
            _compute = value;
            foreach (var block in layers.SelectMany(l => l.children()).OfType<ResidualBlock>()) block.ComputeType = value;
        }
    }

    /// <summary>
    /// Whether activations may stay in oneDNN's blocked layout between convolutions (<see cref="BlockedLayout"/>; it applies
    /// to float32 on the CPU). On by default; off keeps every activation NCHW, as the step was before the layout.
    /// </summary>
    internal bool AllowBlockedLayout { get; set; } = true;

    /// <summary>The globally average-pooled features, shape [N, <see cref="ResNetSpec.FeatureCount"/>].</summary>
    public Tensor Features(Tensor input)
    {
        CheckInput(input);
        using var scope = NewDisposeScope();
        // libtorch's blocked batch norm has no backward pass in evaluation mode, so gradients through frozen statistics take NCHW.
        bool blocked = BlockedLayout.Applies(AllowBlockedLayout, conv1.weight!, _compute, Spec.Padding)
            && (!is_grad_enabled() || _norms.All(n => n.training));
        var x = blocked ? BlockedLayout.ToBlocked(input) : input;
        x = HeldScalars.Normalize(bn1, Convolve(conv1, Spec.Padding, _stem, x, _compute)).relu_(); // in place, as torchvision: BN's backward needs its input, not its output
        if (maxpool is not null)
            x = maxpool.forward(PadFor(Spec.Padding, x, 3, 2, double.NegativeInfinity));
        foreach (var layer in layers) x = layer.forward(x);
        if (blocked) x = BlockedLayout.ToDense(x);
        x = x.mean([2L, 3L]);
        return (_compute is null ? x : x.to(fc.weight!.dtype)).MoveToOuterDisposeScope(); // the classifier and the loss in the weights' type
    }

    internal static Tensor PadFor(PaddingStyle style, Tensor x, int kernel, int stride, double value = 0)
    {
        if (style == PaddingStyle.Symmetric) return x; // the convolution pads itself
        var (top, bottom) = ResNetPlan.Padding(style, kernel, stride, (int)x.shape[2]);
        var (left, right) = ResNetPlan.Padding(style, kernel, stride, (int)x.shape[3]);
        return top + bottom + left + right == 0 ? x : functional.pad(x, [left, right, top, bottom], PaddingModes.Constant, value);
    }

    private void CheckInput(Tensor input)
    {
        if (input.dim() != 4 || input.shape[1] != Spec.InputChannels)
            throw new ArgumentException(
                $"{Spec.Name} expects input of shape [N, {Spec.InputChannels}, H, W], got [{string.Join(", ", input.shape)}]. " +
                (input.dim() == 4 ? $"Convert the images to {Spec.InputChannels} channel(s) or build the model with InputChannels = {input.shape[1]}." : "Add a batch dimension."),
                nameof(input));
    }

    /// <summary>The key of the first weight or buffer holding NaN or infinity, or null when every one is finite.</summary>
    public string? FirstNonFiniteTensor()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        foreach (var (key, t) in state_dict())
            if (t.is_floating_point() && !t.isfinite().all().item<bool>()) return key;
        return null;
    }

    /// <summary>The convolutional trunk's stages (<c>layer1</c>...), for freezing or inspection.</summary>
    public IReadOnlyList<Sequential> Stages => layers;

    /// <summary>The final fully connected layer.</summary>
    public Linear Classifier => fc;

    /// <summary>The stem's convolution and BN.</summary>
    public (Conv2d Conv, BatchNorm2d Norm, MaxPool2d? Pool) Stem => (conv1, bn1, maxpool);
}

/// <summary>One block, basic or bottleneck, with its shortcut (paper Fig. 2 and Fig. 5).</summary>
public sealed class ResidualBlock : Module<Tensor, Tensor>
{
    private readonly Conv2d conv1, conv2;
    private readonly Conv2d? conv3;
    private readonly BatchNorm2d bn1, bn2;
    private readonly BatchNorm2d? bn3;
    private readonly Sequential? downsample;
    private readonly PaddingStyle _padding;

    /// <summary>What this block was built from.</summary>
    public BlockPlan Plan { get; }

    internal BatchNorm2d LastBatchNorm => bn3 ?? bn2;

    internal ScalarType? ComputeType { get; set; }

    /// <summary>Builds a block of the spec's kind from its plan.</summary>
    public ResidualBlock(ResNetSpec spec, BlockPlan plan) : base(spec.Block == BlockKind.Bottleneck ? "Bottleneck" : "BasicBlock")
    {
        Plan = plan;
        _padding = spec.Padding;
        var c = plan.Convs;
        conv1 = ResNetModel.ConvOf(_padding, c[0]);
        bn1 = BatchNorm2d(c[0].OutChannels);
        conv2 = ResNetModel.ConvOf(_padding, c[1]);
        bn2 = BatchNorm2d(c[1].OutChannels);
        if (c.Count == 3)
        {
            conv3 = ResNetModel.ConvOf(_padding, c[2]);
            bn3 = BatchNorm2d(c[2].OutChannels);
        }
        register_module("conv1", conv1);
        register_module("bn1", bn1);
        register_module("conv2", conv2);
        register_module("bn2", bn2);
        if (conv3 is not null) register_module("conv3", conv3);
        if (bn3 is not null) register_module("bn3", bn3);
        if (plan.Downsample is ConvPlan d)
        {
            downsample = Sequential(ResNetModel.ConvOf(_padding, d), BatchNorm2d(d.OutChannels));
            register_module("downsample", downsample);
        }
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        var c = Plan.Convs;
        var t = ComputeType;
        var y = HeldScalars.Normalize(bn1, ResNetModel.Convolve(conv1, _padding, c[0], x, t)).relu_();
        y = HeldScalars.Normalize(bn2, ResNetModel.Convolve(conv2, _padding, c[1], y, t));
        if (conv3 is not null && bn3 is not null)
            y = HeldScalars.Normalize(bn3, ResNetModel.Convolve(conv3, _padding, c[2], y.relu_(), t));
        if (y.dtype != x.dtype) x = x.to(y.dtype);
        switch (Plan.Shortcut)
        {
            case ShortcutKind.Identity: y = y.add_(x, HeldScalars.One); break;
            case ShortcutKind.Projection when t is not null:
                y = y.add_(HeldScalars.Normalize((BatchNorm2d)downsample![1], ResNetModel.Convolve((Conv2d)downsample[0], _padding, Plan.Downsample!, x, t)), HeldScalars.One);
                break;
            case ShortcutKind.Projection: y = y.add_(HeldScalars.Normalize((BatchNorm2d)downsample![1], ((Conv2d)downsample[0]).forward(x)), HeldScalars.One); break;
            case ShortcutKind.ZeroPad: y = y.add_(ZeroPadShortcut(x), HeldScalars.One); break;
        }
        // In place (as torchvision's ReLU(inplace=True)): the BN outputs and the sum are not needed by backward,
        // so no second activation-sized tensor per ReLU stays alive until the forward's dispose scope ends.
        return y.relu_();
    }

    // Option A (paper section 3.3): identity with stride-2 subsampling, and the extra channels are zeros.
    // A blocked tensor has opaque storage (no strides, so no subsampling view), so this shortcut takes it through NCHW and back.
    // A block follows its input's layout (the model chooses it), so stages also run on NCHW input given to them directly.
    private Tensor ZeroPadShortcut(Tensor x)
    {
        if (BlockedLayout.IsBlocked(x))
            return BlockedLayout.ToBlocked(ZeroPadShortcutDense(BlockedLayout.ToDense(x)));
        return ZeroPadShortcutDense(x);
    }

    private Tensor ZeroPadShortcutDense(Tensor x)
    {
        if (Plan.Stride == 2)
            x = x[TensorIndex.Colon, TensorIndex.Colon, TensorIndex.Slice(null, null, 2), TensorIndex.Slice(null, null, 2)];
        long extra = Plan.OutChannels - Plan.InChannels;
        return extra == 0 ? x : functional.pad(x, [0, 0, 0, 0, 0, extra]);
    }
}
