using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet.Transforms;
using Xunit.Abstractions;

namespace ResNet.MLNet.Tests;

/// <summary>The full pipeline on the embedded Fashion-MNIST subset (10 classes, 100 train + 30 test images each).</summary>
public sealed class PipelineTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("resnet-mlnet-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

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

    private static IEstimator<ITransformer> Pipeline(MLContext ml, IDataView keys) =>
        ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.Conversion.MapValueToKey("Label", keyData: keys))
            .Append(ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
            {
                Architecture = "resnet20",
                Channels = 1,
                ImageSize = 28,
                Epochs = 6,
                BatchSize = 64,
                Seed = 1,
            }))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));

    [Fact]
    public void FullPipeline_FitsEvaluatesSavesAndLoads()
    {
        var ml = new MLContext(seed: 1);
        var messages = new List<string>();
        ml.Log += (_, e) => { if (e.Message.Contains("ResNet epoch")) lock (messages) messages.Add(e.Message); };
        var train = ml.Data.LoadImagesFromDirectory(Samples.Train);
        var test = ml.Data.LoadImagesFromDirectory(Samples.Test);
        var keys = ml.Data.LoadFromEnumerable(Directory.GetDirectories(Samples.Train).Select(Path.GetFileName).Order().Select(c => new { Label = c! }));

        var model = Pipeline(ml, keys).Fit(train);
        var scored = model.Transform(test);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        log.WriteLine($"resnet20, 6 epochs, 1000 train images 28x28: MicroAccuracy {metrics.MicroAccuracy:F3}, MacroAccuracy {metrics.MacroAccuracy:F3}, LogLoss {metrics.LogLoss:F3}");
        // Chance is 0.10 on 10 balanced classes.
        Assert.True(metrics.MicroAccuracy > 0.5, $"MicroAccuracy {metrics.MicroAccuracy}");
        Assert.Equal(6, messages.Count);

        // Score: one probability per class, slot names are the class names.
        var scoreCol = scored.Schema["Score"];
        Assert.Equal(10, ((VectorDataViewType)scoreCol.Type).Size);
        VBuffer<ReadOnlyMemory<char>> slots = default;
        scoreCol.GetSlotNames(ref slots);
        Assert.Equal("Ankle boot", slots.GetItemOrDefault(0).ToString());

        string path = Path.Combine(_dir, "model.zip");
        ml.Model.Save(model, train.Schema, path);
        var fresh = new MLContext(seed: 2).RegisterResNet();
        var loaded = fresh.Model.Load(path, out var schema);
        var reloaded = loaded.Transform(test);
        var a = scored.GetColumn<float[]>("Score").ToList();
        var b = reloaded.GetColumn<float[]>("Score").ToList();
        Assert.Equal(300, a.Count);
        Assert.Equal(a.Count, b.Count);
        double maxDiff = a.Zip(b).Max(p => p.First.Zip(p.Second).Max(q => Math.Abs(q.First - q.Second)));
        log.WriteLine($"fresh vs loaded max |score diff| = {maxDiff:E2}");
        Assert.True(maxDiff <= 1e-6, $"max diff {maxDiff}");
        Assert.Equal(scored.GetColumn<string>("PredictedClass"), reloaded.GetColumn<string>("PredictedClass"));
        var loadedMetrics = fresh.MulticlassClassification.Evaluate(reloaded);
        Assert.Equal(metrics.MicroAccuracy, loadedMetrics.MicroAccuracy, 6);

        var engine = fresh.Model.CreatePredictionEngine<ImageInput, Prediction>(loaded);
        var first = test.GetColumn<string>("ImagePath").First();
        var p = engine.Predict(new ImageInput { ImagePath = first });
        Assert.Equal(reloaded.GetColumn<string>("PredictedClass").First(), p.PredictedClass);
        Assert.Equal(b[0], p.Score, new FloatComparer(1e-6f));
    }

    private sealed class FloatComparer(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance;
        public int GetHashCode(float obj) => 0;
    }
}
