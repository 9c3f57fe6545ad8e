using Microsoft.ML;
using Microsoft.ML.Data;

namespace ResNet.MLNet.Transforms;

/// <summary>
/// Adds a ResNet's globally pooled features as a known-size float vector column, for any downstream ML.NET trainer.
/// </summary>
public sealed class ResNetFeaturizerTransformer : OnnxImageTransformer
{
    private readonly BatchScorer _featurize;

    /// <summary>The output column.</summary>
    public string FeaturesColumnName { get; }

    /// <summary>Values per image in the output column.</summary>
    public int FeatureCount { get; }

    internal ResNetFeaturizerTransformer(MLEnvironment env, byte[] onnx, OnnxScorer scorer, BatchScorer featurize,
        DataViewSchema inputSchema, IDataView sample, string imageColumn, string? imageFolder, string featuresColumn, int batchSize)
        : base(env, onnx, scorer, inputSchema, sample, imageColumn, imageFolder, batchSize)
    {
        _featurize = featurize;
        FeatureCount = scorer.FeatureCount;
        FeaturesColumnName = featuresColumn;
        BuildSaved(sample);
    }

    private protected override IEstimator<ITransformer> SavedTail() =>
        ApplyAdapted(OnnxGraphAdapter.AdaptForFeatures(OnnxModel.ToArray(), Scorer.InputName, Scorer.FeaturesName!, FeatureCount), [OnnxGraphAdapter.FeaturesColumn])
            .Append(Env.Transforms.CopyColumns(FeaturesColumnName, OnnxGraphAdapter.FeaturesColumn))
            .Append(Env.Transforms.DropColumns([.. ImagePreprocessing.TemporaryColumns(Kind), OnnxGraphAdapter.FeaturesColumn]));

    private protected override IDataView ScoredView(IDataView preprocessed) =>
        ScoredDataView.WithFeatures(preprocessed, _featurize, FeatureCount, FeaturesColumnName, BatchSize);

    private protected override DataViewSchema ScoredSchema(DataViewSchema preprocessed) =>
        ScoredDataView.FeaturesSchema(preprocessed, FeaturesColumnName, FeatureCount);
}
