namespace ResNet.Trainer.Models;

/// <summary>One convolution (always followed by its batch normalization) as the builder will make it.</summary>
/// <param name="Key">The convolution's state_dict prefix, e.g. <c>layer2.0.conv1</c> or <c>layer2.0.downsample.0</c>.</param>
/// <param name="NormKey">Its batch normalization's prefix, e.g. <c>layer2.0.bn1</c>.</param>
/// <param name="InChannels">Channels in.</param>
/// <param name="OutChannels">Channels out.</param>
/// <param name="Kernel">Square kernel size (7, 3 or 1).</param>
/// <param name="Stride">1, or 2 where the network downsamples.</param>
public sealed record ConvPlan(string Key, string NormKey, int InChannels, int OutChannels, int Kernel, int Stride);

/// <summary>One residual block as the builder will make it.</summary>
/// <param name="Stage">1-based stage index (<c>layer1</c>...).</param>
/// <param name="Index">0-based block index in the stage.</param>
/// <param name="InChannels">Channels entering the block.</param>
/// <param name="Width">Channels of the block's 3x3 convolution.</param>
/// <param name="OutChannels">Channels leaving the block.</param>
/// <param name="Stride">1, or 2 for the first block of stages after the first.</param>
/// <param name="Shortcut">What the block adds to its residual function.</param>
public sealed record BlockPlan(int Stage, int Index, int InChannels, int Width, int OutChannels, int Stride, ShortcutKind Shortcut)
{
    /// <summary>The torchvision-style module path, e.g. <c>layer2.0</c>.</summary>
    public string Path => $"layer{Stage}.{Index}";

    /// <summary>The residual function's convolutions in order (two for basic blocks, three for bottlenecks), strides placed.</summary>
    public IReadOnlyList<ConvPlan> Convs { get; init; } = [];

    /// <summary>The projection shortcut's 1x1 convolution (<c>downsample.0</c>), or null when the shortcut has none.</summary>
    public ConvPlan? Downsample { get; init; }
}

/// <summary>The shortcut a block ends up with once its spec and shapes are known.</summary>
public enum ShortcutKind
{
    /// <summary>Plain network: nothing is added.</summary>
    None,
    /// <summary>y = F(x) + x.</summary>
    Identity,
    /// <summary>Option A where the shape changes: subsample and zero-pad channels.</summary>
    ZeroPad,
    /// <summary>Options B/C: 1x1 convolution + BN (<c>downsample.0</c>, <c>downsample.1</c>).</summary>
    Projection,
}

/// <summary>Turns a <see cref="ResNetSpec"/> into the list of blocks; the one place where stage shapes are decided.</summary>
public static class ResNetPlan
{
    /// <summary>The blocks of every stage, in order.</summary>
    public static IReadOnlyList<BlockPlan> Blocks(ResNetSpec spec)
    {
        Validate(spec);
        var blocks = new List<BlockPlan>();
        int inChannels = spec.StemWidth;
        for (int s = 0; s < spec.StageDepths.Count; s++)
        {
            int width = spec.StageWidths[s];
            int outChannels = width * spec.Expansion;
            for (int b = 0; b < spec.StageDepths[s]; b++)
            {
                int stride = (b == 0 && s > 0) ? 2 : 1;
                bool shapeChanges = stride != 1 || inChannels != outChannels;
                ShortcutKind shortcut = !spec.Residual ? ShortcutKind.None
                    : spec.Shortcut == ShortcutOption.C ? ShortcutKind.Projection
                    : !shapeChanges ? ShortcutKind.Identity
                    : spec.Shortcut == ShortcutOption.B ? ShortcutKind.Projection
                    : ShortcutKind.ZeroPad;
                var block = new BlockPlan(s + 1, b, inChannels, width, outChannels, stride, shortcut);
                blocks.Add(block with
                {
                    Convs = Convs(spec, block),
                    Downsample = shortcut == ShortcutKind.Projection
                        ? new ConvPlan($"{block.Path}.downsample.0", $"{block.Path}.downsample.1", inChannels, outChannels, 1, stride) : null,
                });
                inChannels = outChannels;
            }
        }
        return blocks;
    }

    /// <summary>The stem's convolution: 7x7/2 for the ImageNet family (paper Table 1), 3x3/1 for the CIFAR family (section 4.2), 3x3/2 for <see cref="StemKind.CifarStrided"/>.</summary>
    public static ConvPlan Stem(ResNetSpec spec) => spec.Stem switch
    {
        StemKind.ImageNet => new ConvPlan("conv1", "bn1", spec.InputChannels, spec.StemWidth, 7, 2),
        StemKind.CifarStrided => new ConvPlan("conv1", "bn1", spec.InputChannels, spec.StemWidth, 3, 2),
        _ => new ConvPlan("conv1", "bn1", spec.InputChannels, spec.StemWidth, 3, 1),
    };

    // A block's residual function (paper Fig. 5). A downsampling bottleneck strides its first 1x1 in the paper and its
    // 3x3 in v1.5 (torchvision's weights); a basic block strides its first 3x3.
    private static ConvPlan[] Convs(ResNetSpec spec, BlockPlan b)
    {
        string p = b.Path;
        if (spec.Block == BlockKind.Basic)
            return [new($"{p}.conv1", $"{p}.bn1", b.InChannels, b.Width, 3, b.Stride), new($"{p}.conv2", $"{p}.bn2", b.Width, b.OutChannels, 3, 1)];
        bool paper = spec.StridePlacement == BottleneckStride.Paper;
        return
        [
            new($"{p}.conv1", $"{p}.bn1", b.InChannels, b.Width, 1, paper ? b.Stride : 1),
            new($"{p}.conv2", $"{p}.bn2", b.Width, b.Width, 3, paper ? 1 : b.Stride),
            new($"{p}.conv3", $"{p}.bn3", b.Width, b.OutChannels, 1, 1),
        ];
    }

    /// <summary>
    /// The padding a convolution applies itself: k/2 on every side, except the strided windows of CNTK-style padding,
    /// which are padded before the convolution (see <see cref="Padding"/>).
    /// </summary>
    public static int BuiltInPadding(PaddingStyle style, ConvPlan conv) =>
        style == PaddingStyle.Symmetric || conv.Stride == 1 ? conv.Kernel / 2 : 0;

    /// <summary>
    /// The smallest input size the network takes: its total downsampling (stem, max-pool and every stride-2 block), so that
    /// the last stage still sees at least one pixel per window: 32 for the ImageNet family, 4 for the CIFAR family.
    /// </summary>
    public static int MinimumImageSize(ResNetSpec spec)
    {
        int factor = Stem(spec).Stride * (spec.Stem == StemKind.ImageNet ? 2 : 1); // the ImageNet stem's 3x3/2 max-pool
        foreach (var b in Blocks(spec)) factor *= b.Stride;
        return factor;
    }

    /// <summary>
    /// Height and width of the last stage's output (what global average pooling reduces) for an input of
    /// <paramref name="height"/> x <paramref name="width"/>: each strided window maps n pixels to (n + padding - kernel) / stride + 1
    /// (<see cref="WindowOutput(PaddingStyle, int, int, int)"/>).
    /// </summary>
    public static (int Height, int Width) OutputSize(ResNetSpec spec, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var windows = new List<(int Kernel, int Stride)> { (Stem(spec).Kernel, Stem(spec).Stride) };
        if (spec.Stem == StemKind.ImageNet) windows.Add((3, 2)); // the stem's max-pool
        foreach (var b in Blocks(spec))
            windows.AddRange(b.Convs.Select(c => (c.Kernel, c.Stride)));
        int Size(int n)
        {
            foreach (var (k, s) in windows) n = WindowOutput(spec.Padding, k, s, n);
            return n;
        }
        return (Size(height), Size(width));
    }

    /// <summary>Checks that a spec describes a buildable network.</summary>
    /// <exception cref="ArgumentException">A field is out of range; the message names it.</exception>
    public static void Validate(ResNetSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.StageDepths.Count == 0 || spec.StageDepths.Count != spec.StageWidths.Count)
            throw new ArgumentException($"Spec '{spec.Name}': StageDepths ({spec.StageDepths.Count}) and StageWidths ({spec.StageWidths.Count}) must be non-empty and of equal length.", nameof(spec));
        if (spec.StageDepths.Any(d => d < 1))
            throw new ArgumentException($"Spec '{spec.Name}': every stage needs at least one block (StageDepths = [{string.Join(", ", spec.StageDepths)}]).", nameof(spec));
        if (spec.StageWidths.Any(w => w < 1) || spec.StemWidth < 1)
            throw new ArgumentException($"Spec '{spec.Name}': widths must be positive.", nameof(spec));
        if (spec.InputChannels < 1)
            throw new ArgumentException($"Spec '{spec.Name}': InputChannels must be at least 1 (1 = grayscale, 3 = RGB), got {spec.InputChannels}.", nameof(spec));
        if (spec.NumClasses < 1)
            throw new ArgumentException($"Spec '{spec.Name}': NumClasses must be at least 1, got {spec.NumClasses}.", nameof(spec));
    }

    /// <summary>
    /// Padding before (top/left) and after (bottom/right) of a convolution or pooling window of size <paramref name="kernel"/>
    /// over <paramref name="inputSize"/> pixels (one axis).
    /// </summary>
    /// <remarks>
    /// Symmetric: k/2 on each side. CNTK's automatic padding of strided windows gives ceil(n / stride) outputs and puts the
    /// odd pixel of padding on top/left: its ResNet18 export pads a 224-pixel input [3,3,2,2] (7x7/2) and [1,1,0,0] (3x3/2).
    /// The total therefore depends on the input: k - s where the stride divides n, more where it does not (3x3/2 over 17
    /// pixels: 1 before, 1 after), so that a block's main path and its unpadded 1x1/2 shortcut both give ceil(n / 2).
    /// </remarks>
    public static (int Lo, int Hi) Padding(PaddingStyle style, int kernel, int stride, int inputSize)
    {
        if (style == PaddingStyle.Symmetric || stride == 1) return (kernel / 2, kernel / 2);
        int outputs = (inputSize + stride - 1) / stride;
        int total = Math.Max((outputs - 1) * stride + kernel - inputSize, 0);
        return (total - total / 2, total / 2);
    }

    /// <summary>Height and width out of a window of size <paramref name="kernel"/> over an input of <paramref name="size"/>.</summary>
    public static (int H, int W) WindowOutput(PaddingStyle style, int kernel, int stride, (int H, int W) size) =>
        (WindowOutput(style, kernel, stride, size.H), WindowOutput(style, kernel, stride, size.W));

    /// <summary>Pixels (one axis) out of a window of size <paramref name="kernel"/> over <paramref name="inputSize"/> pixels.</summary>
    public static int WindowOutput(PaddingStyle style, int kernel, int stride, int inputSize)
    {
        var (lo, hi) = Padding(style, kernel, stride, inputSize);
        return (inputSize + lo + hi - kernel) / stride + 1;
    }
}
