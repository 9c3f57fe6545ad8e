using Net = ResNet.Trainer.Models.ResNetModel;
using TrainLoop = ResNet.Trainer.Training.ResNetTrainer;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Training;
using static TorchSharp.torch;

namespace ResNet.Trainer.Tests.Training;

/// <summary>TrainingOptions.EmaDecay: the moving average of the weights, on real (small) trainings.</summary>
public class WeightAverageTests
{
    private static ResNetSpec Tiny => ResNetSpec.Cifar(1) with { InputChannels = 1, NumClasses = 10 };

    // 60 images in batches of 20: three SGD steps per epoch.
    private static TrainingOptions Quick => new()
    {
        Length = TrainingLength.Epochs(1), BatchSize = 20, LearningRate = 0.05, Schedule = new ConstantSchedule(), Augmentation = Augmentation.Cifar,
        Normalization = NormalizationKind.PerChannel, ImageSize = 16, Workers = 1, Threads = 2, Seed = 5, KeepBest = false,
    };

    [Fact]
    public void AfterThreeSteps_TheReturnedModelIsTheWarmedUpAverage_OfTheLiveWeightsAndStatistics()
    {
        var data = TestData.Fashion(6);
        using var model = new Net(Tiny, seed: 4);
        var snapshots = new List<Dictionary<string, double[]>> { Snapshot(model) }; // the initial weights, then after each step
        var record = new Inline(p => { if (p.Kind == ProgressKind.Iteration) snapshots.Add(Snapshot(model)); });
        var result = TrainLoop.Train(model, data, options: Quick with { Length = TrainingLength.Iterations(3), EmaDecay = 0.2, ProgressEvery = 1 }, progress: record);

        Assert.Equal(4, snapshots.Count);
        // d_t = min(0.2, (1 + t) / (10 + t)) for t = 0, 1, 2: the warm-up gives 0.1 and 2/11, then the decay itself caps it.
        double[] decays = [0.1, 2.0 / 11, 0.2];
        Assert.Equal(decays, Enumerable.Range(0, 3).Select(t => WeightAverage.DecayAt(0.2, t)));
        var averaged = Snapshot(result.Model);
        var live = snapshots[3];
        double worst = 0, apart = 0;
        foreach (var (key, initial) in snapshots[0])
        {
            var expected = (double[])initial.Clone();
            if (key.EndsWith("num_batches_tracked", StringComparison.Ordinal)) expected = live[key]; // counts are copied, not averaged
            else
                for (int t = 0; t < 3; t++)
                    for (int i = 0; i < expected.Length; i++) expected[i] = decays[t] * expected[i] + (1 - decays[t]) * snapshots[t + 1][key][i];
            worst = Math.Max(worst, expected.Zip(averaged[key], (e, a) => Math.Abs(e - a)).Max());
            apart = Math.Max(apart, live[key].Zip(averaged[key], (l, a) => Math.Abs(l - a)).Max());
        }
        Assert.True(worst <= 1e-6, $"max |hand-computed average - returned weights| = {worst}");
        Assert.True(apart > 1e-3, $"the returned weights are the live ones (max difference {apart})"); // the average is not a copy of the last step
        Assert.Equal(3, (int)averaged["bn1.num_batches_tracked"][0]);
    }

    [Fact]
    public void Validation_ScoresTheAveragedWeights_TheModelTheRunReturns()
    {
        var data = TestData.Fashion(6);
        var validation = TestData.Fashion(2, train: false);
        using var model = new Net(Tiny, seed: 6);
        var result = TrainLoop.Train(model, data, validation, Quick with { Length = TrainingLength.Epochs(2), EmaDecay = 0.5 });
        var report = Evaluator.Evaluate(result.Model, validation, result.Card.Pipeline, new EvaluationOptions { BatchSize = Quick.EvaluationBatchSize });
        Assert.Equal(report.Loss, result.History[^1].ValidationLoss!.Value, 6);
        Assert.Equal(report.Top1Error, result.History[^1].ValidationError!.Value, 12);
    }

    [Fact]
    public void Resume_AfterCancellationMidEpoch_ContinuesTheAverage_ExactlyAsAnUninterruptedRun()
    {
        var data = TestData.Fashion(6);
        var options = Quick with { Length = TrainingLength.Epochs(3), EmaDecay = 0.7 };

        using var whole = new Net(Tiny, seed: 11);
        TrainLoop.Train(whole, data, options: options with { CheckpointDirectory = TestData.TempDir() });

        string dir = TestData.TempDir();
        using var first = new Net(Tiny, seed: 11);
        using var cancel = new CancellationTokenSource();
        var stopper = new Inline(p => { if (p.Kind == ProgressKind.Iteration && p.Iteration == 5) cancel.Cancel(); }); // mid epoch 2
        var part = TrainLoop.Train(first, data, options: options with { CheckpointDirectory = dir, ProgressEvery = 1 }, progress: stopper, cancellationToken: cancel.Token);
        Assert.Equal(StopReason.Cancelled, part.Stop);

        using var second = new Net(Tiny, seed: 999); // other initial weights: the checkpoint must replace them and the average
        var resumed = TrainLoop.Train(second, data, options: options with { CheckpointDirectory = dir, Resume = true });
        Assert.Equal(StopReason.Completed, resumed.Stop);
        var expected = Snapshot(whole);
        var actual = Snapshot(second);
        double worst = expected.Max(kv => kv.Value.Zip(actual[kv.Key], (e, a) => Math.Abs(e - a)).Max());
        Assert.True(worst <= 1e-6, $"max |uninterrupted - resumed| averaged weight = {worst}");
    }

    [Fact]
    public void ResumingARunThatKeptNoAverage_StartsTheAverageAtTheResumedWeights_AndSaysSo()
    {
        var data = TestData.Fashion(6);
        string dir = TestData.TempDir();
        using var first = new Net(Tiny, seed: 3);
        TrainLoop.Train(first, data, options: Quick with { CheckpointDirectory = dir });
        var notes = new List<string>();
        using var second = new Net(Tiny, seed: 3);
        var resumed = TrainLoop.Train(second, data, options: Quick with { Length = TrainingLength.Epochs(2), CheckpointDirectory = dir, Resume = true, EmaDecay = 0.9 },
            progress: new Inline(p => { if (p.Message is { } m) notes.Add(m); }));
        Assert.Equal(2, resumed.History.Count);
        Assert.Contains(notes, n => n.Contains("no moving average", StringComparison.Ordinal));
    }

    [Fact]
    public void ABadDecay_IsRefusedByTheTrainer_BeforeTraining()
    {
        using var model = new Net(Tiny, seed: 1);
        var before = Snapshot(model)["conv1.weight"];
        foreach (double bad in new[] { 0.0, 1.0, -0.1, double.NaN })
        {
            var ex = Assert.Throws<InvalidTrainingOptionException>(() => TrainLoop.Train(model, TestData.Fashion(1), options: Quick with { EmaDecay = bad }));
            Assert.Equal(nameof(TrainingOptions.EmaDecay), ex.Option);
            Assert.Contains("above 0 and below 1", ex.Message);
        }
        Assert.Equal(before, Snapshot(model)["conv1.weight"]);
    }

    private static Dictionary<string, double[]> Snapshot(Net model)
    {
        using var scope = NewDisposeScope();
        return model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().to(ScalarType.Float64).contiguous().data<double>().ToArray());
    }

    private sealed class Inline(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}
