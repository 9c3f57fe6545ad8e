using System.Text.Json;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Tests.Peers;
using ResNet.Trainer.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ResNet.Trainer.Tests.Training;

/// <summary>The fine-tuning recipe: torchvision's RandomResizedCrop + flip, a trunk rate below the head's, a short cosine schedule.</summary>
public class FineTuneRecipeTests(ITestOutputHelper log)
{
    [Fact]
    public void RandomResizedCrop_DrawsBoxesWithTorchvisionsAreaAndRatioStatistics()
    {
        const int height = 480, width = 640, draws = 20_000;
        var theirs = JsonDocument.Parse(PythonPeer.Run(PythonPeer.Script("torchvision_random_resized_crop.py"), $"{height}", $"{width}", $"{draws}")).RootElement;
        var rrc = new RandomResizedCropAugmentation();
        var rng = new Random(1);
        var shares = new double[draws];
        double logRatios = 0;
        for (int i = 0; i < draws; i++)
        {
            var (top, left, h, w) = rrc.SampleBox(height, width, rng);
            Assert.True(top >= 0 && left >= 0 && top + h <= height && left + w <= width, $"box ({top}, {left}, {h}, {w}) leaves the image");
            shares[i] = (double)h * w / (height * width);
            // Rounding the sides to pixels moves the share and ratio a little past the bounds.
            Assert.InRange(shares[i], 0.08 * 0.99, 1.0);
            Assert.InRange((double)w / h, 0.75 * 0.99, 4.0 / 3.0 * 1.01);
            logRatios += Math.Log((double)w / h);
        }
        double mean = shares.Average(), std = Math.Sqrt(shares.Select(s => (s - mean) * (s - mean)).Average());
        log.WriteLine($"area share: ours mean {mean:F4} std {std:F4}; torchvision mean {theirs.GetProperty("mean_share").GetDouble():F4} std {theirs.GetProperty("std_share").GetDouble():F4}; " +
            $"mean log ratio ours {logRatios / draws:F4}, torchvision {theirs.GetProperty("mean_log_ratio").GetDouble():F4}");
        // 20,000 draws each: the means' standard error is about 0.002 (share) and 0.001 (log ratio).
        Assert.InRange(mean - theirs.GetProperty("mean_share").GetDouble(), -0.01, 0.01);
        Assert.InRange(std - theirs.GetProperty("std_share").GetDouble(), -0.01, 0.01);
        Assert.InRange(logRatios / draws - theirs.GetProperty("mean_log_ratio").GetDouble(), -0.01, 0.01);
    }

    [Fact]
    public void RandomResizedCrop_GivesTheInputSizeFromAnyImage_AndFlipsAboutHalfTheTime()
    {
        // Brightness rises left to right: an unflipped crop is darker on its left, a flipped one on its right.
        const int w = 321, h = 239;
        var pixels = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                pixels[(y * w + x) * 3] = pixels[(y * w + x) * 3 + 1] = pixels[(y * w + x) * 3 + 2] = (byte)(x * 255 / (w - 1));
        var pipeline = new ImagePipeline(3, 224, 224, null, Augmentation.RandomResizedCrop);
        var output = new float[pipeline.SampleLength];
        var rng = new Random(3);
        int flipped = 0;
        const int draws = 200;
        for (int i = 0; i < draws; i++)
        {
            pipeline.Train(new RawImage(pixels, w, h, 3), output, rng);
            Assert.All(output, v => Assert.InRange(v, 0f, 1f));
            float left = 0, right = 0;
            for (int y = 0; y < 224; y++) { left += output[y * 224]; right += output[y * 224 + 223]; }
            Assert.NotEqual(left, right);
            if (left > right) flipped++;
        }
        log.WriteLine($"flipped {flipped} of {draws}");
        Assert.InRange(flipped, draws / 2 - 28, draws / 2 + 28); // binomial(200, 1/2): 4 standard deviations
    }

    [Fact]
    public void FineTuneGroups_StepTheHeadAtTheRate_AndTheTrunkAtItsShare()
    {
        using var model = new ResNetModel(ResNetSpec.Parse("resnet8") with { NumClasses = 3 }, seed: 2);
        using var sgd = Sgd.ForModel(model, momentum: 0, weightDecay: 0, nesterov: false, trunkFactor: 0.1);
        using var x = randn(4, 3, 16, 16, generator: manual_seed(5));
        using var y = tensor(new long[] { 0, 1, 2, 1 });
        using var loss = nn.functional.cross_entropy(model.forward(x), y);
        loss.backward();
        var before = sgd.Parameters.Select(p => p.detach().clone()).ToArray();
        var grads = sgd.Parameters.Select(p => p.grad!.clone()).ToArray();

        sgd.Step(0.5);

        var head = model.Classifier.parameters().ToHashSet(ReferenceEqualityComparer.Instance);
        Assert.Equal(2, head.Count);
        for (int i = 0; i < sgd.Parameters.Count; i++)
        {
            double expected = head.Contains(sgd.Parameters[i]) ? 0.5 : 0.05;
            Assert.Equal(expected, sgd.LastRates[i], 12);
            // Plain SGD: p moved by -rate * grad.
            using var moved = sgd.Parameters[i].detach() - before[i];
            using var want = grads[i] * -expected;
            Assert.True(moved.allclose(want, rtol: 1e-5, atol: 1e-7), $"parameter {i} did not move by -{expected} x its gradient");
        }
        foreach (var t in before.Concat(grads)) t.Dispose();
    }

    [Fact]
    public void FineTuneRecipe_IsTheDefaultWithPretrainedWeights_WithATenthForTheTrunk_CosineAndRandomResizedCrop()
    {
        Assert.Equal("fine-tune", Recipes.DefaultFor(pretrained: true));
        Assert.Equal("fast-cpu", Recipes.DefaultFor(pretrained: false));
        var o = new TrainingOverrides { Recipe = "fine-tune" }.Resolve(ResNetSpec.Parse("resnet18"));
        Assert.Equal(0.1, o.TrunkLearningRateFactor);
        Assert.IsType<CosineSchedule>(o.Schedule);
        Assert.Equal(Augmentation.RandomResizedCrop, o.Augmentation);
        Assert.Equal(1.0, new TrainingOverrides().Resolve().TrunkLearningRateFactor);
        Assert.Equal(0.5, new TrainingOverrides { Recipe = "fine-tune", TrunkLearningRateFactor = 0.5 }.Resolve().TrunkLearningRateFactor);
        var bad = Assert.Throws<InvalidTrainingOptionException>(() => new TrainingOverrides { TrunkLearningRateFactor = 2 }.Resolve());
        Assert.Contains("TrunkLearningRateFactor", bad.Message);
    }
}
