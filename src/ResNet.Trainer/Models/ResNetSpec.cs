namespace ResNet.Trainer.Models;

/// <summary>The residual function of one block (paper, Fig. 5).</summary>
public enum BlockKind
{
    /// <summary>Two 3x3 convolutions (ResNet-18/34 and the CIFAR family).</summary>
    Basic,
    /// <summary>1x1 reduce, 3x3, 1x1 expand (x4): ResNet-50/101/152.</summary>
    Bottleneck,
}

/// <summary>How a block's shortcut handles a change of shape (paper, section 4.1, "Identity vs. Projection Shortcuts").</summary>
public enum ShortcutOption
{
    /// <summary>Identity everywhere; zero-padded channels and stride-2 subsampling when the shape changes. No parameters.</summary>
    A,
    /// <summary>Identity, and a 1x1 projection (conv + BN) only where the shape changes.</summary>
    B,
    /// <summary>A 1x1 projection on every block.</summary>
    C,
}

/// <summary>The layers before the first stage.</summary>
public enum StemKind
{
    /// <summary>7x7/2 convolution, BN, ReLU, 3x3/2 max-pool (ImageNet models, paper Table 1).</summary>
    ImageNet,
    /// <summary>3x3 convolution, BN, ReLU (CIFAR models, paper section 4.2).</summary>
    Cifar,
    /// <summary>
    /// The CIFAR stem with a stride of 2: the stages run at half the resolution, so a net twice as wide costs the same
    /// multiply-adds with four times the parameters (<c>resnet20-w32-s2</c> against <c>resnet20</c>).
    /// </summary>
    CifarStrided,
}

/// <summary>Where a bottleneck block that downsamples puts its stride of 2.</summary>
public enum BottleneckStride
{
    /// <summary>Stride on the first 1x1 convolution, as in the paper (3.8 GFLOPs for ResNet-50).</summary>
    Paper,
    /// <summary>Stride on the 3x3 convolution ("ResNet v1.5"), which torchvision's pretrained weights use (4.09 GMACs).</summary>
    V15,
}

/// <summary>How strided convolutions are padded.</summary>
public enum PaddingStyle
{
    /// <summary>PyTorch's symmetric padding of k/2 on every side.</summary>
    Symmetric,
    /// <summary>
    /// CNTK's automatic padding of strided windows: ceil(n / s) outputs from n pixels, the larger half of the padding on the
    /// top and left. Where the stride divides the input that is k - s pixels in all (7x7/2: 3 before, 2 after; 3x3/2: 1 before,
    /// 0 after), as in the DnnImageFeaturizer ResNet18 ONNX file at 224 pixels; see <see cref="ResNetPlan.Padding"/>.
    /// </summary>
    CntkAsymmetric,
}

/// <summary>
/// Everything that defines a network of the ResNet family. One builder (<see cref="ResNetModel"/>) turns a spec
/// into modules; presets such as <see cref="ResNet50"/> are one line each.
/// </summary>
/// <param name="Name">Display name (e.g. <c>resnet50</c>).</param>
/// <param name="Block">Basic or bottleneck residual function.</param>
/// <param name="StageDepths">Number of blocks in each stage.</param>
/// <param name="StageWidths">Block width (the 3x3 convolution's channels) of each stage.</param>
/// <param name="Stem">ImageNet or CIFAR stem.</param>
/// <param name="StemWidth">Channels of the stem's convolution.</param>
/// <param name="Shortcut">Shortcut option A, B or C.</param>
/// <param name="Residual">False builds the plain counterpart (no shortcuts at all).</param>
/// <param name="InputChannels">1 for grayscale, 3 for RGB.</param>
/// <param name="NumClasses">Outputs of the final fully connected layer.</param>
/// <param name="ZeroInitResidual">Initialise the last BN of each block with zero weight, so each block starts as the identity.</param>
/// <param name="StridePlacement">Bottleneck stride placement (ignored by basic blocks).</param>
/// <param name="Padding">Padding of strided convolutions.</param>
[System.Text.Json.Serialization.JsonConverter(typeof(ResNetSpecJson.Converter))]
public sealed record ResNetSpec(
    string Name,
    BlockKind Block,
    IReadOnlyList<int> StageDepths,
    IReadOnlyList<int> StageWidths,
    StemKind Stem,
    int StemWidth,
    ShortcutOption Shortcut,
    bool Residual = true,
    int InputChannels = 3,
    int NumClasses = 1000,
    bool ZeroInitResidual = false,
    BottleneckStride StridePlacement = BottleneckStride.V15,
    PaddingStyle Padding = PaddingStyle.Symmetric)
{
    /// <summary>Output channels of a block relative to its width: 1 for basic, 4 for bottleneck blocks.</summary>
    public int Expansion => Block == BlockKind.Bottleneck ? 4 : 1;

    /// <summary>Channels of the pooled feature vector that feeds the classifier.</summary>
    public int FeatureCount => StageWidths[^1] * Expansion;

    /// <summary>Number of weighted layers, the paper's depth (convolutions on the main path plus fc).</summary>
    public int Depth => 1 + StageDepths.Sum() * (Block == BlockKind.Bottleneck ? 3 : 2) + 1;

    /// <summary>The input size the family is designed for: 224 for ImageNet models, 32 for CIFAR models.</summary>
    public int DefaultImageSize => Stem == StemKind.ImageNet ? 224 : 32;

    private static readonly int[] ImageNetWidths = [64, 128, 256, 512];
    private static readonly int[] CifarWidths = [16, 32, 64];

    /// <summary>An ImageNet-family spec (paper Table 1) with shortcut option B.</summary>
    public static ResNetSpec ImageNet(string name, BlockKind block, int[] depths, bool residual = true) =>
        new(name, block, depths, ImageNetWidths, StemKind.ImageNet, 64, ShortcutOption.B, residual);

    /// <summary>A CIFAR-family spec of depth 6n+2 (paper section 4.2), shortcut option A.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is less than 1.</exception>
    public static ResNetSpec Cifar(int n, bool residual = true, int numClasses = 10)
    {
        if (n < 1)
            throw new ArgumentOutOfRangeException(nameof(n), n, "A CIFAR ResNet has depth 6n+2 with n >= 1 (20, 32, 44, 56, 110, 1202, ...).");
        string name = (residual ? "resnet" : "plain") + (6 * n + 2);
        return new(name, BlockKind.Basic, [n, n, n], CifarWidths, StemKind.Cifar, 16, ShortcutOption.A, residual, 3, numClasses);
    }

    /// <summary>ResNet-18: basic blocks [2, 2, 2, 2].</summary>
    public static ResNetSpec ResNet18() => ImageNet("resnet18", BlockKind.Basic, [2, 2, 2, 2]);
    /// <summary>ResNet-34: basic blocks [3, 4, 6, 3].</summary>
    public static ResNetSpec ResNet34() => ImageNet("resnet34", BlockKind.Basic, [3, 4, 6, 3]);
    /// <summary>ResNet-50: bottlenecks [3, 4, 6, 3], v1.5 stride placement (torchvision's).</summary>
    public static ResNetSpec ResNet50() => ImageNet("resnet50", BlockKind.Bottleneck, [3, 4, 6, 3]);
    /// <summary>ResNet-101: bottlenecks [3, 4, 23, 3], v1.5 stride placement.</summary>
    public static ResNetSpec ResNet101() => ImageNet("resnet101", BlockKind.Bottleneck, [3, 4, 23, 3]);
    /// <summary>ResNet-152: bottlenecks [3, 8, 36, 3], v1.5 stride placement.</summary>
    public static ResNetSpec ResNet152() => ImageNet("resnet152", BlockKind.Bottleneck, [3, 8, 36, 3]);
    /// <summary>ResNet-20 for CIFAR (n = 3).</summary>
    public static ResNetSpec ResNet20() => Cifar(3);
    /// <summary>ResNet-56 for CIFAR (n = 9).</summary>
    public static ResNetSpec ResNet56() => Cifar(9);
    /// <summary>ResNet-110 for CIFAR (n = 18).</summary>
    public static ResNetSpec ResNet110() => Cifar(18);

    /// <summary>
    /// Parses a name users type: <c>resnet18</c>, <c>ResNet-56</c>, <c>plain-34</c>, <c>resnet50-paper</c>, <c>resnet8-w28</c>.
    /// See <see cref="ResNetNames"/> for the grammar.
    /// </summary>
    /// <exception cref="UnknownArchitectureException">The name is not a member of the family.</exception>
    public static ResNetSpec Parse(string name) => ResNetNames.Parse(name);
}
