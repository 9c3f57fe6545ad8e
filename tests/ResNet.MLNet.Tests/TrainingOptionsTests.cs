using Microsoft.ML;
using ResNet.MLNet.Transforms;
using ResNet.Trainer.Training;

namespace ResNet.MLNet.Tests;

/// <summary>The estimator's training settings: the same overrides, defaults and checks as <c>resnet train</c>.</summary>
public class TrainingOptionsTests
{
    private static readonly Lazy<string> Small = new(() => Samples.SmallCopy(classes: 10, trainPerClass: 2, testPerClass: 0));

    public static TheoryData<string> RecipeNames => [.. Recipes.Names];

    private static ResNetClassifierEstimator.Options Tiny(string recipe = "fast-cpu") => new()
    {
        Recipe = recipe, Architecture = "resnet8", Channels = 1, ImageSize = 16, BatchSize = 8, Threads = 2,
    };

    [Theory]
    [MemberData(nameof(RecipeNames))]
    public void EpochsOne_OverEveryRecipe_TrainsExactlyOneEpoch(string recipe)
    {
        var ml = new MLContext(seed: 0);
        var data = ml.Data.LoadImagesFromDirectory(Path.Combine(Small.Value, "train"));
        var prepared = ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.Conversion.MapValueToKey("Label")).Fit(data).Transform(data);
        var estimator = new ResNetClassifierEstimator(ml, Tiny(recipe) with { Epochs = 1 });
        estimator.Fit(prepared);
        var training = estimator.LastTraining!;
        var epoch = Assert.Single(training.History);
        Assert.Equal(StopReason.Completed, training.Stop);
        Assert.InRange(epoch.Iteration, 1, 3); // 20 images (less the recipe's hold-out) at batch 8
    }

    [Fact]
    public void FittingTwice_DisposesTheFirstNetwork_AndKeepsTheSecond()
    {
        var ml = new MLContext(seed: 0);
        var data = ml.Data.LoadImagesFromDirectory(Path.Combine(Small.Value, "train"));
        var prepared = ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.Conversion.MapValueToKey("Label")).Fit(data).Transform(data);
        var estimator = new ResNetClassifierEstimator(ml, Tiny() with { Epochs = 1 });
        estimator.Fit(prepared);
        var first = estimator.LastTraining!.Model;
        var weight = first.parameters().First();
        Assert.False(weight.IsInvalid);
        estimator.Fit(prepared);
        Assert.True(weight.IsInvalid);
        Assert.NotSame(first, estimator.LastTraining!.Model);
        Assert.False(estimator.LastTraining.Model.parameters().First().IsInvalid);
    }

    [Fact]
    public void Defaults_AreTheTrainersAndTheCommandLines()
    {
        var options = new ResNetClassifierEstimator.Options();
        Assert.Null(options.Seed); // the recipe's: 42, as resnet train
        Assert.Equal(42, options.Resolve().Seed);
        Assert.Null(options.Recipe); // fast-cpu, or fine-tune with a pretrained model
        Assert.Equal("fast-cpu", Recipes.DefaultFor(pretrained: false));
        Assert.Equal(Recipes.FastCpu(), options.Resolve());
    }

    [Theory]
    [InlineData("Epochs", 0)]
    [InlineData("Epochs", -1)]
    [InlineData("LearningRate", double.NaN)]
    [InlineData("Momentum", 1.5)]
    [InlineData("LabelSmoothing", 2.0)]
    [InlineData("ImageSize", 0)]
    [InlineData("ImageSize", 100000)]
    [InlineData("Threads", 0)]
    [InlineData("ValidationFraction", 1.0)]
    public void ABadValue_IsRefusedWhenTheEstimatorIsMade_NamingTheOption(string option, object value)
    {
        var options = Tiny();
        typeof(ResNetClassifierEstimator.Options).GetProperty(option)!.SetValue(options, value);
        var ex = Assert.Throws<InvalidTrainingOptionException>(() => new ResNetClassifierEstimator(new MLContext(), options));
        Assert.Equal(option, ex.Option);
        Assert.StartsWith($"{option} = ", ex.Message);
        Assert.DoesNotContain("--", ex.Message);
    }
}
