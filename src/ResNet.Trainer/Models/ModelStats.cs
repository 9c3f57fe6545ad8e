namespace ResNet.Trainer.Models;

/// <summary>One row of a layer table.</summary>
/// <param name="Name">Module path (<c>conv1</c>, <c>layer2.0</c>, <c>fc</c>).</param>
/// <param name="Description">What the layer is (e.g. <c>basic 3x3,128 / 3x3,128, stride 2, projection</c>).</param>
/// <param name="OutputShape">Output shape for one image: channels x height x width.</param>
/// <param name="Parameters">Learnable parameters (weights, biases, BN scale and shift).</param>
/// <param name="Macs">Multiply-accumulates for one image (convolutions and fc, as the paper counts FLOPs).</param>
public sealed record LayerRow(string Name, string Description, string OutputShape, long Parameters, long Macs);

/// <summary>Parameter and multiply-accumulate counts computed from a spec, without building the network.</summary>
public static class ModelStats
{
    /// <summary>Total learnable parameters.</summary>
    public static long Parameters(ResNetSpec spec) => LayerTable(spec, spec.DefaultImageSize).Sum(r => r.Parameters);

    /// <summary>Multiply-accumulates per image of size <paramref name="imageSize"/> (square).</summary>
    public static long Macs(ResNetSpec spec, int imageSize) => LayerTable(spec, imageSize).Sum(r => r.Macs);

    /// <summary>The network as a table: stem, every block, pooling and classifier.</summary>
    public static IReadOnlyList<LayerRow> LayerTable(ResNetSpec spec, int imageSize)
    {
        if (imageSize < 1) throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize, "The image size must be positive.");
        var rows = new List<LayerRow>();
        int size = imageSize;
        long Conv(int cin, int cout, int k, int stride, out int outSize)
        {
            var (lo, hi) = ResNetPlan.Padding(spec.Padding, k, stride);
            outSize = (size + lo + hi - k) / stride + 1;
            return (long)cin * cout * k * k * outSize * outSize;
        }
        static long ConvParams(int cin, int cout, int k) => (long)cin * cout * k * k + 2L * cout; // weight + BN

        if (spec.Stem == StemKind.ImageNet)
        {
            long macs = Conv(spec.InputChannels, spec.StemWidth, 7, 2, out size);
            rows.Add(new("conv1", $"7x7, {spec.StemWidth}, stride 2 + BN + ReLU", Shape(spec.StemWidth, size), ConvParams(spec.InputChannels, spec.StemWidth, 7), macs));
            var (lo, hi) = ResNetPlan.Padding(spec.Padding, 3, 2);
            size = (size + lo + hi - 3) / 2 + 1;
            rows.Add(new("maxpool", "3x3 max pool, stride 2", Shape(spec.StemWidth, size), 0, 0));
        }
        else
        {
            long macs = Conv(spec.InputChannels, spec.StemWidth, 3, 1, out size);
            rows.Add(new("conv1", $"3x3, {spec.StemWidth} + BN + ReLU", Shape(spec.StemWidth, size), ConvParams(spec.InputChannels, spec.StemWidth, 3), macs));
        }

        foreach (var b in ResNetPlan.Blocks(spec))
        {
            long macs, parameters;
            string desc;
            int inSize = size;
            if (spec.Block == BlockKind.Basic)
            {
                macs = Conv(b.InChannels, b.Width, 3, b.Stride, out size);
                macs += Conv(b.Width, b.OutChannels, 3, 1, out size);
                parameters = ConvParams(b.InChannels, b.Width, 3) + ConvParams(b.Width, b.OutChannels, 3);
                desc = $"basic 3x3,{b.Width} / 3x3,{b.OutChannels}";
            }
            else
            {
                bool paper = spec.StridePlacement == BottleneckStride.Paper;
                macs = Conv(b.InChannels, b.Width, 1, paper ? b.Stride : 1, out size);
                macs += Conv(b.Width, b.Width, 3, paper ? 1 : b.Stride, out size);
                macs += Conv(b.Width, b.OutChannels, 1, 1, out size);
                parameters = ConvParams(b.InChannels, b.Width, 1) + ConvParams(b.Width, b.Width, 3) + ConvParams(b.Width, b.OutChannels, 1);
                desc = $"bottleneck 1x1,{b.Width} / 3x3,{b.Width} / 1x1,{b.OutChannels}";
            }
            if (b.Shortcut == ShortcutKind.Projection)
            {
                int saved = size;
                size = inSize;
                macs += Conv(b.InChannels, b.OutChannels, 1, b.Stride, out _);
                size = saved;
                parameters += ConvParams(b.InChannels, b.OutChannels, 1);
            }
            desc += (b.Stride == 2 ? ", stride 2" : "") + b.Shortcut switch
            {
                ShortcutKind.Projection => ", projection shortcut",
                ShortcutKind.ZeroPad => ", zero-pad shortcut",
                ShortcutKind.Identity => ", identity shortcut",
                _ => ", no shortcut",
            };
            rows.Add(new(b.Path, desc, Shape(b.OutChannels, size), parameters, macs));
        }

        rows.Add(new("avgpool", "global average pool", Shape(spec.FeatureCount, 1), 0, 0));
        rows.Add(new("fc", $"fully connected, {spec.NumClasses}", spec.NumClasses.ToString(System.Globalization.CultureInfo.InvariantCulture),
            (long)spec.FeatureCount * spec.NumClasses + spec.NumClasses, (long)spec.FeatureCount * spec.NumClasses));
        return rows;
    }

    private static string Shape(int channels, int size) => $"{channels}x{size}x{size}";
}
