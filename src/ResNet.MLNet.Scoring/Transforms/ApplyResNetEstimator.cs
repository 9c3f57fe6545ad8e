using Microsoft.ML;

namespace ResNet.MLNet.Transforms;

/// <summary>
/// Scores images with an existing ResNet ONNX model (from <c>resnet export</c>, the <c>ResNetClassifier</c> estimator or
/// another app). Fitting reads nothing from the data: it checks the schema and loads the model.
/// </summary>
public sealed class ApplyResNetEstimator : IEstimator<ResNetScoringTransformer>
{
    private readonly MLEnvironment _env;
    private readonly byte[] _onnx;
    private readonly string _source;
    private readonly string _imageColumn, _scoreColumn, _predictedLabelColumn;
    private readonly string? _imageFolder;
    private readonly int _batchSize, _threads;
    private readonly IReadOnlyList<string> _classNames;

    internal ApplyResNetEstimator(MLEnvironment env, string modelPath, string imageColumn, string? imageFolder, string scoreColumn, string predictedLabelColumn, int batchSize, int threads)
    {
        _env = env;
        _threads = threads;
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
        CreateTransformer(_env, _onnx, _source, input, _imageColumn, _imageFolder, _scoreColumn, _predictedLabelColumn, _batchSize, null, _threads);

    /// <summary>
    /// Opens <paramref name="onnx"/> with a batched ONNX Runtime scorer (on the device <paramref name="env"/>'s
    /// GpuDeviceId / FallbackToCpu choose) and wraps it as an ML.NET transformer built in <paramref name="env"/>.
    /// </summary>
    internal static ResNetScoringTransformer CreateTransformer(MLEnvironment env, byte[] onnx, string source, IDataView input, string imageColumn, string? imageFolder,
        string scoreColumn, string predictedLabelColumn, int batchSize, IReadOnlyList<string>? classNames, int threads = 0)
    {
        var scorer = env.OpenScorer(onnx, source, batchSize, classNames, threads);
        try
        {
            BatchScorer score = (pixels, count) => scorer.Score(pixels, count).Probabilities;
            return new ResNetScoringTransformer(env, onnx, scorer, score, input.Schema, input, imageColumn, imageFolder,
                scoreColumn, predictedLabelColumn, batchSize);
        }
        catch
        {
            scorer.Dispose();
            throw;
        }
    }
}
