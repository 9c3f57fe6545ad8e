using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet.Transforms;
using ResNet.Trainer.Data;
using ResNet.Trainer.Training;

namespace ResNet.MLNet.Tests;

/// <summary>
/// Options.WorkspaceFolder with FreezeBackbone: the trunk's features are stored on the first fit and read back by the
/// next fit on the same images and trunk (same head results); a damaged file is detected and recomputed; changed images
/// get a cache of their own. A small random-initialised resnet8 keeps it fast: the cache does not care where the trunk came from.
/// </summary>
public sealed class WorkspaceCacheTests : IDisposable
{
    private readonly string _data = Samples.SmallCopy(classes: 2, trainPerClass: 10, testPerClass: 0);
    private readonly string _workspace = Directory.CreateTempSubdirectory("resnet-workspace-").FullName;

    public void Dispose()
    {
        Directory.Delete(_data, recursive: true);
        Directory.Delete(_workspace, recursive: true);
    }

    private sealed record FitResult(IReadOnlyList<EpochStats> History, List<float[]> Scores, List<string> Notes, List<string> LoggedWarnings);

    private FitResult FitHeadOnly(double? momentum = null, double? weightDecay = null)
    {
        var ml = new MLContext(seed: 1);
        var notes = new List<string>();
        var warnings = new List<string>();
        ml.Log += (_, e) => { if (e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Warning) lock (warnings) warnings.Add(e.Message); };
        var images = ml.Data.LoadImagesFromDirectory(Path.Combine(_data, "train"));
        var estimator = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
        {
            ImageColumnName = "ImagePath", Architecture = "resnet8", Channels = 1, ImageSize = 28,
            FreezeBackbone = true, Epochs = 3, Seed = 1, WorkspaceFolder = _workspace,
            Momentum = momentum, WeightDecay = weightDecay,
            MetricsCallback = new Notes(notes),
        });
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(estimator).Fit(images);
        var scores = model.Transform(images).GetColumn<float[]>("Score").ToList();
        return new FitResult(estimator.LastTraining!.History, scores, notes, warnings);
    }

    private string[] CacheFiles() => Directory.GetFiles(_workspace, "features-*.bin");

    private static void AssertSameHead(FitResult expected, FitResult actual)
    {
        Assert.Equal(expected.History.Select(h => h.TrainLoss), actual.History.Select(h => h.TrainLoss));
        Assert.Equal(expected.Scores.Count, actual.Scores.Count);
        Assert.All(expected.Scores.Zip(actual.Scores), p => Assert.Equal(p.First, p.Second));
    }

    [Fact]
    public void SecondFit_ReadsTheCachedFeatures_AndTrainsTheSameHead()
    {
        var first = FitHeadOnly();
        string file = Assert.Single(CacheFiles());
        Assert.Contains(first.Notes, n => n.StartsWith("cached 20 feature vectors of 64 and saved them to", StringComparison.Ordinal));
        var written = File.GetLastWriteTimeUtc(file);
        byte[] bytes = File.ReadAllBytes(file);

        var second = FitHeadOnly();
        Assert.Contains(second.Notes, n => n.StartsWith("read 20 cached feature vectors of 64 from", StringComparison.Ordinal));
        Assert.DoesNotContain(second.Notes, n => n.StartsWith("cached ", StringComparison.Ordinal));
        Assert.Equal(written, File.GetLastWriteTimeUtc(file));
        Assert.Equal(bytes, File.ReadAllBytes(file));
        AssertSameHead(first, second);
    }

    [Fact]
    public void DamagedCache_IsDetected_RecomputedWithAWarning_AndRewritten()
    {
        var first = FitHeadOnly();
        string file = Assert.Single(CacheFiles());
        byte[] good = File.ReadAllBytes(file);
        byte[] damaged = (byte[])good.Clone();
        damaged[damaged.Length / 2] ^= 0xFF; // one feature value changes; the checksum no longer matches
        File.WriteAllBytes(file, damaged);

        var second = FitHeadOnly();
        Assert.Contains(second.Notes, n => n.StartsWith("Warning: the feature cache", StringComparison.Ordinal) && n.Contains("checksum does not match"));
        // mlContext.Log carries it as a warning, not as information.
        Assert.Contains(second.LoggedWarnings, m => m.Contains("ResNet: the feature cache", StringComparison.Ordinal) && m.Contains("checksum does not match"));
        Assert.DoesNotContain(first.LoggedWarnings, m => m.Contains("feature cache", StringComparison.Ordinal));
        Assert.Contains(second.Notes, n => n.StartsWith("cached 20 feature vectors", StringComparison.Ordinal));
        Assert.Equal(good, File.ReadAllBytes(file));
        AssertSameHead(first, second);

        File.WriteAllBytes(file, good[..(good.Length - 100)]); // truncated
        var third = FitHeadOnly();
        Assert.Contains(third.Notes, n => n.StartsWith("Warning: the feature cache", StringComparison.Ordinal) && n.Contains("bytes where"));
        Assert.Equal(good, File.ReadAllBytes(file));
    }

    [Fact]
    public void ChangedImages_GetACacheOfTheirOwn()
    {
        FitHeadOnly();
        string before = Assert.Single(CacheFiles());
        var anImage = Directory.GetFiles(Path.Combine(_data, "train"), "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First();
        File.Delete(anImage);

        var changed = FitHeadOnly();
        Assert.Contains(changed.Notes, n => n.StartsWith("cached 19 feature vectors", StringComparison.Ordinal));
        Assert.Equal(2, CacheFiles().Length);
        Assert.Contains(before, CacheFiles());
    }

    [Fact]
    public void WorkspaceFolder_WithoutFreezeBackbone_IsRefusedBeforeAnyWork()
    {
        var ml = new MLContext();
        var ex = Assert.Throws<InvalidTrainingOptionException>(() => ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options { WorkspaceFolder = _workspace }));
        Assert.Equal(nameof(ResNetClassifierEstimator.Options.WorkspaceFolder), ex.Option);
        Assert.Contains("FreezeBackbone = true", ex.Message);
        Assert.Empty(CacheFiles());
    }

    [Fact]
    public void RandomErasing_WithFreezeBackbone_IsRefusedBeforeAnyWork()
    {
        var ml = new MLContext();
        var ex = Assert.Throws<InvalidTrainingOptionException>(() => ml.Transforms.ResNetClassifier(
            new ResNetClassifierEstimator.Options { FreezeBackbone = true, WorkspaceFolder = _workspace, RandomErasing = 0.5 }));
        Assert.Equal(nameof(ResNetClassifierEstimator.Options.RandomErasing), ex.Option);
        Assert.Equal("0.5", ex.Value);
        Assert.Contains("FreezeBackbone = false", ex.Message);
        Assert.Empty(CacheFiles());
        // Without it, the same options are taken; full training erases (the trainer's own tests show it).
        _ = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options { FreezeBackbone = true, WorkspaceFolder = _workspace });
        _ = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options { RandomErasing = 0.5 });
    }

    [Fact]
    public void OptionsHeadOnlyTrainingHasNoUseFor_AreRefusedBeforeAnyWork()
    {
        var ml = new MLContext();
        var refused = new (string Option, string Value, ResNetClassifierEstimator.Options Options)[]
        {
            ("EmaDecay", "0.999", new() { FreezeBackbone = true, EmaDecay = 0.999 }),
            ("Precision", "bf16", new() { FreezeBackbone = true, Precision = "bf16" }),
            ("LabelSmoothing", "0.1", new() { FreezeBackbone = true, LabelSmoothing = 0.1 }),
            ("Nesterov", "true", new() { FreezeBackbone = true, Nesterov = true }),
            ("TrunkLearningRateFactor", "0.1", new() { FreezeBackbone = true, TrunkLearningRateFactor = 0.1 }),
            ("DecayNormAndBias", "false", new() { FreezeBackbone = true, DecayNormAndBias = false }),
            ("Augmentation", Augmentation.None.ToString()!, new() { FreezeBackbone = true, Augmentation = Augmentation.None }),
        };
        foreach (var (option, value, options) in refused)
        {
            var ex = Assert.Throws<InvalidTrainingOptionException>(() => ml.Transforms.ResNetClassifier(options with { WorkspaceFolder = _workspace }));
            Assert.Equal(option, ex.Option);
            Assert.Equal(value, ex.Value);
            Assert.Contains("FreezeBackbone = false", ex.Message);
        }
        Assert.Empty(CacheFiles());
        // The same options train the whole network; head-only training takes momentum and weight decay.
        foreach (var (_, _, options) in refused) _ = ml.Transforms.ResNetClassifier(options with { FreezeBackbone = false });
        _ = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options { FreezeBackbone = true, Momentum = 0.5, WeightDecay = 0.01 });
    }

    [Fact]
    public void HeadOnlyTraining_UsesTheGivenMomentumAndWeightDecay()
    {
        var defaults = FitHeadOnly();
        var again = FitHeadOnly(momentum: 0.9, weightDecay: 1e-4); // the head's defaults, given explicitly: the same head
        AssertSameHead(defaults, again);
        var changed = FitHeadOnly(momentum: 0.0, weightDecay: 0.5);
        Assert.Equal(3, changed.History.Count);
        // Same features and first step; from the second step on the update differs, so the epoch losses do.
        Assert.NotEqual(defaults.History[^1].TrainLoss, changed.History[^1].TrainLoss);
    }

    private sealed class Notes(List<string> sink) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            if (value.Message is null) return;
            if (value.Kind == ProgressKind.Message) lock (sink) sink.Add(value.Message);
            if (value.Kind == ProgressKind.Warning) lock (sink) sink.Add("Warning: " + value.Message);
        }
    }
}
