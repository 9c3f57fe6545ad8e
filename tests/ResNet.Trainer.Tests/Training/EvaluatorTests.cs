using Net = ResNet.Trainer.Models.ResNetModel;
using TrainLoop = ResNet.Trainer.Training.ResNetTrainer;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Training;
using static TorchSharp.torch;

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

    [Fact]
    public void FlipTestTimeAugmentation_ScoresTheSoftmaxOfTheMeanOfTheTwoViewsLogits_MirroredBeforeNormalization()
    {
        var data = TestData.Fashion(2, train: false); // 20 images
        var (model, raw, pipeline) = TrainedALittle();
        using var _ = model;

        var flipped = Evaluator.Evaluate(model, data, pipeline, new EvaluationOptions { FlipTestTimeAugmentation = true, BatchSize = 8 });
        var single = Evaluator.Evaluate(model, data, pipeline, new EvaluationOptions { BatchSize = 8 });

        // By hand: each view prepared on its own and scored in its own pass.
        int len = 28 * 28;
        var (plain, mirror) = (new float[data.Count * len], new float[data.Count * len]);
        for (int i = 0; i < data.Count; i++)
        {
            var view = plain.AsSpan(i * len, len);
            raw.Eval(data.Load(i), view);
            for (int row = 0; row < 28; row++)
            {
                var m = mirror.AsSpan(i * len + row * 28, 28);
                view.Slice(row * 28, 28).CopyTo(m);
                m.Reverse();
            }
            pipeline.Normalization!.Apply(view, 28, 28);
            pipeline.Normalization.Apply(mirror.AsSpan(i * len, len), 28, 28);
        }
        model.eval();
        using var scope = NewDisposeScope();
        double loss;
        int wrong;
        using (no_grad())
            (loss, wrong) = LossAndErrors((model.forward(tensor(plain, [data.Count, 1, 28, 28])) + model.forward(tensor(mirror, [data.Count, 1, 28, 28]))) / 2, data);
        Assert.Equal(20, flipped.Count);
        Assert.Equal(loss, flipped.Loss, 5);
        Assert.Equal(wrong / 20.0, flipped.Top1Error, 12);
        Assert.True(Math.Abs(flipped.Loss - single.Loss) > 1e-4, $"flip TTA changed nothing: loss {flipped.Loss} and {single.Loss}");
    }

    [Fact]
    public void FlipTestTimeAugmentation_WithTenCropOrMultiScale_IsRefusedNamingTheOption()
    {
        using var model = new Net(ResNetSpec.Cifar(1) with { InputChannels = 1, NumClasses = 10 }, seed: 9);
        var pipeline = new ImagePipeline(1, 28, 28, null, Augmentation.None);
        foreach (var mode in new[] { TestMode.TenCrop, TestMode.MultiScale })
        {
            var ex = Assert.Throws<ArgumentException>(() => Evaluator.Evaluate(model, TestData.Fashion(1), pipeline, new EvaluationOptions { Mode = mode, FlipTestTimeAugmentation = true }));
            Assert.Contains(nameof(EvaluationOptions.FlipTestTimeAugmentation), ex.Message);
            Assert.Contains(mode.ToString(), ex.Message);
        }
    }

    [Fact]
    public void ShiftTestTimeAugmentation_AveragesTheLogitsOfTheImageMovedEachWay_AndOfTheMirrors()
    {
        var data = TestData.Fashion(2, train: false); // 20 images
        var (model, raw, pipeline) = TrainedALittle();
        using var _ = model;

        var shifted = Evaluator.Evaluate(model, data, pipeline, new EvaluationOptions { ShiftTestTimeAugmentation = 2, FlipTestTimeAugmentation = true, BatchSize = 8 });
        var flipOnly = Evaluator.Evaluate(model, data, pipeline, new EvaluationOptions { FlipTestTimeAugmentation = true, BatchSize = 8 });

        // By hand: the content moved by 2 pixels down, up, right and left (zeros shifted in), each also mirrored: 10 views.
        const int s = 2, len = 28 * 28;
        (int Down, int Right)[] moves = [(0, 0), (s, 0), (-s, 0), (0, s), (0, -s)];
        model.eval();
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        using (no_grad())
        {
            foreach (bool mirror in new[] { false, true })
                foreach (var (down, right) in moves)
                {
                    var views = new float[data.Count * len];
                    var original = new float[len];
                    for (int i = 0; i < data.Count; i++)
                    {
                        raw.Eval(data.Load(i), original);
                        for (int y = 0; y < 28; y++)
                            for (int x = 0; x < 28; x++)
                            {
                                int sy = y - down, sx = (mirror ? 27 - x : x) - right;
                                views[i * len + y * 28 + x] = sy is >= 0 and < 28 && sx is >= 0 and < 28 ? original[sy * 28 + sx] : 0f;
                            }
                        pipeline.Normalization!.Apply(views.AsSpan(i * len, len), 28, 28);
                    }
                    var logits = model.forward(tensor(views, [data.Count, 1, 28, 28]));
                    sum = sum is null ? logits : sum + logits;
                }
        }
        var (loss, wrong) = LossAndErrors(sum! / 10, data);
        Assert.Equal(20, shifted.Count);
        Assert.Equal(loss, shifted.Loss, 5);
        Assert.Equal(wrong / 20.0, shifted.Top1Error, 12);
        Assert.True(Math.Abs(shifted.Loss - flipOnly.Loss) > 1e-4, $"shift TTA changed nothing: loss {shifted.Loss} and {flipOnly.Loss}");
    }

    [Theory]
    [InlineData(-1, TestMode.Single, "from 0 to 14")]
    [InlineData(15, TestMode.Single, "from 0 to 14")]
    [InlineData(1, TestMode.TenCrop, "TenCrop")]
    [InlineData(1, TestMode.MultiScale, "MultiScale")]
    public void ShiftTestTimeAugmentation_OutOfRangeOrWithAnotherMode_IsRefusedNamingTheOption(int pixels, TestMode mode, string rule)
    {
        using var model = new Net(ResNetSpec.Cifar(1) with { InputChannels = 1, NumClasses = 10 }, seed: 9);
        var pipeline = new ImagePipeline(1, 28, 28, null, Augmentation.None);
        var ex = Assert.Throws<ArgumentException>(() => Evaluator.Evaluate(model, TestData.Fashion(1), pipeline,
            new EvaluationOptions { Mode = mode, ShiftTestTimeAugmentation = pixels }));
        Assert.Contains(nameof(EvaluationOptions.ShiftTestTimeAugmentation), ex.Message);
        Assert.Contains(rule, ex.Message);
    }

    // A small net trained a little on unnormalized-then-per-pixel-normalized images, so that views of an image disagree.
    // A per-pixel mean image is neither mirror- nor shift-symmetric: taking a view after normalization would give other numbers.
    private static (Net Model, ImagePipeline Raw, ImagePipeline Pipeline) TrainedALittle()
    {
        var raw = new ImagePipeline(1, 28, 28, null, Augmentation.None);
        var pipeline = raw with { Normalization = Normalization.Compute(TestData.Fashion(3), raw, NormalizationKind.PerPixel) };
        var model = new Net(ResNetSpec.Cifar(1) with { InputChannels = 1, NumClasses = 10 }, seed: 9);
        TrainLoop.Train(model, TestData.Fashion(3), options: new TrainingOptions
        {
            Length = TrainingLength.Epochs(2), BatchSize = 10, LearningRate = 0.05, Schedule = new ConstantSchedule(), Augmentation = Augmentation.None,
            FixedNormalization = pipeline.Normalization, Threads = 2, KeepBest = false,
        });
        return (model, raw, pipeline);
    }

    // The mean cross-entropy of the softmax of averaged logits, and how many images it gets wrong, computed by hand.
    private static (double Loss, int Wrong) LossAndErrors(Tensor meanLogits, IImageSource data)
    {
        var probabilities = nn.functional.softmax(meanLogits, 1).to(ScalarType.Float64).data<double>().ToArray();
        double loss = 0;
        int wrong = 0;
        for (int i = 0; i < data.Count; i++)
        {
            var row = probabilities.AsSpan(i * 10, 10);
            int truth = (int)data.LabelOf(i), best = 0;
            for (int j = 1; j < 10; j++) if (row[j] > row[best]) best = j;
            if (best != truth) wrong++;
            loss -= Math.Log(row[truth]);
        }
        return (loss / data.Count, wrong);
    }
}
