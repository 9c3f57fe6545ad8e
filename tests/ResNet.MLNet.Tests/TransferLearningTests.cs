using Microsoft.ML;
using ResNet.MLNet.Transforms;
using ResNet.Trainer.Pretrained;
using Xunit.Abstractions;

namespace ResNet.MLNet.Tests;

/// <summary>Transfer learning from the ImageNet-trained ResNet18 trunk (NuGet Microsoft.ML.DnnImageFeaturizer.ResNet18) on the embedded images.</summary>
public sealed class TransferLearningTests(ITestOutputHelper log)
{
    private static (MLContext Ml, IDataView Train, IDataView Test, IEstimator<ITransformer> Prep) Data(int trainRows, int testRows)
    {
        var ml = new MLContext(seed: 1);
        var keys = ml.Data.LoadFromEnumerable(Directory.GetDirectories(Samples.Train).Select(Path.GetFileName).Order(StringComparer.Ordinal).Select(c => new { Label = c! }));
        var train = ml.Data.TakeRows(ml.Data.ShuffleRows(ml.Data.LoadImagesFromDirectory(Samples.Train), seed: 5), trainRows);
        var test = ml.Data.TakeRows(ml.Data.ShuffleRows(ml.Data.LoadImagesFromDirectory(Samples.Test), seed: 6), testRows);
        var prep = ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.Conversion.MapValueToKey("Label", keyData: keys));
        return (ml, train, test, prep);
    }

    [Fact]
    public void HeadOnly_OnCachedPretrainedFeatures_ClassifiesHeldOutImages()
    {
        var (ml, train, test, prep) = Data(300, 150);
        var estimator = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
        {
            PretrainedModel = "cntk-resnet18", // a catalog name; ResNetPretrained.CntkResNet18 is the same entry
            FreezeBackbone = true,
            Epochs = 40,
            Seed = 1,
        });
        var model = prep.Append(estimator).Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        var history = estimator.LastTraining!.History;
        log.WriteLine($"pretrained ResNet18, head only on cached features, 300 train / 150 test images (28x28 gray -> 224 RGB): " +
                      $"MicroAccuracy {metrics.MicroAccuracy:F3}; train loss {history[0].TrainLoss:F3} -> {history[^1].TrainLoss:F3}");
        Assert.Equal(40, history.Count);
        Assert.True(history[^1].TrainLoss < history[0].TrainLoss);
        // Chance is 0.10; ImageNet features separate Fashion-MNIST classes well with a linear head.
        Assert.True(metrics.MicroAccuracy > 0.6, $"MicroAccuracy {metrics.MicroAccuracy}");
    }

    [Fact]
    public void FineTuning_FromThePretrainedTrunk_TrainsEveryLayer()
    {
        var (ml, train, test, prep) = Data(64, 64);
        var estimator = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
        {
            PretrainedModel = ResNetPretrained.CntkResNet18,
            Epochs = 1,
            BatchSize = 16,
            LearningRate = 0.01,
            Augmentation = Trainer.Data.Augmentation.None,
            Seed = 1,
        });
        var model = prep.Append(estimator).Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        var result = estimator.LastTraining!;
        log.WriteLine($"pretrained ResNet18 fine-tuned 1 epoch on 64 images: train error {result.History[0].TrainError:P1}, held-out MicroAccuracy {metrics.MicroAccuracy:F3}");
        Assert.Equal("resnet18-cntk", result.Card.Spec.Name);
        Assert.Single(result.History);
        Assert.True(double.IsFinite(result.History[0].TrainLoss));
        Assert.InRange(metrics.MicroAccuracy, 0.0, 1.0);
        Assert.Equal(10, ((Microsoft.ML.Data.VectorDataViewType)model.Transform(test).Schema["Score"].Type).Size);
        // Every layer moved away from the pretrained weights, the trunk included.
        using var original = Trainer.Onnx.PretrainedResNet18.Load(ResNetFeaturizerEstimator.DefaultDnnModelsDirectory, 10, seed: 1).Model;
        foreach (var key in new[] { "conv1.weight", "layer2.0.conv1.weight", "layer4.1.conv2.weight" })
        {
            var before = original.state_dict()[key];
            var after = result.Model.state_dict()[key];
            Assert.False(before.allclose(after), $"{key} did not change");
        }
    }

    [Fact]
    public void PretrainedModel_ByName_IsTheCatalogEntry_AndAnUnknownNameListsTheKnownOnes()
    {
        var options = new ResNetClassifierEstimator.Options { PretrainedModel = "ResNet-50" };
        Assert.Same(ResNetPretrained.ResNet50V2, options.PretrainedModel);
        options.PretrainedModel = ResNetPretrained.ResNet18;
        Assert.Equal("resnet18:IMAGENET1K_V1", options.PretrainedModel.Name);
        var ex = Assert.Throws<ArgumentException>(() => new ResNetClassifierEstimator.Options { PretrainedModel = "resnet51" });
        foreach (var known in new[] { "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "cntk-resnet18" })
            Assert.Contains(known, ex.Message);
    }

    [Fact]
    public void ATorchvisionEntry_OnDecodedImages_IsRefusedBeforeItsWeightsAreFetched()
    {
        var (ml, train, _, prep) = Data(20, 1);
        // An address nothing serves: the refusal must come before any download is tried.
        var entry = ResNetPretrained.ResNet18 with { Url = new Uri("http://127.0.0.1:9/models/resnet18-00000000.pth") };
        var estimator = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options { PretrainedModel = entry, Epochs = 1 });
        var ex = Assert.Throws<SchemaMismatchException>(() => prep.Append(estimator).Fit(train));
        Assert.Contains("'Image'", ex.Message);
        Assert.Contains("LoadRawImageBytes", ex.Message);
    }

    [Fact]
    public void PretrainedModel_MissingFiles_NamesThePackage()
    {
        var (ml, train, _, prep) = Data(20, 10);
        var estimator = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
        {
            PretrainedModel = ResNetPretrained.CntkResNet18,
            PretrainedModelsDirectory = Path.Combine(Path.GetTempPath(), "no-such-models-" + Guid.NewGuid().ToString("N")),
        });
        var ex = Assert.Throws<FileNotFoundException>(() => prep.Append(estimator).Fit(train));
        Assert.Contains("Microsoft.ML.DnnImageFeaturizer.ResNet18", ex.Message);
    }
}
