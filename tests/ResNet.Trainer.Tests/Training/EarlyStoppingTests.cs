using Net = ResNet.Trainer.Models.ResNetModel;
using TrainLoop = ResNet.Trainer.Training.ResNetTrainer;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Training;

namespace ResNet.Trainer.Tests.Training;

public class EarlyStoppingTests
{
    private static EvaluationReport Report(double loss, double error) => new(10, loss, error, 0, ["a"], [1 - error], [[10]]);

    [Fact]
    public void Improves_NeedsMoreThanMinDelta_OnTheChosenMetric()
    {
        var byError = new TrainingOptions { EarlyStoppingMinDelta = 0.05 };
        Assert.True(EarlyStopping.Improves(Report(9, 0.5), double.PositiveInfinity, byError));   // the first epoch always counts
        Assert.False(EarlyStopping.Improves(Report(0.1, 0.46), 0.5, byError));                   // 0.04 better: within MinDelta
        Assert.True(EarlyStopping.Improves(Report(9, 0.44), 0.5, byError));                      // 0.06 better
        var byLoss = byError with { EarlyStoppingMetric = EarlyStoppingMetric.ValidationLoss };
        Assert.Equal(1.25, EarlyStopping.Metric(Report(1.25, 0.9), byLoss));
        Assert.True(EarlyStopping.Improves(Report(1.25, 0.9), 1.5, byLoss));
        Assert.False(EarlyStopping.Improves(Report(1.48, 0.1), 1.5, byLoss));
    }

    [Fact]
    public void Training_WithAMinDeltaNoEpochCanBeat_StopsAfterPatienceEpochs_KeepingTheFirst()
    {
        var data = TestData.Fashion(5);
        using var model = new Net(ResNetSpec.Cifar(1) with { InputChannels = 1, NumClasses = 10 }, seed: 2);
        var options = new TrainingOptions
        {
            Length = TrainingLength.Epochs(10), BatchSize = 20, LearningRate = 0.05, Schedule = new ConstantSchedule(), ImageSize = 16, Workers = 1, Threads = 2, Seed = 5,
            Normalization = NormalizationKind.PerChannel, ValidationFraction = 0.2, EarlyStoppingPatience = 2,
            EarlyStoppingMinDelta = 1.0, EarlyStoppingMetric = EarlyStoppingMetric.ValidationError,   // an error cannot drop by more than 1
        };
        var result = TrainLoop.Train(model, data, options: options);
        Assert.Equal(StopReason.EarlyStopped, result.Stop);
        Assert.Equal(3, result.History.Count);
        Assert.Equal(1, result.BestEpoch);
    }
}
