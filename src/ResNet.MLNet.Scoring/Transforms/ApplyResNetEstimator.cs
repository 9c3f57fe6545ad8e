using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace ResNet.MLNet.Transforms;

/// <summary>
/// Scores images with an existing ResNet ONNX model (from <c>resnet export</c>, the <c>ResNetClassifier</c> estimator or
/// another app). Fitting reads nothing from the data: it checks the schema and loads the model.
/// </summary>
public sealed class ApplyResNetEstimator : IEstimator<ResNetScoringTransformer>
{
    private readonly MLContext _ml;
    private readonly byte[] _onnx;
    private readonly string _source;
    private readonly string _imageColumn, _scoreColumn, _predictedLabelColumn;
    private readonly string? _imageFolder;
    private readonly int _batchSize, _threads;
    private readonly IReadOnlyList<string> _classNames;

    internal ApplyResNetEstimator(IHostEnvironment env, string modelPath, string imageColumn, string? imageFolder, string scoreColumn, string predictedLabelColumn, int batchSize, int threads)
    {
        env.RegisterResNet();
        _threads = threads;
        _ml = new MLContext().RegisterResNet();
        if (!File.Exists(modelPath))
            throw new FileNotFoundException($"ONNX model '{modelPath}' does not exist. Export one with `resnet export` or train one with ResNetClassifier.", modelPath);
        _onnx = File.ReadAllBytes(modelPath);
        _source = $"ONNX model '{modelPath}'";
        _imageColumn = imageColumn;
        _imageFolder = imageFolder;
        _scoreColumn = scoreColumn;
        _predictedLabelColumn = predictedLabelColumn;
        _batchSize = batchSize;
        using var probe = new OnnxScorer(_onnx, null, _source); // fail now on a file that is not an image classifier
        _classNames = probe.Info.ClassNames;
    }

    /// <inheritdoc />
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        if (!SchemaShapes.Has(inputSchema, _imageColumn, out _))
            throw new SchemaMismatchException($"Image column '{_imageColumn}' was not found in the input. Add mlContext.Transforms.LoadImages(...) or pass the right imageColumnName.");
        return SchemaShapes.WithScores(inputSchema, _scoreColumn, _predictedLabelColumn, _classNames);
    }

    /// <inheritdoc />
    public ResNetScoringTransformer Fit(IDataView input) =>
        CreateTransformer(_ml, _onnx, _source, input, _imageColumn, _imageFolder, _scoreColumn, _predictedLabelColumn, _batchSize, null, _threads);

    /// <summary>The ML.NET layer's view of a model opened by the scorer.</summary>
    internal static ResNetModelInfo ModelInfoOf(OnnxScorer scorer)
    {
        var info = scorer.Info;
        return new ResNetModelInfo(info.ClassNames, info.Channels, info.Height, info.Width,
            info.Normalization.Range == PixelRange.ZeroTo255 ? 1f : 1f / 255f,
            scorer.InputName, scorer.ProbabilitiesName ?? scorer.LogitsName!, scorer.FeaturesName,
            ProbabilitiesAreLogits: scorer.ProbabilitiesName is null, Preprocessing: info.Preprocessing);
    }

    /// <summary>Opens <paramref name="onnx"/> with a batched ONNX Runtime scorer and wraps it as an ML.NET transformer.</summary>
    internal static ResNetScoringTransformer CreateTransformer(MLContext ml, byte[] onnx, string source, IDataView input, string imageColumn, string? imageFolder,
        string scoreColumn, string predictedLabelColumn, int batchSize, IReadOnlyList<string>? classNames, int threads = 0)
    {
        var scorer = new OnnxScorer(onnx, new OnnxScorerOptions { MaxBatchSize = Math.Max(1, batchSize), ClassNames = classNames, IntraOpThreads = threads }, source);
        try
        {
            var modelInfo = ModelInfoOf(scorer);
            BatchScorer score = (pixels, count) => scorer.Score(pixels, count).Probabilities;
            return new ResNetScoringTransformer(ml, onnx, modelInfo, score, scorer, input.Schema, input, imageColumn, imageFolder,
                scoreColumn, predictedLabelColumn, batchSize);
        }
        catch
        {
            scorer.Dispose();
            throw;
        }
    }
}
