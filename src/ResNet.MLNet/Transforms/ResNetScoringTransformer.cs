using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace ResNet.MLNet.Transforms;

/// <summary>
/// Scores images with an exported ResNet ONNX model. <see cref="Transform"/> runs the model in batches inside
/// the cursor (the fast path); saving writes an equivalent chain of ML.NET's own transforms with the ONNX bytes
/// embedded (decode, resize, pixels, ApplyOnnxModel, key mapping), so <c>mlContext.Model.Load</c> needs no side files.
/// </summary>
public sealed class ResNetScoringTransformer : ITransformer, IDisposable
{
    private readonly MLContext _ml;
    private readonly ImageColumnKind _kind;
    private readonly ITransformer _preprocess;
    private readonly ITransformer _saved;
    private readonly BatchScorer _scorer;
    private readonly IDisposable? _scorerOwner;

    /// <summary>The model's input geometry and class names.</summary>
    public ResNetModelInfo ModelInfo { get; }

    /// <summary>The image column read by the transformer.</summary>
    public string ImageColumnName { get; }

    /// <summary>The output column with class probabilities.</summary>
    public string ScoreColumnName { get; }

    /// <summary>The output column with the predicted class as a key.</summary>
    public string PredictedLabelColumnName { get; }

    /// <summary>Images per ONNX Runtime call in the fast path.</summary>
    public int BatchSize { get; }

    /// <summary>The ONNX model bytes (as exported, before adaptation for ML.NET).</summary>
    public ReadOnlyMemory<byte> OnnxModel { get; }

    internal ResNetScoringTransformer(MLContext ml, byte[] onnx, ResNetModelInfo info, BatchScorer scorer, IDisposable? scorerOwner,
        DataViewSchema inputSchema, IDataView sample, string imageColumn, string? imageFolder, string scoreColumn, string predictedLabelColumn, int batchSize)
    {
        _ml = ml.RegisterResNet();
        ModelInfo = info;
        OnnxModel = onnx;
        ImageColumnName = imageColumn;
        ScoreColumnName = scoreColumn;
        PredictedLabelColumnName = predictedLabelColumn;
        BatchSize = batchSize;
        _scorer = scorer;
        _scorerOwner = scorerOwner;
        _kind = ImagePreprocessing.Classify(inputSchema, imageColumn);
        _preprocess = ImagePreprocessing.Build(ml, _kind, imageColumn, imageFolder, info).Fit(sample);
        _saved = BuildSavedChain(sample, imageFolder);
    }

    // The chain that a saved model holds: only ML.NET's own transforms plus two registered custom mappings.
    private ITransformer BuildSavedChain(IDataView sample, string? imageFolder)
    {
        using var modelStream = new MemoryStream(OnnxGraphAdapter.Adapt(OnnxModel.ToArray(), ModelInfo), writable: false);
        {
            var classNames = ModelInfo.ClassNames.Select((name, i) => new KeyValuePair<uint, string>((uint)i, name)).ToList();
            var chain = ImagePreprocessing.Build(_ml, _kind, ImageColumnName, imageFolder, ModelInfo)
                .Append(_ml.Transforms.ApplyOnnxModel(
                    [OnnxGraphAdapter.ProbabilitiesColumn, OnnxGraphAdapter.IndexColumn], [OnnxGraphAdapter.InputColumn], modelStream,
                    new Dictionary<string, int[]> { [OnnxGraphAdapter.InputColumn] = [1, ModelInfo.Channels, ModelInfo.Height, ModelInfo.Width] },
                    gpuDeviceId: null, fallbackToCpu: false, recursionLimit: 100))
                .Append(_ml.Transforms.CustomMapping(new IndexToScalar().GetMapping(), IndexToScalar.ContractName))
                .Append(_ml.Transforms.Conversion.MapValue(PredictedLabelColumnName, classNames, IndexToScalar.OutputColumn, treatValuesAsKeyType: true))
                .Append(_ml.Transforms.CopyColumns(ScoreColumnName, OnnxGraphAdapter.ProbabilitiesColumn))
                .Append(_ml.Transforms.DropColumns(
                    [.. ImagePreprocessing.TemporaryColumns(_kind), OnnxGraphAdapter.ProbabilitiesColumn, OnnxGraphAdapter.IndexColumn, IndexToScalar.OutputColumn]));
            return chain.Fit(sample);
        }
    }

    /// <inheritdoc />
    public bool IsRowToRowMapper => _saved.IsRowToRowMapper;

    /// <inheritdoc />
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ImagePreprocessing.Classify(inputSchema, ImageColumnName);
        var pre = _preprocess.GetOutputSchema(inputSchema);
        var scored = ScoredDataView.OutputSchema(pre, ModelInfo.ClassNames, ScoreColumnName, PredictedLabelColumnName);
        var builder = new DataViewSchema.Builder();
        var temp = ImagePreprocessing.TemporaryColumns(_kind).ToHashSet();
        builder.AddColumns(scored.Where(c => !c.IsHidden && !temp.Contains(c.Name)));
        return builder.ToSchema();
    }

    /// <summary>Single-row mapping (used by <c>PredictionEngine</c>): the saved chain's mapper.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => _saved.GetRowToRowMapper(inputSchema);

    /// <inheritdoc />
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ImagePreprocessing.Classify(input.Schema, ImageColumnName);
        var pre = _preprocess.Transform(input);
        var scored = new ScoredDataView(pre, _scorer, ModelInfo, ScoreColumnName, PredictedLabelColumnName, BatchSize);
        return _ml.Transforms.DropColumns(ImagePreprocessing.TemporaryColumns(_kind)).Fit(scored).Transform(scored);
    }

    /// <inheritdoc />
    void ICanSaveModel.Save(ModelSaveContext ctx) => ((ICanSaveModel)_saved).Save(ctx);

    /// <inheritdoc />
    public void Dispose()
    {
        _scorerOwner?.Dispose();
        (_saved as IDisposable)?.Dispose();
    }
}

/// <summary>Input of the registered index mapping: the ONNX arg-max, a vector of one.</summary>
public sealed class IndexVectorInput
{
    /// <summary>The arg-max as a one-element vector.</summary>
    [ColumnName("__ResNet_Index"), VectorType(1)]
    public uint[] Index { get; set; } = [];
}

/// <summary>Output of the registered index mapping: the arg-max as a scalar.</summary>
public sealed class IndexScalarOutput
{
    /// <summary>The arg-max class index.</summary>
    [ColumnName(IndexToScalar.OutputColumn)]
    public uint Index { get; set; }
}

/// <summary>Turns ML.NET's one-element vector from the ONNX transformer into a scalar, so it can become a key.</summary>
[CustomMappingFactoryAttribute(ContractName)]
public sealed class IndexToScalar : CustomMappingFactory<IndexVectorInput, IndexScalarOutput>
{
    /// <summary>The contract name stored in saved models.</summary>
    public const string ContractName = "ResNet.MLNet.IndexToScalar.v1";
    internal const string OutputColumn = "__ResNet_IndexScalar";

    /// <inheritdoc />
    public override Action<IndexVectorInput, IndexScalarOutput> GetMapping() => (input, output) => output.Index = input.Index[0];
}
