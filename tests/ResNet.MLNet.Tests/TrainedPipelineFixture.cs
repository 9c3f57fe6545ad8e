using Microsoft.ML;
using ResNet.MLNet.Transforms;

namespace ResNet.MLNet.Tests;

/// <summary>
/// One pipeline trained once for the tests that need a fitted model: LoadImagesFromDirectory -> LoadImages ->
/// MapValueToKey -> ResNetClassifier (resnet20, grayscale 28x28, 8 epochs) -> MapKeyToValue, on the embedded
/// Fashion-MNIST subset (10 classes x 100 training images).
/// </summary>
public sealed class TrainedPipelineFixture : IDisposable
{
    public MLContext ML { get; } = new(seed: 1);
    public IDataView Train { get; }
    public IDataView Test { get; }
    public IDataView Keys { get; }
    public ITransformer Model { get; }
    public ResNetClassifierEstimator Estimator { get; }
    public List<string> EpochLog { get; } = [];
    public List<Trainer.Training.TrainingProgress> Progress { get; } = [];
    public string Folder { get; } = Directory.CreateTempSubdirectory("resnet-mlnet-fixture-").FullName;

    public TrainedPipelineFixture()
    {
        ML.Log += (_, e) => { if (e.Message.Contains("ResNet epoch")) lock (EpochLog) EpochLog.Add(e.Message); };
        Train = ML.Data.LoadImagesFromDirectory(Samples.Train);
        Test = ML.Data.LoadImagesFromDirectory(Samples.Test);
        Keys = ML.Data.LoadFromEnumerable(Directory.GetDirectories(Samples.Train).Select(Path.GetFileName).Order(StringComparer.Ordinal).Select(c => new { Label = c! }));
        Estimator = ML.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
        {
            Architecture = "resnet20",
            Channels = 1,
            ImageSize = 28,
            Epochs = 8,
            BatchSize = 64,
            Seed = 1,
            MetricsCallback = new Recorder(Progress),
        });
        Model = ML.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ML.Transforms.Conversion.MapValueToKey("Label", keyData: Keys))
            .Append(Estimator)
            .Append(ML.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"))
            .Fit(Train);
    }

    public ResNetScoringTransformer Scorer => ((IEnumerable<ITransformer>)Model).OfType<ResNetScoringTransformer>().Single();

    public void Dispose() => Directory.Delete(Folder, recursive: true);

    // Synchronous IProgress: events are recorded in order on the training thread.
    private sealed class Recorder(List<Trainer.Training.TrainingProgress> sink) : IProgress<Trainer.Training.TrainingProgress>
    {
        public void Report(Trainer.Training.TrainingProgress value) { lock (sink) sink.Add(value); }
    }
}
