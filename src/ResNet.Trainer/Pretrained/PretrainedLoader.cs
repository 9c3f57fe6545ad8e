using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using static TorchSharp.torch;

namespace ResNet.Trainer.Pretrained;

/// <summary>Builds a catalog entry's network and loads its weights, fetching the file on first use.</summary>
public static class PretrainedLoader
{
    /// <summary>Loads the entry named <paramref name="name"/> (<c>resnet50</c>, <c>resnet50:IMAGENET1K_V1</c>, <c>cntk-resnet18</c>; see <see cref="ResNetPretrained.Parse"/>).</summary>
    /// <inheritdoc cref="Load(PretrainedWeights, int?, long?, WeightsCache?, IProgress{DownloadProgress}?, string?)"/>
    public static PretrainedNetwork Load(string name, int? numClasses = null, long? seed = null, WeightsCache? cache = null,
        IProgress<DownloadProgress>? progress = null, string? dnnModelsDirectory = null) =>
        Load(ResNetPretrained.Parse(name), numClasses, seed, cache, progress, dnnModelsDirectory);

    /// <summary>
    /// Builds <paramref name="weights"/>' architecture (torchvision's keys, stride on the 3x3 of bottlenecks as torchvision
    /// places it) and loads its pretrained weights. With <paramref name="numClasses"/> the ImageNet classifier is replaced by
    /// a freshly initialised one for that many classes (fine-tuning); without it the 1000-class head is kept.
    /// </summary>
    /// <param name="weights">The catalog entry.</param>
    /// <param name="numClasses">Classes of the new head; null keeps ImageNet's 1000-class head.</param>
    /// <param name="seed">Seed of the new head's initial weights.</param>
    /// <param name="cache">Where the file is kept and fetched from; <see cref="WeightsCache.Default"/> when null.</param>
    /// <param name="progress">Receives download progress (one report per MiB) when the file is fetched.</param>
    /// <param name="dnnModelsDirectory">For <see cref="WeightsFormat.DnnImageFeaturizerOnnx"/>: the folder holding <c>ResNet18Onnx/</c>
    /// and <c>ResNetPrepOnnx/</c>; default <c>DnnImageModels</c> beside the application.</param>
    /// <returns>The network, with the normalization its weights expect on 0..1 RGB pixels, and the entry.</returns>
    /// <exception cref="PretrainedDownloadException">The file is not cached and could not be fetched or verified.</exception>
    /// <exception cref="WeightsMismatchException">The file does not fit the architecture.</exception>
    public static PretrainedNetwork Load(PretrainedWeights weights, int? numClasses = null, long? seed = null, WeightsCache? cache = null,
        IProgress<DownloadProgress>? progress = null, string? dnnModelsDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        if (numClasses is < 1)
            throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "A classifier needs at least one class; pass null to keep the ImageNet head.");

        if (weights.Format == WeightsFormat.DnnImageFeaturizerOnnx)
        {
            var cntk = PretrainedResNet18.Load(dnnModelsDirectory ?? Path.Combine(AppContext.BaseDirectory, "DnnImageModels"), numClasses ?? 1000, seed);
            return cntk with { Weights = weights };
        }

        var transform = weights.Transform
            ?? throw new InvalidOperationException($"Catalog entry '{weights.Name}' has no preprocessing; a torchvision entry needs its resize and crop sizes.");
        string file = (cache ?? WeightsCache.Default).Ensure(weights, progress);
        var spec = ResNetSpec.Parse(weights.Architecture) with { NumClasses = numClasses ?? 1000 };
        var model = new ResNetModel(spec, seed);
        try
        {
            if (numClasses is null)
            {
                ResNetWeights.Load(model, file);
            }
            else
            {
                // The new head keeps its fresh initialisation even when it happens to have ImageNet's shape.
                using var freshWeight = model.Classifier.weight!.detach().clone();
                using var freshBias = model.Classifier.bias!.detach().clone();
                ResNetWeights.LoadBackbone(model, file);
                using var _ = no_grad();
                model.Classifier.weight!.copy_(freshWeight);
                model.Classifier.bias!.copy_(freshBias);
            }
        }
        catch
        {
            model.Dispose();
            throw;
        }
        var normalization = new Normalization(NormalizationKind.PerChannel, 3, 0, 0, [.. transform.Mean], [.. transform.Std]);
        return new PretrainedNetwork(model, normalization, weights);
    }
}
