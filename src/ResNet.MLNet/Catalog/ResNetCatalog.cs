using Microsoft.ML;
using Microsoft.ML.Runtime;
using ResNet.MLNet.Transforms;
using ResNet.Trainer.Pretrained;

namespace ResNet.MLNet;

/// <summary>
/// ResNet estimators on ML.NET's catalogs: <c>mlContext.Transforms.ResNetClassifier(...)</c>,
/// <c>mlContext.MulticlassClassification.Trainers.ResNet(...)</c>, <c>mlContext.Transforms.ResNetFeaturizer(...)</c>.
/// Scoring a saved or exported model (<c>ApplyResNet</c>) is in <see cref="ResNetScoringCatalog"/>, which needs no TorchSharp.
/// </summary>
public static class ResNetCatalog
{
    /// <summary>
    /// Trains a deep residual network on an image column and a key label column; scores with ONNX Runtime.
    /// Outputs <c>Score</c> (one probability per class) and <c>PredictedLabel</c> (a key with the label's class names).
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="labelColumnName">Key-typed label column (from <c>MapValueToKey</c>).</param>
    /// <param name="imageColumnName">Image column: an image (<c>LoadImages</c>), encoded bytes (<c>LoadRawImageBytes</c>) or a path.</param>
    /// <param name="architecture">Architecture name: <c>resnet20</c> (default), <c>resnet56</c>, <c>resnet18</c>, <c>plain-20</c>, ...</param>
    /// <param name="epochs">Passes over the training data; null takes the recipe's.</param>
    public static ResNetClassifierEstimator ResNetClassifier(this TransformsCatalog catalog,
        string labelColumnName = "Label", string imageColumnName = "Image", string architecture = "resnet20", int? epochs = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return ResNetClassifier(catalog, ShortOptions(labelColumnName, imageColumnName, architecture, epochs));
    }

    /// <summary>Trains a deep residual network with every option spelled out; see <see cref="ResNetClassifierEstimator.Options"/>.</summary>
    public static ResNetClassifierEstimator ResNetClassifier(this TransformsCatalog catalog, ResNetClassifierEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ResNetClassifierEstimator(ResNetScoringCatalog.EnvironmentOf(catalog), options);
    }

    /// <summary>The ResNet classifier under ML.NET's usual place for multiclass trainers; same as <c>Transforms.ResNetClassifier</c>.</summary>
    public static ResNetClassifierEstimator ResNet(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = "Label", string imageColumnName = "Image", string architecture = "resnet20", int? epochs = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return ResNet(catalog, ShortOptions(labelColumnName, imageColumnName, architecture, epochs));
    }

    /// <summary>The ResNet classifier with every option; see <see cref="ResNetClassifierEstimator.Options"/>.</summary>
    public static ResNetClassifierEstimator ResNet(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, ResNetClassifierEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ResNetClassifierEstimator(ResNetScoringCatalog.EnvironmentOf(catalog), options);
    }

    /// <summary>
    /// Adds a column with a ResNet's globally pooled features (a known-size float vector), for any downstream trainer.
    /// With no <paramref name="modelPath"/>, the ImageNet-trained ResNet18 trunk of NuGet <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c>
    /// is used (512 features, same values as ML.NET's <c>DnnFeaturizeImage</c>); reference that package.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="outputColumnName">The features column.</param>
    /// <param name="imageColumnName">Image column: an image, encoded bytes or a path.</param>
    /// <param name="modelPath">An ONNX model exported by this library (with its features output); null for a pretrained network.</param>
    /// <param name="imageFolder">Folder that relative paths are resolved against, for a path column.</param>
    /// <param name="batchSize">Images per ONNX Runtime call.</param>
    /// <param name="pretrained">
    /// With no <paramref name="modelPath"/>: the pretrained catalog entry to featurize with, or its name (<c>"resnet50"</c>,
    /// <c>ResNetPretrained.ResNet18</c>; fetched on first use and cached). Its resize and centre crop are applied to the original
    /// images, so the image column must be paths or encoded bytes. Default: the CNTK ResNet18 (<c>cntk-resnet18</c>).
    /// </param>
    /// <exception cref="ArgumentException">Both a model path and a pretrained network were given.</exception>
    public static ResNetFeaturizerEstimator ResNetFeaturizer(this TransformsCatalog catalog, string outputColumnName = "Features",
        string imageColumnName = "Image", string? modelPath = null, string? imageFolder = null, int batchSize = 32,
        PretrainedWeights? pretrained = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        byte[] onnx;
        string source;
        if (modelPath is not null && pretrained is not null)
            throw new ArgumentException($"Both modelPath ('{modelPath}') and pretrained ('{pretrained.Name}') were given; pass one of them.", nameof(pretrained));
        if (modelPath is null)
        {
            var entry = pretrained ?? ResNetPretrained.CntkResNet18;
            onnx = ResNetFeaturizerEstimator.PretrainedOnnx(entry);
            source = entry.Format == WeightsFormat.DnnImageFeaturizerOnnx ? "pretrained ResNet18 (DnnImageFeaturizer)" : $"pretrained {entry.Name}";
        }
        else
        {
            if (!File.Exists(modelPath))
                throw new FileNotFoundException($"ONNX model '{modelPath}' does not exist. Export one with `resnet export`.", modelPath);
            onnx = File.ReadAllBytes(modelPath);
            source = $"ONNX model '{modelPath}'";
        }
        return new ResNetFeaturizerEstimator(ResNetScoringCatalog.EnvironmentOf(catalog), onnx, source, outputColumnName, imageColumnName, imageFolder, batchSize);
    }

    private static ResNetClassifierEstimator.Options ShortOptions(string labelColumnName, string imageColumnName, string architecture, int? epochs) => new()
    {
        LabelColumnName = labelColumnName,
        ImageColumnName = imageColumnName,
        Architecture = architecture,
        Epochs = epochs,
    };
}
