using Net = ResNet.Trainer.Models.ResNetModel;
using TrainLoop = ResNet.Trainer.Training.ResNetTrainer;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Training;

namespace ResNet.Trainer.Tests.Training;

public class EvaluatorTests
{
    [Fact]
    public void AllModes_CountEveryImage_AndTheConfusionMatrixAddsUp()
    {
        var data = TestData.Fashion(3);
        using var model = new Net(ResNetSpec.Cifar(1) with { InputChannels = 1, NumClasses = 10 }, seed: 9);
        var pipeline = new ImagePipeline(1, 28, 28, Normalization.Identity(1), Augmentation.Cifar);
        foreach (var mode in new[] { TestMode.Single, TestMode.TenCrop, TestMode.MultiScale })
        {
            var report = Evaluator.Evaluate(model, data, pipeline, new EvaluationOptions { Mode = mode, BatchSize = 8 });
            Assert.Equal(30, report.Count);
            Assert.Equal(30, report.ConfusionMatrix.Sum(r => r.Sum()));
            Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(3, report.ConfusionMatrix[c].Sum()));
            Assert.Equal(1 - report.ConfusionMatrix.Select((r, i) => r[i]).Sum() / 30.0, report.Top1Error, 12);
            Assert.True(report.Top5Error <= report.Top1Error);
            Assert.InRange(report.Loss, 0.5, 10);
            Assert.Contains("Ankle_boot", report.FormatConfusionMatrix());
        }
    }

    [Fact]
    public void MultiScale_RejectsNothingAboutSize_PerPixelMeanIsResampled()
    {
        var data = TestData.Fashion(1);
        var raw = new ImagePipeline(1, 28, 28, null, Augmentation.None);
        var pipeline = raw with { Normalization = Normalization.Compute(data, raw, NormalizationKind.PerPixel) };
        using var model = new Net(ResNetSpec.Cifar(1) with { InputChannels = 1, NumClasses = 10 }, seed: 9);
        var report = Evaluator.Evaluate(model, data, pipeline, new EvaluationOptions { Mode = TestMode.MultiScale, Scales = [20, 28, 40] });
        Assert.Equal(10, report.Count);
    }
}
