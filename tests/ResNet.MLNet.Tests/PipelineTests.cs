using Microsoft.ML;
using ResNet.MLNet.Transforms;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace ResNet.MLNet.Tests;

/// <summary>The full pipeline on the embedded Fashion-MNIST subset (10 classes, 100 train + 30 test images each).</summary>
public sealed class PipelineTests(TrainedPipelineFixture f, ITestOutputHelper log) : IClassFixture<TrainedPipelineFixture>
{
    public sealed class ImageInput
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    public sealed class Prediction
    {
        public float[] Score { get; set; } = [];
        public string PredictedClass { get; set; } = "";
    }

    [Fact]
    public void Evaluate_OnHeldOutImages_IsWellAboveChance()
    {
        var metrics = f.ML.MulticlassClassification.Evaluate(f.Model.Transform(f.Test));
        log.WriteLine($"resnet20, 8 epochs (fast-cpu recipe), 1000 train images 28x28 gray, 300 test images: " +
                      $"MicroAccuracy {metrics.MicroAccuracy:F3}, MacroAccuracy {metrics.MacroAccuracy:F3}, LogLoss {metrics.LogLoss:F3}");
        // Chance is 0.10 on 10 balanced classes.
        Assert.True(metrics.MicroAccuracy > 0.6, $"MicroAccuracy {metrics.MicroAccuracy}");
        Assert.Equal(10, metrics.PerClassLogLoss.Count);
    }

    [Fact]
    public void Progress_ReachesMLContextLogAndTheCallback()
    {
        Assert.Equal(8, f.EpochLog.Count);
        Assert.Contains("ResNet epoch 8/8", f.EpochLog[^1]);
        var epochs = f.Progress.Where(p => p.Kind == Trainer.Training.ProgressKind.Epoch).ToList();
        Assert.Equal(Enumerable.Range(1, 8), epochs.Select(p => p.Epoch));
        Assert.True(epochs[^1].Loss < epochs[0].Loss, $"loss {epochs[0].Loss} -> {epochs[^1].Loss}");
        Assert.NotNull(f.Estimator.LastTraining);
        Assert.Equal(8, f.Estimator.LastTraining!.History.Count);
    }

    [Fact]
    public void Outputs_FollowMLNetConventions()
    {
        var scored = f.Model.Transform(f.Test);
        var scoreCol = scored.Schema["Score"];
        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 10), scoreCol.Type);
        VBuffer<ReadOnlyMemory<char>> slots = default;
        scoreCol.GetSlotNames(ref slots);
        Assert.Equal("Ankle_boot", slots.GetItemOrDefault(0).ToString());
        Assert.Equal("Trouser", slots.GetItemOrDefault(9).ToString());
        var key = scored.Schema["PredictedLabel"];
        Assert.Equal(new KeyDataViewType(typeof(uint), 10), key.Type);
        VBuffer<ReadOnlyMemory<char>> keyValues = default;
        key.GetKeyValues(ref keyValues);
        Assert.Equal(slots.DenseValues().Select(v => v.ToString()), keyValues.DenseValues().Select(v => v.ToString()));
        // The predicted class is the arg-max of the scores, and scores are probabilities.
        var scores = scored.GetColumn<float[]>("Score").ToList();
        var predicted = scored.GetColumn<string>("PredictedClass").ToList();
        var names = slots.DenseValues().Select(v => v.ToString()).ToArray();
        for (int i = 0; i < scores.Count; i++)
        {
            Assert.Equal(1f, scores[i].Sum(), 3);
            Assert.Equal(names[Array.IndexOf(scores[i], scores[i].Max())], predicted[i]);
        }
        Assert.DoesNotContain(scored.Schema, c => c.Name.StartsWith("__ResNet", StringComparison.Ordinal));
    }

    [Fact]
    public void SaveThenLoad_InAFreshContext_GivesIdenticalScores_AndPredictionEngineWorks()
    {
        var scored = f.Model.Transform(f.Test);
        string path = Path.Combine(f.Folder, "model.zip");
        f.ML.Model.Save(f.Model, f.Train.Schema, path);
        var fresh = new MLContext(seed: 2).RegisterResNet();
        var loaded = fresh.Model.Load(path, out _);
        var reloaded = loaded.Transform(f.Test);

        var a = scored.GetColumn<float[]>("Score").ToList();
        var b = reloaded.GetColumn<float[]>("Score").ToList();
        Assert.Equal(300, a.Count);
        Assert.Equal(a.Count, b.Count);
        double maxDiff = a.Zip(b).Max(p => p.First.Zip(p.Second).Max(q => Math.Abs(q.First - q.Second)));
        log.WriteLine($"fitted vs loaded: max |score difference| = {maxDiff:E2}");
        Assert.True(maxDiff <= 1e-6, $"max diff {maxDiff}");
        Assert.Equal(scored.GetColumn<string>("PredictedClass"), reloaded.GetColumn<string>("PredictedClass"));
        Assert.Equal(f.ML.MulticlassClassification.Evaluate(scored).MicroAccuracy, fresh.MulticlassClassification.Evaluate(reloaded).MicroAccuracy, 9);

        var first = f.Test.GetColumn<string>("ImagePath").First();
        var loadedEngine = fresh.Model.CreatePredictionEngine<ImageInput, Prediction>(loaded);
        var fittedEngine = f.ML.Model.CreatePredictionEngine<ImageInput, Prediction>(f.Model);
        var p1 = loadedEngine.Predict(new ImageInput { ImagePath = first });
        var p2 = fittedEngine.Predict(new ImageInput { ImagePath = first });
        Assert.Equal(reloaded.GetColumn<string>("PredictedClass").First(), p1.PredictedClass);
        Assert.Equal(p1.PredictedClass, p2.PredictedClass);
        Assert.True(b[0].Zip(p1.Score).All(q => Math.Abs(q.First - q.Second) <= 1e-6));
    }

    [Fact]
    public void LoadWithResNetScoring_GivesTheBatchedScorerBack_WithTheSameScores()
    {
        var scored = f.Model.Transform(f.Test);
        string path = Path.Combine(f.Folder, "model-batched.zip");
        f.ML.Model.Save(f.Model, f.Train.Schema, path);
        var fresh = new MLContext(seed: 3);
        var loaded = fresh.Model.LoadWithResNetScoring(path, out var schema, threads: 1, batchSize: 16);

        // The chain keeps the user's transformers around the scorer; the scorer is the batched one, with the saved columns.
        var parts = ((IEnumerable<ITransformer>)loaded).ToList();
        var scorer = Assert.Single(parts.OfType<ResNetScoringTransformer>());
        Assert.Equal(4, parts.Count);
        Assert.Equal(16, scorer.BatchSize);
        Assert.Equal("Image", scorer.ImageColumnName);
        Assert.Equal(10, scorer.ModelInfo.ClassCount);
        Assert.Equal(f.Scorer.ModelInfo.ClassNames, scorer.ModelInfo.ClassNames);
        Assert.Equal(f.Train.Schema.Select(c => c.Name), schema.Select(c => c.Name));

        var reloaded = loaded.Transform(f.Test);
        var a = scored.GetColumn<float[]>("Score").ToList();
        var b = reloaded.GetColumn<float[]>("Score").ToList();
        Assert.Equal(300, b.Count);
        double maxDiff = a.Zip(b).Max(p => p.First.Zip(p.Second).Max(q => Math.Abs(q.First - q.Second)));
        Assert.True(maxDiff <= 1e-6, $"max diff {maxDiff}");
        Assert.Equal(scored.GetColumn<string>("PredictedClass"), reloaded.GetColumn<string>("PredictedClass"));
        Assert.Equal(f.ML.MulticlassClassification.Evaluate(scored).MicroAccuracy, fresh.MulticlassClassification.Evaluate(reloaded).MicroAccuracy, 9);

        // A zip without a ResNet classifier is refused with the way out.
        string plain = Path.Combine(f.Folder, "plain.zip");
        var keysOnly = f.ML.Transforms.Conversion.MapValueToKey("Label", keyData: f.Keys).Fit(f.Train);
        f.ML.Model.Save(keysOnly, f.Train.Schema, plain);
        var ex = Assert.Throws<InvalidDataException>(() => fresh.Model.LoadWithResNetScoring(plain, out _));
        Assert.Contains("Model.Load", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => fresh.Model.LoadWithResNetScoring(path, out _, threads: -1));
    }

    [Fact]
    public void Scoring_KeepsRowOrder_AndParallelCursorsAgree()
    {
        var scored = f.Model.Transform(f.Test);
        var expected = scored.GetColumn<float[]>("Score").ToList();
        var paths = f.Test.GetColumn<string>("ImagePath").ToList();
        // Paths pass through next to their scores, in the source's order.
        Assert.Equal(paths, scored.GetColumn<string>("ImagePath"));
        var results = new List<float[]>[3];
        Parallel.For(0, 3, i => results[i] = scored.GetColumn<float[]>("Score").ToList());
        foreach (var r in results)
            Assert.True(r.Zip(expected).All(p => p.First.SequenceEqual(p.Second)));
    }

    [Fact]
    public void Evaluate_WithLabelsUnseenInTraining_CountsOnlyTheKnownLabels()
    {
        // 300 held-out images plus 5 rows labelled with a class the model never saw: MapValueToKey (fitted on the
        // training classes) turns that label into a missing key, and the evaluator leaves those rows out.
        var paths = f.Test.GetColumn<string>("ImagePath").Take(5).ToList();
        var unseen = f.ML.Data.LoadFromEnumerable(paths.Select(p => new ImageInput { ImagePath = p, Label = "Alien" }));
        var withUnseen = f.ML.Data.LoadFromEnumerable(
            f.ML.Data.CreateEnumerable<ImageInput>(f.Test, reuseRowObject: false).Concat(f.ML.Data.CreateEnumerable<ImageInput>(unseen, reuseRowObject: false)));
        var scored = f.Model.Transform(withUnseen);
        Assert.Equal(305, scored.GetColumn<float[]>("Score").Count());
        var all = f.ML.MulticlassClassification.Evaluate(scored);
        var known = f.ML.MulticlassClassification.Evaluate(f.Model.Transform(f.Test));
        Assert.Equal(known.MicroAccuracy, all.MicroAccuracy, 9);
        Assert.Equal(known.ConfusionMatrix.Counts.Sum(r => r.Sum()), all.ConfusionMatrix.Counts.Sum(r => r.Sum()));
    }
}
