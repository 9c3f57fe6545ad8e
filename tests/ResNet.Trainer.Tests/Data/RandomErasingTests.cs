using System.Text.Json;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Tests.Peers;
using ResNet.Trainer.Training;
using Xunit.Abstractions;

namespace ResNet.Trainer.Tests.Data;

/// <summary>Random erasing (TrainingOptions.RandomErasing): torchvision's box statistics, zero (the mean) inside, the rest untouched.</summary>
public class RandomErasingTests(ITestOutputHelper log)
{
    /// <summary>The erased box of a normalized output, found from its zeros; checks that they form one rectangle, the same in every channel.</summary>
    private static (int Top, int Left, int Height, int Width)? ErasedBox(float[] chw, int channels, int height, int width)
    {
        int top = height, left = width, bottom = -1, right = -1, zeros = 0;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                if (chw[y * width + x] == 0f)
                {
                    zeros++;
                    top = Math.Min(top, y); bottom = Math.Max(bottom, y); left = Math.Min(left, x); right = Math.Max(right, x);
                }
        if (zeros == 0) return null;
        int h = bottom - top + 1, w = right - left + 1;
        Assert.Equal(h * w, zeros); // the zeros fill their bounding box: one rectangle
        for (int c = 1; c < channels; c++)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    Assert.Equal(y >= top && y <= bottom && x >= left && x <= right, chw[(c * height + y) * width + x] == 0f);
        return (top, left, h, w);
    }

    [Fact]
    public void ErasedBoxes_HaveTorchvisionsAreaAndRatioStatistics()
    {
        const int size = 28, draws = 20_000;
        var theirs = JsonDocument.Parse(PythonPeer.Run(PythonPeer.Script("torchvision_random_erasing.py"), $"{size}", $"{size}", $"{draws}")).RootElement;
        var pixels = Enumerable.Repeat((byte)200, size * size * 3).ToArray(); // no pixel is 0 before erasing
        var pipeline = new ImagePipeline(3, size, size, null, Augmentation.None, RandomErasing: 1);
        var output = new float[pipeline.SampleLength];
        var rng = new Random(4);
        var shares = new List<double>();
        double logRatios = 0;
        for (int i = 0; i < draws; i++)
        {
            pipeline.Train(new RawImage(pixels, size, size, 3), output, rng);
            if (ErasedBox(output, 3, size, size) is not (_, _, var h, var w)) continue;
            Assert.True(h < size && w < size, $"a {h}x{w} box spans a side");
            shares.Add((double)h * w / (size * size));
            logRatios += Math.Log((double)h / w);
        }
        double found = (double)shares.Count / draws, mean = shares.Average(), std = Math.Sqrt(shares.Select(s => (s - mean) * (s - mean)).Average());
        log.WriteLine($"found {found:F4} (torchvision {theirs.GetProperty("found").GetDouble():F4}); area share mean {mean:F4} std {std:F4} " +
            $"(torchvision {theirs.GetProperty("mean_share").GetDouble():F4}, {theirs.GetProperty("std_share").GetDouble():F4}); " +
            $"mean log h/w {logRatios / shares.Count:F4} (torchvision {theirs.GetProperty("mean_log_ratio").GetDouble():F4})");
        // Rounding the sides to pixels moves shares a little past 0.02-0.33.
        Assert.All(shares, s => Assert.InRange(s, 0.015, 0.36));
        Assert.InRange(found - theirs.GetProperty("found").GetDouble(), -0.01, 0.01);
        // 20,000 draws each: the means' standard errors are about 0.0006 (share) and 0.005 (log ratio, spread 0.69).
        Assert.InRange(mean - theirs.GetProperty("mean_share").GetDouble(), -0.005, 0.005);
        Assert.InRange(std - theirs.GetProperty("std_share").GetDouble(), -0.005, 0.005);
        Assert.InRange(logRatios / shares.Count - theirs.GetProperty("mean_log_ratio").GetDouble(), -0.03, 0.03);
    }

    [Fact]
    public void ErasingSetsTheBoxToTheMean_LeavesTheRestAsTheAugmentationMadeIt_AndHitsAboutItsShareOfImages()
    {
        var data = TestData.Fashion(10);
        var raw = new ImagePipeline(1, 28, 28, null, Augmentation.Cifar);
        var plain = raw with { Normalization = Normalization.Compute(data, raw, NormalizationKind.PerChannel) };
        var erasing = plain with { RandomErasing = 0.5 };
        var a = new float[plain.SampleLength];
        var b = new float[plain.SampleLength];
        int erased = 0;
        const int draws = 2_000;
        for (int i = 0; i < draws; i++)
        {
            var image = data.Load(i % data.Count);
            // The same seed draws the same crop and flip; erasing draws after them.
            plain.Train(image, a, new Random(i));
            erasing.Train(image, b, new Random(i));
            var box = ErasedBox(b, 1, 28, 28);
            if (box is (var top, var left, var h, var w))
            {
                erased++;
                for (int y = 0; y < 28; y++)
                    for (int x = 0; x < 28; x++)
                        if (y < top || y >= top + h || x < left || x >= left + w) Assert.Equal(a[y * 28 + x], b[y * 28 + x]);
            }
            else Assert.Equal(a, b);
        }
        log.WriteLine($"erased {erased} of {draws}");
        Assert.InRange(erased, draws / 2 - 90, draws / 2 + 90); // binomial(2000, 1/2): 4 standard deviations

        // Evaluation never erases.
        erasing.Eval(data.Load(3), b);
        plain.Eval(data.Load(3), a);
        Assert.Equal(a, b);
    }

    [Fact]
    public void TheTrainer_ErasesWhenAsked_AndOnlyThen()
    {
        var data = TestData.Fashion(4);
        var spec = ResNetSpec.Cifar(1) with { InputChannels = 1, NumClasses = 10 };
        var options = new TrainingOptions
        {
            Length = TrainingLength.Epochs(1), BatchSize = 20, LearningRate = 0.05, Schedule = new ConstantSchedule(), Augmentation = Augmentation.None,
            Normalization = NormalizationKind.PerChannel, ImageSize = 16, Workers = 1, Threads = 2, Seed = 5, KeepBest = false,
        };
        double Loss(TrainingOptions o)
        {
            using var model = new ResNetModel(spec, seed: 1);
            return ResNetTrainer.Train(model, data, options: o).History[0].TrainLoss;
        }
        double none = Loss(options), again = Loss(options with { RandomErasing = 0 }), erased = Loss(options with { RandomErasing = 1 });
        log.WriteLine($"first-epoch loss: {none:R} without erasing, {erased:R} erasing every image");
        Assert.Equal(none, again); // the same run, to the bit
        Assert.NotEqual(none, erased);
    }
}
