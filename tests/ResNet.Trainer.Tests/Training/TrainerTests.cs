using Net = ResNet.Trainer.Models.ResNetModel;
using TrainLoop = ResNet.Trainer.Training.Trainer;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Training;
using static TorchSharp.torch;

namespace ResNet.Trainer.Tests.Training;

public class TrainerTests
{
    // ResNet-8 (n = 1) on 1-channel images: the smallest member of the CIFAR family, quick on two cores.
    private static ResNetSpec Tiny(int classes = 10) => ResNetSpec.Cifar(1) with { InputChannels = 1, NumClasses = classes };

    private static TrainingOptions Quick => new()
    {
        Epochs = 2, BatchSize = 20, LearningRate = 0.05, Schedule = new ConstantSchedule(), Augmentation = Augmentation.Cifar,
        Normalization = NormalizationKind.PerChannel, ImageSize = 16, Workers = 1, Threads = 2, Seed = 5,
    };

    [Fact]
    public void OneSgdStepOnAFixedBatch_LowersTheLoss()
    {
        var data = TestData.Fashion(4);
        using var model = new Net(Tiny(), seed: 1);
        var pipeline = new ImagePipeline(1, 28, 28, Normalization.Compute(data, new ImagePipeline(1, 28, 28, null, Augmentation.None), NormalizationKind.PerChannel), Augmentation.None);
        var batch = new BatchLoader(data, pipeline, new LoaderOptions { BatchSize = 40, Shuffle = false, Augment = false, Workers = 0 }).Epoch(0).Single();
        using var x = tensor(batch.Data, batch.Shape);
        using var y = tensor(batch.Labels);
        using var sgd = new Sgd(model.parameters(), 0.9, 1e-4, nesterov: false);
        model.train();
        float Loss()
        {
            using var scope = NewDisposeScope();
            return nn.functional.cross_entropy(model.forward(x), y).item<float>();
        }
        using (var scope = NewDisposeScope())
        {
            var loss = nn.functional.cross_entropy(model.forward(x), y);
            loss.backward();
            sgd.Step(0.1);
        }
        float before;
        using (var scope = NewDisposeScope())
        {
            // Recompute the "before" loss from a fresh copy at the same seed, so BN running stats do not matter.
            using var fresh = new Net(Tiny(), seed: 1);
            fresh.train();
            before = nn.functional.cross_entropy(fresh.forward(x), y).item<float>();
        }
        float after = Loss();
        Assert.InRange(before, 1.8f, 3.5f); // about ln 10 = 2.30 at initialisation
        Assert.True(after < before - 0.01f, $"loss {before} -> {after}");
    }

    [Fact]
    public void TinyBatch_IsMemorisedToFullTrainingAccuracy()
    {
        var data = TestData.Fashion(2); // 20 images, 2 per class
        using var model = new Net(Tiny(), seed: 3);
        var options = Quick with { Epochs = 80, BatchSize = 20, Augmentation = Augmentation.None, WeightDecay = 0, LearningRate = 0.05, ImageSize = 28 };
        var result = TrainLoop.Train(model, data, options: options);
        Assert.Equal(80, result.History.Count);
        Assert.True(result.History[^1].TrainLoss < 0.05, $"final loss {result.History[^1].TrainLoss}");
        var report = Evaluator.Evaluate(model, data, result.Card.Pipeline);
        Assert.Equal(20, report.Count);
        Assert.Equal(0.0, report.Top1Error);
        Assert.Equal(Enumerable.Repeat(1.0, 10), report.PerClassAccuracy);
    }

    [Fact]
    public void Resume_AfterCancellationMidEpoch_GivesTheSamePerEpochLossesAsAnUninterruptedRun()
    {
        var data = TestData.Fashion(6); // 60 images: 3 batches of 20 per epoch
        var options = Quick with { Epochs = 3 };

        using var whole = new Net(Tiny(), seed: 11);
        var uninterrupted = TrainLoop.Train(whole, data, options: options with { CheckpointDirectory = TestData.TempDir() });

        string dir = TestData.TempDir();
        using var first = new Net(Tiny(), seed: 11);
        using var cancel = new CancellationTokenSource();
        // Cancel after the 5th iteration: in the middle of epoch 2.
        var stopper = new Inline(p => { if (p.Kind == ProgressKind.Iteration && p.Iteration == 5) cancel.Cancel(); });
        var part = TrainLoop.Train(first, data, options: options with { CheckpointDirectory = dir, ProgressEvery = 1 }, progress: stopper, cancellationToken: cancel.Token);
        Assert.Equal(StopReason.Cancelled, part.Stop);
        Assert.Single(part.History);
        Assert.True(File.Exists(Path.Combine(dir, TrainLoop.CheckpointFile)));

        using var second = new Net(Tiny(), seed: 999); // other initial weights: the checkpoint must replace them
        var resumed = TrainLoop.Train(second, data, options: options with { CheckpointDirectory = dir, Resume = true });
        Assert.Equal(StopReason.Completed, resumed.Stop);
        Assert.Equal(uninterrupted.History.Select(h => h.Iteration), resumed.History.Select(h => h.Iteration));
        Assert.Equal(uninterrupted.History.Select(h => h.TrainLoss), resumed.History.Select(h => h.TrainLoss));
        using var probe = randn(2, 1, 16, 16, generator: new Generator(1));
        whole.eval(); second.eval();
        Assert.True(whole.forward(probe).allclose(second.forward(probe)));
    }

    [Fact]
    public void Resume_FromAnotherArchitecture_IsAClearError()
    {
        var data = TestData.Fashion(2);
        string dir = TestData.TempDir();
        using (var small = new Net(Tiny(), seed: 1))
            TrainLoop.Train(small, data, options: Quick with { Epochs = 1, CheckpointDirectory = dir });
        long before = new FileInfo(Path.Combine(dir, TrainLoop.CheckpointFile)).Length;
        using var other = new Net(ResNetSpec.Cifar(2) with { InputChannels = 1, NumClasses = 10 });
        var ex = Assert.Throws<CheckpointMismatchException>(() => TrainLoop.Train(other, data, options: Quick with { CheckpointDirectory = dir, Resume = true }));
        Assert.Contains("resnet8", ex.Message);
        Assert.Contains("resnet14", ex.Message);
        Assert.Equal(before, new FileInfo(Path.Combine(dir, TrainLoop.CheckpointFile)).Length);
    }

    [Fact]
    public void NaNLoss_StopsWithAMessage_AndKeepsTheLastGoodCheckpoint()
    {
        var data = TestData.Fashion(4);
        string dir = TestData.TempDir();
        using var model = new Net(Tiny(), seed: 1);
        // Epoch 1 at a sane rate writes a checkpoint; then the one-cycle peak of 1e12 blows the weights up.
        var options = Quick with { Epochs = 6, CheckpointDirectory = dir, LearningRate = 1e12, Schedule = new StepsAtEpochs([1], Gamma: 1), Warmup = new LinearWarmup(2, StartFactor: 1e-13) };
        var ex = Assert.Throws<TrainingDivergedException>(() => TrainLoop.Train(model, data, options: options));
        Assert.Contains("lower learning rate", ex.Message);
        Assert.Equal(Path.Combine(dir, TrainLoop.CheckpointFile), ex.LastGoodCheckpoint);
        Assert.Contains(ex.LastGoodCheckpoint!, ex.Message);
        using var check = new Net(Tiny());
        var resumed = TrainLoop.Train(check, data, options: options with { Resume = true, Epochs = 1, LearningRate = 0.01 });
        Assert.True(resumed.History.All(h => double.IsFinite(h.TrainLoss)));
    }

    [Fact]
    public void AFailedCheckpointWrite_LeavesTheLastGoodCheckpointIntact()
    {
        var data = TestData.Fashion(2);
        string dir = TestData.TempDir();
        using var model = new Net(Tiny(), seed: 1);
        TrainLoop.Train(model, data, options: Quick with { Epochs = 1, CheckpointDirectory = dir });
        string path = Path.Combine(dir, TrainLoop.CheckpointFile);
        byte[] good = File.ReadAllBytes(path);
        Directory.CreateDirectory(AtomicFile.TemporaryPath(path)); // the temporary file cannot be created: as when the disk is full
        var ex = Assert.Throws<IOException>(() => TrainLoop.Train(model, data, options: Quick with { Epochs = 2, CheckpointDirectory = dir, Resume = true }));
        Assert.Contains("previous checkpoint there is unchanged", ex.Message);
        Assert.Equal(good, File.ReadAllBytes(path));
    }

    [Fact]
    public void ValidationFraction_TracksBestEpochAndEarlyStops()
    {
        var data = TestData.Fashion(10);
        using var model = new Net(Tiny(), seed: 2);
        var messages = new List<string>();
        var result = TrainLoop.Train(model, data, options: Quick with { Epochs = 40, ValidationFraction = 0.2, EarlyStoppingPatience = 2, LearningRate = 0.2 },
            progress: new Inline(p => { if (p.Message is { } m) messages.Add(m); }));
        Assert.All(result.History, h => Assert.NotNull(h.ValidationError));
        Assert.InRange(result.BestEpoch, 1, result.History.Count);
        Assert.Equal(result.History.Min(h => h.ValidationError), result.History[result.BestEpoch - 1].ValidationError);
        if (result.Stop == StopReason.EarlyStopped)
        {
            Assert.Equal(result.BestEpoch + 2, result.History.Count);
            Assert.Contains(messages, m => m.StartsWith("Early stop"));
        }
        else Assert.Equal(40, result.History.Count);
    }

    [Fact]
    public void Devices_CudaWithoutAGpu_IsAClearError_AutoFallsBackWithALog()
    {
        var ex = Assert.Throws<DeviceUnavailableException>(() => Devices.Resolve("cuda:0"));
        Assert.Contains("--device cpu", ex.Message);
        string? log = null;
        Assert.Equal(TorchSharp.DeviceType.CPU, Devices.Resolve("auto", m => log = m).type);
        Assert.Contains("CPU", log);
        Assert.Throws<ArgumentException>(() => Devices.Resolve("tpu"));
    }

    [Fact]
    public void Schedules_MatchThePapersStepsAndTheCurvesShapes()
    {
        var paper = Recipes.PaperCifar();
        double At(LearningRateSchedule s, long i) => s.Factor(new ScheduleClock(i, 64_000, 0));
        Assert.Equal(1, At(paper.Schedule, 31_999));
        Assert.Equal(0.1, At(paper.Schedule, 32_000), 12);
        Assert.Equal(0.01, At(paper.Schedule, 48_000), 12);
        Assert.Equal(64_000, paper.MaxIterations);
        Assert.Equal(0.5, At(new CosineSchedule(), 32_000), 12);
        var cycle = new OneCycleSchedule(PeakAt: 0.25, StartFactor: 0.04, FinalFactor: 0);
        Assert.Equal(0.04, At(cycle, 0), 12);
        Assert.Equal(1, At(cycle, 16_000), 12);
        Assert.Equal(0, At(cycle, 64_000), 12);
        Assert.Equal(0.01, new StepsAtProgress([0.5, 0.75]).Factor(new ScheduleClock(75, 100, 0)), 12);
        Assert.Equal(new StepsAtIterations([32000, 48000]).Milestones, ((StepsAtIterations)LearningRateSchedule.Parse("steps:32000,48000")).Milestones);
        Assert.IsType<WarmupUntilTrainError>(Recipes.PaperCifar(ResNetSpec.ResNet110()).Warmup);
        Assert.Null(Recipes.PaperCifar(ResNetSpec.ResNet56()).Warmup);
        Assert.Throws<UnknownRecipeException>(() => Recipes.Get("paper-mnist"));
    }

    [Fact]
    public void WarmupUntilTrainError_HoldsTheLowRateUntilTheErrorFalls()
    {
        var data = TestData.Fashion(10);
        using var model = new Net(Tiny(), seed: 4);
        var rates = new List<(long It, double Lr)>();
        var messages = new List<string>();
        TrainLoop.Train(model, data, options: Quick with { Epochs = 6, Warmup = new WarmupUntilTrainError(LearningRate: 0.01, ErrorBelow: 0.8, Window: 3), ProgressEvery = 1, LearningRate = 0.1 },
            progress: new Inline(p => { if (p.Kind == ProgressKind.Iteration) rates.Add((p.Iteration, p.LearningRate)); if (p.Message is { } m) messages.Add(m); }));
        Assert.Equal(0.01, rates[0].Lr, 12);
        Assert.Contains(messages, m => m.StartsWith("Warm-up done"));
        Assert.Equal(0.1, rates[^1].Lr, 12);
    }

    [Fact]
    public void ModelCard_SaveAndLoad_GivesTheSameOutputs()
    {
        var data = TestData.Fashion(2);
        using var model = new Net(Tiny(), seed: 6);
        var result = TrainLoop.Train(model, data, options: Quick with { Epochs = 1 });
        string path = Path.Combine(TestData.TempDir(), "model.dat");
        result.Card.Save(model, path);
        var (loaded, card) = ModelCard.Load(path);
        using var _ = loaded;
        Assert.Equal(result.Card.ClassNames, card.ClassNames);
        Assert.Equal(result.Card.Normalization.Mean, card.Normalization.Mean);
        Assert.Equal("resnet8", card.Spec.Name);
        var a = Evaluator.Evaluate(model, data, card.Pipeline);
        var b = Evaluator.Evaluate(loaded, data, card.Pipeline);
        Assert.Equal(a.Loss, b.Loss, 6);
    }

    private sealed class Inline(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}
