using ResNet.Trainer.Data;
using static TorchSharp.torch;

namespace ResNet.Trainer.Onnx;

/// <summary>A pretrained network ready for transfer learning: RGB input on the trainer's 0..1 scale.</summary>
/// <param name="Model">The network, with a freshly initialised classifier for the requested classes.</param>
/// <param name="Normalization">The fixed preprocessing its weights expect, in the trainer's terms (0..1 pixels).</param>
/// <param name="Weights">The catalog entry it came from (its resize and crop are <see cref="Pretrained.PretrainedWeights.Transform"/>), when it came from one.</param>
public sealed record PretrainedNetwork(Models.ResNetModel Model, Normalization Normalization, Pretrained.PretrainedWeights? Weights = null)
{
    /// <summary>The side of the square input its weights were evaluated at: the catalog's crop, else the size of its per-pixel mean image.</summary>
    public int ImageSize => Weights?.Transform?.CropSize ?? Normalization.Height;
}

/// <summary>
/// The ImageNet-trained ResNet18 trunk of NuGet <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>, turned into a member
/// of the family that trains like any other: its BGR input order is folded into the first convolution (the input
/// channels of <c>conv1</c> are permuted, which is exact), and its 0..255 mean-image preprocessing becomes the trainer's
/// per-pixel normalization on 0..1 pixels (mean/255, std 1/255), which computes the same numbers.
/// </summary>
public static class PretrainedResNet18
{
    /// <summary>Loads the trunk from <paramref name="modelsDirectory"/> (<c>ResNet18Onnx/ResNet18.onnx</c>, <c>ResNetPrepOnnx/ResNetPreprocess.onnx</c>).</summary>
    /// <exception cref="FileNotFoundException">A model file is missing; the message names the NuGet package that provides it.</exception>
    public static PretrainedNetwork Load(string modelsDirectory, int numClasses, long? seed = null)
    {
        string trunk = Path.Combine(modelsDirectory, "ResNet18Onnx", "ResNet18.onnx");
        string prep = Path.Combine(modelsDirectory, "ResNetPrepOnnx", "ResNetPreprocess.onnx");
        foreach (var f in new[] { trunk, prep })
            if (!File.Exists(f))
                throw new FileNotFoundException(
                    $"Pretrained ResNet18 file '{f}' was not found. Reference NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 " +
                    "(it copies DnnImageModels/ into the build output), or pass the folder that holds ResNet18Onnx/ and ResNetPrepOnnx/.", f);
        var imported = OnnxImporter.ImportDnnImageFeaturizer(trunk, prep, numClasses, seed);
        var model = imported.Model;
        var n = imported.Info.Normalization;
        int c = model.Spec.InputChannels, h = imported.Info.Height, w = imported.Info.Width;
        if (c != 3) throw new InvalidDataException($"The pretrained trunk has {c} input channels; expected 3.");

        bool bgr = n.NetworkOrder == ChannelOrder.Bgr;
        if (bgr)
        {
            using var _ = no_grad();
            var conv1 = model.Stem.Conv.weight!;
            using var permuted = conv1.index_select(1, tensor(new long[] { 2, 1, 0 }));
            conv1.copy_(permuted);
        }
        float scale = n.Range == PixelRange.ZeroTo255 ? 255f : 1f;
        // The file's statistics are per network channel (BGR when bgr); the trainer sees RGB planes.
        int Src(int rgbChannel) => bgr ? 2 - rgbChannel : rgbChannel;
        float[] std = Enumerable.Range(0, c).Select(ch => n.Std[Src(ch)] / scale).ToArray();
        Normalization trainer;
        if (n.MeanImage is { } meanImage)
        {
            int plane = h * w;
            var mean = new float[c * plane];
            for (int ch = 0; ch < c; ch++)
                for (int i = 0; i < plane; i++)
                    mean[ch * plane + i] = meanImage[Src(ch) * plane + i] / scale;
            trainer = new Normalization(NormalizationKind.PerPixel, c, h, w, mean, std);
        }
        else
        {
            trainer = new Normalization(NormalizationKind.PerChannel, c, h, w, Enumerable.Range(0, c).Select(ch => n.Mean[Src(ch)] / scale).ToArray(), std);
        }
        return new PretrainedNetwork(model, trainer);
    }
}
