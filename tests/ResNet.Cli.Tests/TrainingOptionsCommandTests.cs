using static ResNet.Cli.Tests.Cli;
using System.Text.Json;
using ResNet.MLNet.Tests;
using ResNet.Trainer.Training;

namespace ResNet.Cli.Tests;

/// <summary>The training settings of <c>train</c>, <c>demo</c> and <c>experiment</c>: the length over every recipe, and the values refused.</summary>
public class TrainingOptionsCommandTests
{
    // 10 classes x 2 training images (and 1 test image each), from the embedded dataset.
    private static readonly Lazy<string> Small = new(() => Samples.SmallCopy(classes: 10, trainPerClass: 2, testPerClass: 1));

    public static TheoryData<string> RecipeNames => [.. Recipes.Names];

    private static string NewOutput() => Path.Combine(Directory.CreateTempSubdirectory("resnet-cli-options-").FullName, "run");

    private static int EpochsIn(string outDir)
    {
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")));
        return metrics.RootElement.GetProperty("epochs").GetArrayLength();
    }

    [Theory]
    [MemberData(nameof(RecipeNames))]
    public void Train_EpochsOne_OverEveryRecipe_TrainsExactlyOneEpoch(string recipe)
    {
        string outDir = NewOutput();
        var (code, output, err) = Run("train", "--data", Path.Combine(Small.Value, "train"), "--output", outDir, "--recipe", recipe,
            "--arch", "resnet8", "--epochs", "1", "--image-size", "16", "--batch-size", "8", "--threads", "2");
        Assert.True(code == 0, err);
        Assert.Contains("1 epoch,", output);
        Assert.Equal(1, EpochsIn(outDir));
        Assert.Equal(2, File.ReadAllLines(Path.Combine(outDir, "metrics.csv")).Length); // header + 1 epoch
    }

    [Theory]
    [MemberData(nameof(RecipeNames))]
    public void Demo_EpochsOne_OverEveryRecipe_TrainsExactlyOneEpoch(string recipe)
    {
        string outDir = NewOutput();
        var (code, _, err) = Run("demo", "--data", Small.Value, "--output", outDir, "--recipe", recipe,
            "--arch", "resnet8", "--epochs", "1", "--image-size", "16", "--batch-size", "8", "--threads", "2");
        Assert.True(code == 0, err);
        Assert.Equal(1, EpochsIn(outDir));
    }

    [Fact]
    public void Experiment_EpochsOne_TrainsOneEpochPerNet()
    {
        string outDir = NewOutput();
        var (code, _, err) = Run("experiment", "degradation", "--data", Path.Combine(Small.Value, "train"), "--depths", "8", "--epochs", "1",
            "--subset", "0", "--batch-size", "8", "--threads", "2", "--output", outDir);
        Assert.True(code == 0, err);
        var rows = File.ReadAllLines(Path.Combine(outDir, "degradation.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(["plain8", "resnet8"], rows.Select(r => r[0]));
        Assert.All(rows, r => Assert.Equal("1", r[4]));
    }

    // Every refused value: exit 2, the flag and the value named, no stack trace, and the model already in --output keeps its bytes.
    [Theory]
    [InlineData("--epochs", "0")]
    [InlineData("--epochs", "-1")]
    [InlineData("--iterations", "0")]
    [InlineData("--iterations", "-5")]
    [InlineData("--lr", "NaN")]
    [InlineData("--lr", "0")]
    [InlineData("--lr", "-1")]
    [InlineData("--momentum", "1")]
    [InlineData("--momentum", "-0.5")]
    [InlineData("--weight-decay", "-0.1")]
    [InlineData("--label-smoothing", "2")]
    [InlineData("--warmup", "-1")]
    [InlineData("--ema", "0")]
    [InlineData("--ema", "1")]
    [InlineData("--ema", "1.5")]
    [InlineData("--ema", "-0.5")]
    [InlineData("--random-erasing", "-0.5")]
    [InlineData("--random-erasing", "2")]
    [InlineData("--random-erasing", "NaN")]
    [InlineData("--early-stopping", "0")]
    [InlineData("--batch-size", "0")]
    [InlineData("--image-size", "0")]
    [InlineData("--image-size", "2")]
    [InlineData("--image-size", "100000")]
    [InlineData("--threads", "0")]
    [InlineData("--threads", "-3")]
    [InlineData("--validation", "1")]
    [InlineData("--workers", "-1")]
    [InlineData("--checkpoint-every", "0")]
    public void Train_ABadValue_IsRefusedBeforeAnyFileIsWritten(string flag, string value)
    {
        string outDir = Model.Value;
        var before = Snapshot(outDir);
        var (code, output, err) = Run("train", "--data", Path.Combine(Small.Value, "train"), "--output", outDir, "--arch", "resnet8", flag, value);
        Assert.Equal(2, code);
        Assert.StartsWith($"error: {flag} {value} is not valid: ", err);
        Assert.DoesNotContain("   at ", err);
        Assert.DoesNotContain("data:", output); // refused before the data was read
        Assert.Equal(before, Snapshot(outDir));
    }

    [Fact]
    public void Train_AnUnknownPretrainedName_IsRefusedListingTheCatalog_BeforeAnyFileIsWritten()
    {
        string outDir = NewOutput();
        var (code, output, err) = Run("train", "--data", Path.Combine(Small.Value, "train"), "--output", outDir, "--pretrained", "resnet51");
        Assert.Equal(2, code);
        Assert.StartsWith("error: --pretrained: No pretrained weights are named 'resnet51'", err);
        foreach (var known in new[] { "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "cntk-resnet18" })
            Assert.Contains(known, err);
        Assert.DoesNotContain("   at ", err);
        Assert.DoesNotContain("data:", output);
        Assert.False(Directory.Exists(outDir));

        var (conflict, _, conflictErr) = Run("train", "--data", Path.Combine(Small.Value, "train"), "--output", outDir, "--pretrained", "resnet50", "--arch", "resnet18");
        Assert.Equal(2, conflict);
        Assert.Contains("--pretrained decides the architecture", conflictErr);
    }

    [Fact]
    public void Train_EmaErasingAndTtaFlip_TrainWithTheAverage_AndTestWithTheMirrors_AsEvaluateDoes()
    {
        string outDir = NewOutput();
        var (code, output, err) = Run("train", "--data", Small.Value, "--output", outDir, "--arch", "resnet8", "--epochs", "2", "--image-size", "16",
            "--batch-size", "8", "--threads", "2", "--ema", "0.9", "--random-erasing", "0.5", "--no-decay-norm-and-bias", "--tta-flip");
        Assert.True(code == 0, err);
        Assert.Contains("weight decay 0.0005 (weight matrices only), weight average (EMA) decay 0.9, random erasing 0.5,", output);
        string trainLine = output.Split('\n').Single(l => l.StartsWith("test accuracy: ", StringComparison.Ordinal));
        Assert.Contains("single + flip)", trainLine);
        Assert.True(File.Exists(Path.Combine(outDir, "model.onnx")));

        // The saved weights are those the test pass scored: evaluate with the same flag gives the same accuracy.
        (code, output, err) = Run("evaluate", "--model", outDir, "--data", Small.Value, "--tta-flip");
        Assert.True(code == 0, err);
        Assert.Contains("(single + flip): accuracy ", output);
        string accuracy(string line, string before) => line[(line.IndexOf(before, StringComparison.Ordinal) + before.Length)..].Split(' ')[0].TrimEnd(',');
        Assert.Equal(accuracy(trainLine, "test accuracy: "), accuracy(output, "accuracy "));
    }

    [Theory]
    [InlineData("train", "--test-mode", "ten-crop")]
    [InlineData("train", "--test-mode", "multi-scale")]
    [InlineData("evaluate", "--mode", "ten-crop")]
    [InlineData("evaluate", "--mode", "multi-scale")]
    public void TtaFlip_WithAMultiViewMode_IsRefusedBeforeAnyFileIsWritten(string command, string flag, string mode)
    {
        string outDir = Model.Value;
        var before = Snapshot(outDir);
        string[] args = command == "train"
            ? ["train", "--data", Path.Combine(Small.Value, "train"), "--output", outDir, "--arch", "resnet8", "--tta-flip", flag, mode]
            : ["evaluate", "--model", outDir, "--data", Small.Value, "--tta-flip", flag, mode];
        var (code, output, err) = Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith("error: --tta-flip averages an image and its mirror", err);
        Assert.Contains($"{flag} {mode}", err);
        Assert.DoesNotContain("   at ", err);
        Assert.DoesNotContain("data:", output);
        Assert.Equal(before, Snapshot(outDir));
    }

    [Fact]
    public void Evaluate_TtaFlipOnAnOnnxModel_IsRefused_PointingToTheExportFlag()
    {
        var (code, _, err) = Run("evaluate", "--model", Path.Combine(Model.Value, "model.onnx"), "--data", Small.Value, "--tta-flip");
        Assert.Equal(2, code);
        Assert.StartsWith("error: --tta-flip needs the trained weights (model.dat)", err);
        Assert.Contains("resnet export --tta-flip", err);
    }

    [Fact]
    public void Evaluate_TtaShift_AddsTheShiftedViews_AndSaysSo()
    {
        string outDir = Model.Value;
        var before = Snapshot(outDir);
        var (code, output, err) = Run("evaluate", "--model", outDir, "--data", Small.Value, "--tta-flip", "--tta-shift", "2", "--output", NewOutput());
        Assert.True(code == 0, err);
        Assert.Contains("on 10 images (single + flip + shifts of 2): accuracy ", output);
        Assert.Equal(before, Snapshot(outDir));
    }

    [Theory]
    [InlineData("-1", null, "error: --tta-shift -1 is not valid: give the pixels")]
    [InlineData("1000", null, "error: --tta-shift 1000 is more than ")]
    [InlineData("1", "ten-crop", "error: --tta-shift averages shifted views in --mode single; --mode ten-crop")]
    [InlineData("1", "onnx", "error: --tta-shift needs the trained weights (model.dat)")]
    public void Evaluate_BadTtaShift_IsRefusedNamingTheFix_BeforeAnyFileIsWritten(string pixels, string? variant, string message)
    {
        string outDir = Model.Value;
        var before = Snapshot(outDir);
        string model = variant == "onnx" ? Path.Combine(outDir, "model.onnx") : outDir;
        string[] args = ["evaluate", "--model", model, "--data", Small.Value, "--tta-shift", pixels, .. variant == "ten-crop" ? new[] { "--mode", "ten-crop" } : []];
        var (code, output, err) = Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith(message, err);
        Assert.DoesNotContain("   at ", err);
        Assert.DoesNotContain("accuracy", output);
        Assert.Equal(before, Snapshot(outDir));
    }

    [Fact]
    public void Train_EpochsAndIterationsTogether_AreRefused()
    {
        var (code, _, err) = Run("train", "--data", Path.Combine(Small.Value, "train"), "--output", NewOutput(), "--epochs", "2", "--iterations", "5");
        Assert.Equal(2, code);
        Assert.Contains("--iterations 5 is not valid", err);
        Assert.Contains("not both", err);
    }

    [Theory]
    [InlineData("demo", "--lr", "NaN")]
    [InlineData("demo", "--epochs", "0")]
    [InlineData("experiment", "--threads", "0")]
    [InlineData("experiment", "--lr", "-1")]
    [InlineData("experiment", "--batch-size", "0")]
    public void DemoAndExperiment_RefuseBadValues_ByTheirFlags(string command, string flag, string value)
    {
        string[] args = command == "demo"
            ? ["demo", "--data", Small.Value, "--output", NewOutput(), flag, value]
            : ["experiment", "degradation", "--data", Path.Combine(Small.Value, "train"), "--output", NewOutput(), flag, value];
        var (code, _, err) = Run(args);
        Assert.Equal(2, code);
        Assert.StartsWith($"error: {flag} {value} is not valid: ", err);
    }

    // A folder that already holds a trained model.
    private static readonly Lazy<string> Model = new(() =>
    {
        string outDir = NewOutput();
        var (code, _, err) = Run("train", "--data", Path.Combine(Small.Value, "train"), "--output", outDir, "--arch", "resnet8", "--epochs", "1", "--batch-size", "10", "--threads", "2");
        Assert.True(code == 0, err);
        return outDir;
    });

    private static Dictionary<string, string> Snapshot(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(dir, f), f => Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f))));
}
