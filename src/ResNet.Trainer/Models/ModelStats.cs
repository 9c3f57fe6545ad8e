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
        long Conv(ConvPlan c, out int outSize)
        {
            outSize = ResNetPlan.WindowOutput(spec.Padding, c.Kernel, c.Stride, size);
            return (long)c.InChannels * c.OutChannels * c.Kernel * c.Kernel * outSize * outSize;
        }
        static long ConvParams(ConvPlan c) => (long)c.InChannels * c.OutChannels * c.Kernel * c.Kernel + 2L * c.OutChannels; // weight + BN

        var stem = ResNetPlan.Stem(spec);
        long stemMacs = Conv(stem, out size);
        rows.Add(new(stem.Key, $"{stem.Kernel}x{stem.Kernel}, {stem.OutChannels}{(stem.Stride == 1 ? "" : $", stride {stem.Stride}")} + BN + ReLU",
            Shape(stem.OutChannels, size), ConvParams(stem), stemMacs));
        if (spec.Stem == StemKind.ImageNet)
        {
            size = ResNetPlan.WindowOutput(spec.Padding, 3, 2, size);
            rows.Add(new("maxpool", "3x3 max pool, stride 2", Shape(spec.StemWidth, size), 0, 0));
        }

        foreach (var b in ResNetPlan.Blocks(spec))
        {
            long macs = 0, parameters = 0;
            int inSize = size;
            foreach (var c in b.Convs)
            {
                macs += Conv(c, out size);
                parameters += ConvParams(c);
            }
            string desc = (spec.Block == BlockKind.Bottleneck ? "bottleneck " : "basic ") + string.Join(" / ", b.Convs.Select(c => $"{c.Kernel}x{c.Kernel},{c.OutChannels}"));
            if (b.Downsample is ConvPlan d)
            {
                int saved = size;
                size = inSize;
                macs += Conv(d, out _);
                size = saved;
                parameters += ConvParams(d);
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
