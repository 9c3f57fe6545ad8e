using ResNet.Trainer.Models;
using static TorchSharp.torch;

namespace ResNet.Trainer.Tests.Onnx;

/// <summary>Models with random weights and non-trivial batch-norm statistics, as a trained model has.</summary>
internal static class OnnxTestModels
{
    public static ResNetSpec Spec(string arch, ShortcutOption? shortcut = null, int classes = 10)
    {
        var spec = ResNetSpec.Parse(arch) with { NumClasses = classes };
        return shortcut is { } s ? spec with { Shortcut = s, Name = spec.Name + "-" + s.ToString().ToLowerInvariant() } : spec;
    }

    /// <summary>
    /// Builds the model from a seed, draws random BN scales and shifts, then runs a few train-mode forwards so the
    /// running means and variances move away from 0 and 1; returns it in eval mode.
    /// </summary>
    public static Trainer.Models.ResNetModel Trained(ResNetSpec spec, long seed, int imageSize)
    {
        var model = new Trainer.Models.ResNetModel(spec, seed);
        using var scope = NewDisposeScope();
        var gen = new Generator().manual_seed(seed);
        using (no_grad())
        {
            foreach (var (name, p) in model.named_parameters())
                if (name.Contains("bn") || name.Contains("downsample.1"))
                    p.copy_(name.EndsWith("weight") ? rand(p.shape, generator: gen) * 0.8 + 0.6 : randn(p.shape, generator: gen) * 0.2);
            model.train();
            for (int i = 0; i < 3; i++)
                model.forward(rand([8, spec.InputChannels, imageSize, imageSize], generator: gen) * 2 + 0.5 * i);
        }
        model.eval();
        return model;
    }

    public static Tensor Images(int n, int channels, int size, long seed, double scale = 1.0) =>
        rand([n, channels, size, size], generator: new Generator().manual_seed(seed)) * scale;

    public static float MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        float max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    public static float[] Floats(Tensor t) => t.detach().cpu().contiguous().data<float>().ToArray();

    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "resnet-onnx-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
