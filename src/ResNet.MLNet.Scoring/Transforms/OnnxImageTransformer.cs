using Microsoft.ML;
using Microsoft.ML.Data;

namespace ResNet.MLNet.Transforms;

/// <summary>
/// What the ResNet transformers share: image preprocessing with ML.NET's own transforms, a batched fast path in
/// <see cref="Transform"/>, and a saved form made only of ML.NET transforms (plus registered custom mappings)
/// with the ONNX bytes embedded, which <c>mlContext.Model.Load</c> reads back without side files.
/// </summary>
public abstract class OnnxImageTransformer : ITransformer, IDisposable
{
    private readonly ITransformer _preprocess;
    private ITransformer? _saved;

    /// <summary>The caller's environment, where the inner ML.NET transforms are built.</summary>
    private protected MLEnvironment Env { get; }

    /// <summary>The batched scorer (owned): its graph names say which outputs the saved form reads.</summary>
    private protected OnnxScorer Scorer { get; }

    /// <summary>How the image column is read.</summary>
    private protected ImageColumnKind Kind { get; }

    /// <summary>What the model says about itself: input geometry and pixel range, class names, normalization, architecture.</summary>
    public OnnxModelInfo ModelInfo { get; }

    /// <summary>The image column read by the transformer.</summary>
    public string ImageColumnName { get; }

    /// <summary>Folder that relative image paths are resolved against.</summary>
    public string? ImageFolder { get; }

    /// <summary>
    /// The ONNX Runtime execution provider the batched path runs on (<c>CPUExecutionProvider</c> or <c>CUDAExecutionProvider</c>),
    /// as the context's <c>GpuDeviceId</c> / <c>FallbackToCpu</c> chose it when the transformer was made.
    /// </summary>
    public string ExecutionProvider => Scorer.ExecutionProvider;

    /// <summary>Images per ONNX Runtime call in the fast path.</summary>
    public int BatchSize { get; }

    /// <summary>The ONNX model bytes (as exported, before adaptation for ML.NET).</summary>
    public ReadOnlyMemory<byte> OnnxModel { get; }

    private protected OnnxImageTransformer(MLEnvironment env, byte[] onnx, OnnxScorer scorer,
        DataViewSchema inputSchema, IDataView sample, string imageColumn, string? imageFolder, int batchSize)
    {
        Env = env;
        OnnxModel = onnx;
        Scorer = scorer;
        ModelInfo = scorer.Info;
        ImageColumnName = imageColumn;
        ImageFolder = imageFolder;
        BatchSize = batchSize;
        Kind = ImagePreprocessing.Classify(inputSchema, imageColumn);
        _preprocess = ImagePreprocessing.Build(env.Transforms, Kind, imageColumn, imageFolder, ModelInfo).Fit(sample);
    }

    /// <summary>Builds the saved chain; called once by the subclass constructor when its fields are set.</summary>
    private protected void BuildSaved(IDataView sample)
    {
        var chain = ImagePreprocessing.Build(Env.Transforms, Kind, ImageColumnName, ImageFolder, ModelInfo).Append(SavedTail());
        _saved = chain.Fit(sample);
    }

    /// <summary>The ML.NET transforms that follow preprocessing in the saved form, ending with the temporary columns dropped.</summary>
    private protected abstract IEstimator<ITransformer> SavedTail();

    /// <summary>The batched view over the preprocessed data.</summary>
    private protected abstract IDataView ScoredView(IDataView preprocessed);

    /// <summary>The output schema added to the preprocessed schema.</summary>
    private protected abstract DataViewSchema ScoredSchema(DataViewSchema preprocessed);

    private ITransformer Saved => _saved ?? throw new InvalidOperationException("The saved form was not built.");

    /// <inheritdoc />
    public bool IsRowToRowMapper => Saved.IsRowToRowMapper;

    /// <summary>Single-row mapping (used by <c>PredictionEngine</c>): the saved form's mapper.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => Saved.GetRowToRowMapper(inputSchema);

    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ImagePreprocessing.Classify(inputSchema, ImageColumnName);
        var scored = ScoredSchema(_preprocess.GetOutputSchema(inputSchema));
        var temp = ImagePreprocessing.TemporaryColumns(Kind).ToHashSet();
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(scored.Where(c => !c.IsHidden && !temp.Contains(c.Name)));
        return builder.ToSchema();
    }

    /// <inheritdoc />
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ImagePreprocessing.Classify(input.Schema, ImageColumnName);
        var scored = ScoredView(_preprocess.Transform(input));
        return Env.Transforms.DropColumns(ImagePreprocessing.TemporaryColumns(Kind)).Fit(scored).Transform(scored);
    }

    /// <inheritdoc />
    void ICanSaveModel.Save(ModelSaveContext ctx) => ((ICanSaveModel)Saved).Save(ctx);

    /// <inheritdoc />
    public void Dispose()
    {
        Scorer.Dispose();
        (_saved as IDisposable)?.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// ML.NET's ONNX transformer over adapted bytes, one row at a time with a batch of 1. Its device is left unset, so
    /// ML.NET takes the context's GpuDeviceId / FallbackToCpu, now and when the saved model is loaded.
    /// </summary>
    private protected IEstimator<ITransformer> ApplyAdapted(byte[] adapted, string[] outputs) =>
        Env.Transforms.ApplyOnnxModel(outputs, [OnnxGraphAdapter.InputColumn], new MemoryStream(adapted, writable: false),
            new Dictionary<string, int[]> { [OnnxGraphAdapter.InputColumn] = [1, ModelInfo.Channels, ModelInfo.Height, ModelInfo.Width] },
            gpuDeviceId: null, fallbackToCpu: false, recursionLimit: 100);
}
