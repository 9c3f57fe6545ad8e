using Microsoft.ML;
using Microsoft.ML.Runtime;
using ResNet.Trainer.Onnx;

namespace ResNet.MLNet.Transforms;

/// <summary>
/// Featurizes images with a ResNet: the globally pooled features of a model exported by this library, or of the
/// ImageNet-trained ResNet18 trunk that NuGet <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> ships (imported into the
/// family and re-exported, so both run through the same batched scorer).
/// </summary>
public sealed class ResNetFeaturizerEstimator : IEstimator<ResNetFeaturizerTransformer>
{
    /// <summary>Where the DnnImageFeaturizer.ResNet18 package puts its models in a build's output folder.</summary>
    public static string DefaultDnnModelsDirectory => Path.Combine(AppContext.BaseDirectory, "DnnImageModels");

    private readonly MLEnvironment _env;
    private readonly byte[] _onnx;
    private readonly string _source, _imageColumn, _featuresColumn;
    private readonly string? _imageFolder;
    private readonly int _batchSize, _featureCount;

    internal ResNetFeaturizerEstimator(IHostEnvironment env, byte[] onnx, string source, string featuresColumn, string imageColumn, string? imageFolder, int batchSize)
    {
        _env = MLEnvironment.Of(env);
        _onnx = onnx;
        _source = source;
        _featuresColumn = featuresColumn;
        _imageColumn = imageColumn;
        _imageFolder = imageFolder;
        _batchSize = batchSize;
        using var probe = new OnnxScorer(onnx, null, source);
        if (!probe.HasFeatures)
            throw new OnnxModelFormatException(
                $"{source} has no '{OnnxExporter.FeaturesOutput}' output. Export the model with OnnxExportOptions.IncludeFeatures = true (the default of `resnet export`).");
        _featureCount = probe.FeatureCount;
    }

    /// <summary>
    /// The ResNet18 trunk of <c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> (ImageNet-trained, CNTK layout, BGR mean-image
    /// preprocessing), imported into the family and exported with its 512 pooled features.
    /// </summary>
    /// <param name="modelsDirectory">Folder holding <c>ResNet18Onnx/ResNet18.onnx</c> and <c>ResNetPrepOnnx/ResNetPreprocess.onnx</c>;
    /// default <see cref="DefaultDnnModelsDirectory"/> (reference the NuGet package to get them there).</param>
    /// <exception cref="FileNotFoundException">The model files are not there; the message says which package to reference.</exception>
    public static byte[] PretrainedResNet18Onnx(string? modelsDirectory = null)
    {
        string dir = modelsDirectory ?? DefaultDnnModelsDirectory;
        string trunk = Path.Combine(dir, "ResNet18Onnx", "ResNet18.onnx");
        string prep = Path.Combine(dir, "ResNetPrepOnnx", "ResNetPreprocess.onnx");
        foreach (var f in new[] { trunk, prep })
            if (!File.Exists(f))
                throw new FileNotFoundException(
                    $"Pretrained ResNet18 file '{f}' was not found. Add a reference to NuGet package Microsoft.ML.DnnImageFeaturizer.ResNet18 " +
                    "(it copies DnnImageModels/ into the build output), or pass the folder that holds ResNet18Onnx/ and ResNetPrepOnnx/.", f);
        var imported = OnnxImporter.ImportDnnImageFeaturizer(trunk, prep);
        using var model = imported.Model;
        var asImported = imported.ExportOptions;
        return OnnxExporter.Export(model, new OnnxExportOptions
        {
            ClassNames = asImported.ClassNames,
            ImageHeight = asImported.ImageHeight,
            ImageWidth = asImported.ImageWidth,
            Normalization = asImported.Normalization,
            IncludeFeatures = true,
        });
    }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        if (!SchemaShapes.Has(inputSchema, _imageColumn, out _))
            throw new SchemaMismatchException($"Image column '{_imageColumn}' was not found in the input. Add mlContext.Transforms.LoadImages(...) or pass the right imageColumnName.");
        var empty = new DataViewSchema.Builder().ToSchema();
        var added = SchemaShapes.FromSchema(ScoredDataView.FeaturesSchema(empty, _featuresColumn, _featureCount));
        return new SchemaShape(inputSchema.Where(c => c.Name != _featuresColumn).Concat(added));
    }

    /// <inheritdoc />
    public ResNetFeaturizerTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var scorer = _env.OpenScorer(_onnx, _source, _batchSize);
        try
        {
            BatchScorer featurize = (pixels, count) => scorer.Score(pixels, count, features: true).Features!;
            return new ResNetFeaturizerTransformer(_env, _onnx, scorer, featurize, input.Schema, input,
                _imageColumn, _imageFolder, _featuresColumn, _batchSize);
        }
        catch
        {
            scorer.Dispose();
            throw;
        }
    }
}
