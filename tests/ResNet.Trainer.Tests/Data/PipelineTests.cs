using ResNet.Trainer.Data;

namespace ResNet.Trainer.Tests.Data;

public class PipelineTests
{
    [Theory]
    [InlineData("none")]
    [InlineData("cifar")]
    [InlineData("cifar:0")]
    [InlineData("cifar:2")]
    [InlineData("imagenet")]
    [InlineData("random-resized-crop")]
    public void AugmentationNames_ReadBackAsTheSameSetting(string name)
    {
        var augmentation = Augmentation.Parse(name);
        Assert.Equal(name, Augmentation.NameOf(augmentation));
        Assert.Equal(augmentation, Augmentation.Parse(Augmentation.NameOf(augmentation)!));
    }

    [Fact]
    public void CifarWithAPadding_IsTheCropAndFlipWithThatPadding_AndTheFastRecipesIsCifar2()
    {
        Assert.Equal(new CifarAugmentation(Padding: 1, Flip: true), Augmentation.Parse(" CIFAR:1 "));
        Assert.Equal(Augmentation.Cifar, Augmentation.Parse("cifar:4"));
        Assert.Equal("cifar", Augmentation.NameOf(Augmentation.Parse("cifar:4")));
        Assert.Equal("cifar:2", Augmentation.NameOf(ResNet.Trainer.Training.Recipes.FastCpu().Augmentation));
        Assert.Null(Augmentation.NameOf(new CifarAugmentation(Padding: 2, Flip: false)));
    }

    [Theory]
    [InlineData("cifar:")]
    [InlineData("cifar:-1")]
    [InlineData("cifar:65")]
    [InlineData("cifar:1.5")]
    [InlineData("cifar:two")]
    public void CifarWithABadPadding_IsRefused_NamingTheRange(string name)
    {
        var ex = Assert.Throws<ArgumentException>(() => Augmentation.Parse(name));
        Assert.Contains($"Augmentation '{name}'", ex.Message);
        Assert.Contains("from 0 to 64; e.g. cifar:2", ex.Message);
    }

    [Fact]
    public void StratifiedSplit_KeepsClassSharesAndIsSeeded()
    {
        var data = TestData.Fashion(50);
        var (train, validation) = DatasetSplit.Stratified(data, 0.1, seed: 7);
        Assert.Equal(450, train.Count);
        Assert.Equal(50, validation.Count);
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(5, Enumerable.Range(0, validation.Count).Count(i => validation.LabelOf(i) == c)));
        Assert.Empty(train.Indices.Intersect(validation.Indices));
        Assert.Equal(validation.Indices, DatasetSplit.Stratified(data, 0.1, seed: 7).Validation.Indices);
        Assert.NotEqual(validation.Indices, DatasetSplit.Stratified(data, 0.1, seed: 8).Validation.Indices);
    }

    [Fact]
    public void PerChannelNormalization_FromTheTrainingSet_GivesZeroMeanUnitStd()
    {
        var data = TestData.Fashion(20);
        var raw = new ImagePipeline(1, 28, 28, null, Augmentation.None);
        var norm = Normalization.Compute(data, raw, NormalizationKind.PerChannel);
        Assert.InRange(norm.Mean[0], 0.2, 0.4); // Fashion-MNIST's mean is about 0.286
        var pipeline = raw with { Normalization = norm };
        var values = new List<float>();
        var buffer = new float[784];
        for (int i = 0; i < data.Count; i++) { pipeline.Eval(data.Load(i), buffer); values.AddRange(buffer); }
        double mean = values.Average(v => (double)v);
        double std = Math.Sqrt(values.Average(v => (v - mean) * (v - mean)));
        Assert.InRange(mean, -1e-3, 1e-3);
        Assert.InRange(std, 0.999, 1.001);
        var roundTrip = Normalization.FromJson(norm.ToJson());
        Assert.Equal(norm.Mean, roundTrip.Mean);
        Assert.Equal(norm.Std, roundTrip.Std);
        Assert.Equal(NormalizationKind.PerChannel, roundTrip.Kind);
    }

    [Fact]
    public void PerPixelMean_SubtractsTheMeanImage()
    {
        var data = TestData.Fashion(10);
        var raw = new ImagePipeline(1, 28, 28, null, Augmentation.None);
        var norm = Normalization.Compute(data, raw, NormalizationKind.PerPixel);
        Assert.Equal(784, norm.Mean.Length);
        var sum = new double[784];
        var buffer = new float[784];
        var pipeline = raw with { Normalization = norm };
        for (int i = 0; i < data.Count; i++) { pipeline.Eval(data.Load(i), buffer); for (int p = 0; p < 784; p++) sum[p] += buffer[p]; }
        Assert.All(sum, s => Assert.InRange(s / data.Count, -1e-4, 1e-4));
        Assert.Throws<ArgumentException>(() => norm.Apply(new float[16 * 16], 16, 16));
    }

    [Fact]
    public void CifarAugmentation_ShiftsByAtMostFourPixelsAndFlips()
    {
        // A single white pixel at (10, 10): after pad-4 crop it lands within 4 pixels, mirrored when flipped.
        var pixels = new byte[28 * 28];
        pixels[10 * 28 + 10] = 255;
        var image = new RawImage(pixels, 28, 28, 1);
        var pipeline = new ImagePipeline(1, 28, 28, null, Augmentation.Cifar);
        var output = new float[784];
        var seenX = new HashSet<int>();
        for (int seed = 0; seed < 200; seed++)
        {
            pipeline.Train(image, output, new Random(seed));
            int at = Array.IndexOf(output, 1f);
            if (at < 0) continue; // shifted out? impossible for a pixel 10 from the border
            int y = at / 28, x = at % 28;
            Assert.InRange(y, 6, 14);
            Assert.True(x is >= 6 and <= 14 || x is >= 13 and <= 21, $"x = {x}");
            seenX.Add(x);
            Assert.Equal(1f, output.Sum());
        }
        Assert.Contains(seenX, x => x > 14); // some flipped
        Assert.Contains(seenX, x => x < 13); // some not
    }

    [Fact]
    public void ImageNetAugmentation_RescalesAndCropsToTheInputSize()
    {
        var image = new RawImage(Enumerable.Range(0, 40 * 30 * 3).Select(i => (byte)(i % 251)).ToArray(), 40, 30, 3);
        var pipeline = new ImagePipeline(3, 24, 24, null, new ImageNetAugmentation(MinSide: 28, MaxSide: 52));
        var output = new float[3 * 24 * 24];
        pipeline.Train(image, output, new Random(1));
        Assert.All(output, v => Assert.InRange(v, -0.5f, 1.5f));
        pipeline.Eval(image, output);
        var again = new float[output.Length];
        pipeline.Eval(image, again);
        Assert.Equal(output, again);
    }

    [Fact]
    public void Loader_EachEpochCoversEveryImageOnce_OrderDependsOnlyOnSeedAndEpoch()
    {
        var data = TestData.Fashion(7); // 70 images
        var pipeline = new ImagePipeline(1, 28, 28, null, Augmentation.Cifar);
        var options = new LoaderOptions { BatchSize = 16, Seed = 3, Workers = 2, Prefetch = 2 };
        var loader = new BatchLoader(data, pipeline, options);
        var epoch0 = loader.Epoch(0).ToList();
        Assert.Equal(5, epoch0.Count);
        Assert.Equal([16, 16, 16, 16, 6], epoch0.Select(b => b.Count));
        Assert.Equal(Enumerable.Range(0, 70), epoch0.SelectMany(b => b.Indices).Order());
        Assert.Equal(epoch0.Select(b => b.Labels.Sum()), epoch0.Select(b => b.Indices.Sum(i => (long)data.LabelOf(i))));

        var serial = new BatchLoader(data, pipeline, options with { Workers = 0 }).Epoch(0).ToList();
        Assert.Equal(epoch0.SelectMany(b => b.Data), serial.SelectMany(b => b.Data));
        var epoch1 = loader.Epoch(1).ToList();
        Assert.NotEqual(epoch0.SelectMany(b => b.Indices), epoch1.SelectMany(b => b.Indices));
        var skipped = loader.Epoch(1, skip: 3).ToList();
        Assert.Equal(epoch1.Skip(3).SelectMany(b => b.Data), skipped.SelectMany(b => b.Data));
    }

    [Fact]
    public void Loader_AWorkersDecodeErrorReachesTheConsumer()
    {
        string root = TestData.TempDir();
        var good = TestData.Fashion(1);
        ImageDecoder.SavePng(good.Load(0), Path.Combine(root, "a", "1.png"));
        ImageDecoder.SavePng(good.Load(1), Path.Combine(root, "b", "2.png"));
        var source = ImageFolderSource.Scan(root, new ImageFolderOptions { Channels = 1 });
        File.WriteAllText(Path.Combine(root, "b", "2.png"), "overwritten after the scan");
        var loader = new BatchLoader(source, new ImagePipeline(1, 28, 28, null, Augmentation.None), new LoaderOptions { BatchSize = 1, Shuffle = false, Workers = 2 });
        var ex = Assert.Throws<CorruptDataException>(() => loader.Epoch(0).ToList());
        Assert.Contains("2.png", ex.Message);
    }
}
