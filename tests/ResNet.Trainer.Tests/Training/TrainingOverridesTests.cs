using Net = ResNet.Trainer.Models.ResNetModel;
using TrainLoop = ResNet.Trainer.Training.ResNetTrainer;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Training;

namespace ResNet.Trainer.Tests.Training;

public class TrainingOverridesTests
{
    private static ResNetSpec Tiny => ResNetSpec.Cifar(1) with { InputChannels = 1, NumClasses = 10 };

    public static TheoryData<string> RecipeNames => [.. Recipes.Names];

    [Theory]
    [MemberData(nameof(RecipeNames))]
    public void EpochsOverEveryRecipe_ReplacesTheRecipesLength_AndKeepsItsOtherSettings(string recipe)
    {
        var options = new TrainingOverrides { Recipe = recipe, Epochs = 1 }.Resolve(Tiny);
        var plain = Recipes.Get(recipe, Tiny);
        Assert.Equal(TrainingLength.Epochs(1), options.Length);
        Assert.Equal(plain.Schedule.GetType(), options.Schedule.GetType());
        Assert.Equal(plain with { Length = options.Length, Schedule = options.Schedule }, options); // schedules hold arrays: compared by type above
    }

    [Fact]
    public void IterationsOverTheFastRecipe_ReplacesItsEpochs()
    {
        var options = new TrainingOverrides { Recipe = "fast-cpu", Iterations = 7 }.Resolve(Tiny);
        Assert.Equal(TrainingLength.Iterations(7), options.Length);
        Assert.Equal("7 iterations", options.Length.ToString());
    }

    [Fact]
    public void EveryOverride_ReachesTheOptions()
    {
        var norm = new Normalization(NormalizationKind.PerChannel, 1, 1, 1, [0.5f], [0.25f]);
        var o = new TrainingOverrides
        {
            Recipe = "paper-cifar", Epochs = 3, BatchSize = 7, LearningRate = 0.03, Schedule = new CosineSchedule(), Momentum = 0.5, Nesterov = true,
            WeightDecay = 0.002, DecayNormAndBias = false, LabelSmoothing = 0.2, EmaDecay = 0.999, Warmup = new LinearWarmup(5), Augmentation = Augmentation.None, RandomErasing = 0.25, Normalization = NormalizationKind.None,
            FixedNormalization = norm, ImageSize = 5000, AllowLargeImages = true, ValidationFraction = 0.3, Seed = 9, Device = "auto", Precision = "bf16", Threads = 2, Workers = 0,
            Prefetch = 2, CheckpointDirectory = "ck", CheckpointEvery = 4, Resume = true, EarlyStoppingPatience = 6, KeepBest = false, ProgressEvery = 3,
            EvaluationBatchSize = 11,
        }.Resolve(Tiny);
        var expected = new TrainingOptions
        {
            Length = TrainingLength.Epochs(3), BatchSize = 7, LearningRate = 0.03, Schedule = new CosineSchedule(), Momentum = 0.5, Nesterov = true,
            WeightDecay = 0.002, DecayNormAndBias = false, LabelSmoothing = 0.2, EmaDecay = 0.999, Warmup = new LinearWarmup(5), Augmentation = Augmentation.None, RandomErasing = 0.25, Normalization = NormalizationKind.None,
            FixedNormalization = norm, ImageSize = 5000, AllowLargeImages = true, ValidationFraction = 0.3, Seed = 9, Device = "auto", Precision = "bf16", Threads = 2, Workers = 0,
            Prefetch = 2, CheckpointDirectory = "ck", CheckpointEvery = 4, Resume = true, EarlyStoppingPatience = 6, KeepBest = false, ProgressEvery = 3,
            EvaluationBatchSize = 11,
        };
        Assert.Equal(expected, o);
    }

    [Fact]
    public void DefaultSeed_IsTheTrainers()
    {
        Assert.Equal(new TrainingOptions().Seed, new TrainingOverrides().Resolve().Seed);
        Assert.Equal(42, new TrainingOverrides().Resolve().Seed);
    }

    [Theory]
    [InlineData("Epochs", "0")]
    [InlineData("Epochs", "-1")]
    [InlineData("Iterations", "0")]
    [InlineData("Iterations", "-5")]
    [InlineData("BatchSize", "0")]
    [InlineData("LearningRate", "NaN")]
    [InlineData("LearningRate", "0")]
    [InlineData("LearningRate", "-0.1")]
    [InlineData("LearningRate", "Infinity")]
    [InlineData("Momentum", "1")]
    [InlineData("Momentum", "-0.1")]
    [InlineData("WeightDecay", "-1E-05")]
    [InlineData("WeightDecay", "NaN")]
    [InlineData("LabelSmoothing", "2")]
    [InlineData("LabelSmoothing", "-0.5")]
    [InlineData("Warmup", "-3")]
    [InlineData("EmaDecay", "0")]
    [InlineData("EmaDecay", "1")]
    [InlineData("EmaDecay", "-0.5")]
    [InlineData("EmaDecay", "1.5")]
    [InlineData("EmaDecay", "NaN")]
    [InlineData("RandomErasing", "-0.1")]
    [InlineData("RandomErasing", "1.5")]
    [InlineData("RandomErasing", "NaN")]
    [InlineData("EarlyStoppingPatience", "0")]
    [InlineData("ImageSize", "0")]
    [InlineData("ImageSize", "3")]
    [InlineData("ImageSize", "100000")]
    [InlineData("Precision", "fp16")]
    [InlineData("Precision", "BF16")]
    [InlineData("Precision", "")]
    [InlineData("Threads", "0")]
    [InlineData("Threads", "-3")]
    [InlineData("ValidationFraction", "1")]
    [InlineData("ValidationFraction", "-0.2")]
    [InlineData("Workers", "-1")]
    [InlineData("Prefetch", "0")]
    [InlineData("CheckpointEvery", "0")]
    [InlineData("ProgressEvery", "0")]
    [InlineData("EvaluationBatchSize", "0")]
    public void ABadValue_IsRefused_NamingTheOptionTheValueAndTheFix(string option, string value)
    {
        var o = WithValue(new TrainingOverrides(), option, value);
        var ex = Assert.Throws<InvalidTrainingOptionException>(() => o.Resolve(Tiny));
        Assert.Equal(option, ex.Option);
        Assert.Equal(value, ex.Value);
        Assert.StartsWith($"{option} = {value} is not valid: ", ex.Message);
        Assert.DoesNotContain("--", ex.Message); // library messages name options, not command-line flags
        Assert.Equal($"--x {value} is not valid: {ex.Requirement}.", ex.MessageFor("--x"));
    }

    [Fact]
    public void ImageSizeBelowTheArchitecturesDownsampling_NamesTheSmallestItTakes()
    {
        var ex = Assert.Throws<InvalidTrainingOptionException>(() => new TrainingOverrides { ImageSize = 16 }.Resolve(ResNetSpec.ResNet18()));
        Assert.Contains("at least 32 pixels", ex.Message);
        Assert.Equal(TrainingLength.Epochs(15), new TrainingOverrides { ImageSize = 32 }.Resolve(ResNetSpec.ResNet18()).Length);
        Assert.Equal(5000, new TrainingOverrides { ImageSize = 5000, AllowLargeImages = true }.Resolve(ResNetSpec.ResNet18()).ImageSize);
    }

    [Fact]
    public void EpochsAndIterationsTogether_AreRefused()
    {
        var ex = Assert.Throws<InvalidTrainingOptionException>(() => new TrainingOverrides { Epochs = 2, Iterations = 10 }.Resolve());
        Assert.Contains("not both", ex.Message);
    }

    [Fact]
    public void TheTrainer_RefusesABadValue_BeforeTouchingTheModelOrTheCheckpointFolder()
    {
        string dir = TestData.TempDir();
        using var model = new Net(Tiny, seed: 1);
        var before = model.state_dict()["conv1.weight"].clone();
        var ex = Assert.Throws<InvalidTrainingOptionException>(() =>
            TrainLoop.Train(model, TestData.Fashion(2), null, new TrainingOptions { LearningRate = double.NaN, CheckpointDirectory = dir }));
        Assert.Equal("LearningRate", ex.Option);
        Assert.Empty(Directory.GetFiles(dir));
        Assert.True(before.equal(model.state_dict()["conv1.weight"]).all().item<bool>());
    }

    [Theory]
    [MemberData(nameof(RecipeNames))]
    public void EpochsOne_OverEveryRecipe_TrainsExactlyOneEpoch(string recipe)
    {
        var data = TestData.Fashion(2); // 20 images
        // No hold-out, so that the epoch's iterations are known: 20 images at batch 8, the last partial batch dropped.
        var options = new TrainingOverrides { Recipe = recipe, Epochs = 1, ImageSize = 16, BatchSize = 8, ValidationFraction = 0, Threads = 2 }.Resolve(Tiny);
        using var model = new Net(Tiny, seed: 1);
        var result = TrainLoop.Train(model, data, null, options);
        var epoch = Assert.Single(result.History);
        Assert.Equal(2, epoch.Iteration);
        Assert.Equal(StopReason.Completed, result.Stop);
    }

    [Fact]
    public void DegradationExperiment_EpochsOne_TrainsOneEpochPerNet_AndChecksEverySettingFirst()
    {
        var data = TestData.Fashion(2);
        var result = DegradationExperiment.Run(data, new DegradationOptions { Depths = [8], Epochs = 1, BatchSize = 10, Threads = 2 });
        Assert.Equal(2, result.Runs.Count);
        Assert.All(result.Runs, r => Assert.Equal(2, Assert.Single(r.History).Iteration));
        var ex = Assert.Throws<InvalidTrainingOptionException>(() => DegradationExperiment.Run(data, new DegradationOptions { Depths = [8], Epochs = 0 }));
        Assert.Equal("Epochs", ex.Option);
    }

    // Sets one TrainingOverrides property from text, as a caller would.
    private static TrainingOverrides WithValue(TrainingOverrides o, string option, string value)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        if (option == "Warmup") return o with { Warmup = new LinearWarmup(long.Parse(value, inv)) };
        var property = typeof(TrainingOverrides).GetProperty(option)!;
        var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        var copy = o with { };
        property.SetValue(copy, Convert.ChangeType(value, type, inv));
        return copy;
    }
}
