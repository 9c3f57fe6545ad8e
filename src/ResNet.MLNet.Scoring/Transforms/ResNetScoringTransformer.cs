using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;

namespace ResNet.MLNet.Transforms;

/// <summary>
/// Scores images with an exported ResNet ONNX model: <c>Score</c> (one probability per class, slot names = class
/// names) and <c>PredictedLabel</c> (a key whose values are the class names). <see cref="OnnxImageTransformer.Transform"/>
/// runs the model in batches inside the cursor; the saved form decodes, resizes, extracts pixels, runs
/// ApplyOnnxModel with the bytes embedded and maps the arg-max to the key.
/// </summary>
public sealed class ResNetScoringTransformer : OnnxImageTransformer
{
    private readonly BatchScorer _scorer;

    /// <summary>The output column with class probabilities.</summary>
    public string ScoreColumnName { get; }

    /// <summary>The output column with the predicted class as a key.</summary>
    public string PredictedLabelColumnName { get; }

    internal ResNetScoringTransformer(MLEnvironment env, byte[] onnx, OnnxScorer onnxScorer, BatchScorer scorer,
        DataViewSchema inputSchema, IDataView sample, string imageColumn, string? imageFolder, string scoreColumn, string predictedLabelColumn, int batchSize)
        : base(env, onnx, onnxScorer, inputSchema, sample, imageColumn, imageFolder, batchSize)
    {
        _scorer = scorer;
        ScoreColumnName = scoreColumn;
        PredictedLabelColumnName = predictedLabelColumn;
        BuildSaved(sample);
    }

    private protected override IEstimator<ITransformer> SavedTail()
    {
        var classNames = ModelInfo.ClassNames.Select((name, i) => new KeyValuePair<uint, string>((uint)i, name)).ToList();
        // A foreign classifier has only scores (logits); the adapted graph adds the softmax.
        var saved = new SavedScoring(Scorer.InputName, Scorer.ProbabilitiesName ?? Scorer.LogitsName!, Scorer.ProbabilitiesName is null,
            ModelInfo.ClassCount, ImageColumnName, ImageFolder, ScoreColumnName, PredictedLabelColumnName, BatchSize);
        return ApplyAdapted(OnnxGraphAdapter.Adapt(OnnxModel.ToArray(), saved), [OnnxGraphAdapter.ProbabilitiesColumn, OnnxGraphAdapter.IndexColumn])
            .Append(Env.Transforms.CustomMapping(new IndexToScalar().GetMapping(), IndexToScalar.ContractName))
            .Append(Env.Transforms.Conversion.MapValue(PredictedLabelColumnName, classNames, IndexToScalar.OutputColumn, treatValuesAsKeyType: true))
            .Append(Env.Transforms.CopyColumns(ScoreColumnName, OnnxGraphAdapter.ProbabilitiesColumn))
            .Append(Env.Transforms.DropColumns(
                [.. ImagePreprocessing.TemporaryColumns(Kind), OnnxGraphAdapter.ProbabilitiesColumn, OnnxGraphAdapter.IndexColumn, IndexToScalar.OutputColumn]));
    }

    private protected override IDataView ScoredView(IDataView preprocessed) =>
        new ScoredDataView(preprocessed, _scorer, ModelInfo.ClassNames, ScoreColumnName, PredictedLabelColumnName, BatchSize);

    private protected override DataViewSchema ScoredSchema(DataViewSchema preprocessed) =>
        ScoredDataView.OutputSchema(preprocessed, ModelInfo.ClassNames, ScoreColumnName, PredictedLabelColumnName);
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
