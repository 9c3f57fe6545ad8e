using Microsoft.ML;
using Microsoft.ML.Runtime;
using ResNet.MLNet.Transforms;

namespace ResNet.MLNet;

/// <summary>
/// Scoring on ML.NET's transforms catalog: <c>mlContext.Transforms.ApplyResNet(...)</c> scores an exported ResNet ONNX
/// model. This is the part of the catalog a deployed app needs; it does not load TorchSharp.
/// </summary>
public static class ResNetScoringCatalog
{
    /// <summary>
    /// Scores an image column with a ResNet ONNX model exported by the CLI, a ResNet estimator or another app
    /// (an image classifier with input [N, C, H, W]). Outputs <c>Score</c> and <c>PredictedLabel</c>.
    /// </summary>
    /// <param name="catalog">The transforms catalog.</param>
    /// <param name="modelPath">The ONNX file.</param>
    /// <param name="imageColumnName">Image column: an image, encoded bytes or a path.</param>
    /// <param name="imageFolder">Folder that relative paths are resolved against, for a path column.</param>
    /// <param name="batchSize">Images per ONNX Runtime call.</param>
    /// <param name="threads">ONNX Runtime intra-op threads; 0 leaves ONNX Runtime's default.</param>
    public static ApplyResNetEstimator ApplyResNet(this TransformsCatalog catalog, string modelPath, string imageColumnName = "Image",
        string? imageFolder = null, int batchSize = 32, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new ApplyResNetEstimator(MLEnvironment.Of(EnvironmentOf(catalog)), modelPath, imageColumnName, imageFolder, "Score", "PredictedLabel", batchSize, threads);
    }

    // ML.NET's catalogs hold their environment behind an internal interface (IInternalCatalog.Environment);
    // third-party catalog extensions have no public route to it, and the estimators need it to log to mlContext.Log.
    internal static IHostEnvironment EnvironmentOf(object catalog)
    {
        const System.Reflection.BindingFlags flags = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public;
        var prop = catalog.GetType().GetProperties(flags).FirstOrDefault(p => p.Name.EndsWith("Environment", StringComparison.Ordinal));
        return prop?.GetValue(catalog) as IHostEnvironment
            ?? throw new InvalidOperationException(
                "Could not find the ML.NET environment behind this catalog (a different ML.NET version?); create the estimator directly: new ResNetClassifierEstimator(mlContext, options).");
    }
}
