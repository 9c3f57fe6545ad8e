using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit.Abstractions;

namespace ResNet.MLNet.Tests;

public sealed class FeaturizerTests(ITestOutputHelper log)
{
    private static IDataView SomeTestImages(MLContext ml) =>
        ml.Data.TakeRows(ml.Data.ShuffleRows(ml.Data.LoadImagesFromDirectory(Samples.Test), seed: 3), 24);

    [Fact]
    public void PretrainedResNet18Features_EqualMLNetsDnnFeaturizeImage()
    {
        var ml = new MLContext(seed: 0);
        var data = SomeTestImages(ml);
        var ours = ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.ResNetFeaturizer("Features", "Image"))
            .Fit(data).Transform(data);
        var theirs = ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.ResizeImages("Resized", 224, 224, "Image"))
            .Append(ml.Transforms.ExtractPixels("Pixels", "Resized"))
            .Append(ml.Transforms.DnnFeaturizeImage("Features", m => m.ModelSelector.ResNet18(ml, m.OutputColumn, m.InputColumn), "Pixels"))
            .Fit(data).Transform(data);

        Assert.Equal(new VectorDataViewType(NumberDataViewType.Single, 512), ours.Schema["Features"].Type);
        var a = ours.GetColumn<float[]>("Features").ToList();
        var b = theirs.GetColumn<float[]>("Features").ToList();
        Assert.Equal(24, a.Count);
        Assert.Equal(a.Count, b.Count);
        double largest = b.Max(v => v.Max(Math.Abs));
        double maxDiff = a.Zip(b).Max(p => p.First.Zip(p.Second).Max(q => Math.Abs(q.First - q.Second)));
        log.WriteLine($"ResNetFeaturizer vs DnnFeaturizeImage(ResNet18): max |diff| {maxDiff:E3}, largest feature {largest:F3}, ratio {maxDiff / largest:E2}");
        Assert.True(largest > 0.1, "features are all near zero");
        Assert.True(maxDiff <= 1e-3 * largest, $"max diff {maxDiff} > 1e-3 x {largest}");
    }

    [Fact]
    public void Featurizer_SavesAndLoads_AndFeedsAnMLNetTrainer()
    {
        var ml = new MLContext(seed: 0);
        var data = SomeTestImages(ml);
        var model = ml.Transforms.ResNetFeaturizer("Features", "ImagePath").Fit(data);
        var features = model.Transform(data).GetColumn<float[]>("Features").ToList();
        string zip = Path.Combine(Path.GetTempPath(), $"resnet-featurizer-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, data.Schema, zip);
            var loaded = new MLContext().RegisterResNet().Model.Load(zip, out _);
            var again = loaded.Transform(data).GetColumn<float[]>("Features").ToList();
            double maxDiff = features.Zip(again).Max(p => p.First.Zip(p.Second).Max(q => Math.Abs(q.First - q.Second)));
            Assert.True(maxDiff <= 1e-5 * features.Max(v => v.Max(Math.Abs)), $"max diff {maxDiff}");
        }
        finally
        {
            File.Delete(zip);
        }

        // Downstream: an ML.NET trainer on the features.
        var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Transforms.ResNetFeaturizer("Features", "ImagePath"))
            .AppendCacheCheckpoint(ml) // the trainer makes many passes; featurize once
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy());
        var trained = pipeline.Fit(data);
        var metrics = ml.MulticlassClassification.Evaluate(trained.Transform(data));
        log.WriteLine($"L-BFGS maximum entropy on pretrained ResNet18 features, 24 images, training accuracy {metrics.MicroAccuracy:F3}");
        // 512 ImageNet features separate 24 images of 10 classes: the linear model fits its training set.
        Assert.True(metrics.MicroAccuracy > 0.9, $"training accuracy {metrics.MicroAccuracy}");
    }
}
