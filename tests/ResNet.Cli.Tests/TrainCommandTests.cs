using static ResNet.Cli.Tests.Cli;
using System.Text.Json;
using ResNet.Trainer.Data;

namespace ResNet.Cli.Tests;

public class TrainCommandTests
{
    private static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "resnet-cli-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    // A real image folder with train/ and test/: the first images of each Fashion-MNIST class, as PNGs.
    private static readonly Lazy<string> Folder = new(() =>
    {
        string root = TempDir();
        var train = InMemoryImages.From(DatasetSplit.Balanced(Idx.LoadSplit("/usr/share/datasets/fashion-mnist", train: true), 8));
        var test = InMemoryImages.From(DatasetSplit.Balanced(Idx.LoadSplit("/usr/share/datasets/fashion-mnist", train: false), 3));
        for (int i = 0; i < train.Count; i++) ImageDecoder.SavePng(train.Load(i), Path.Combine(root, "train", train.ClassNames[train.LabelOf(i)], $"{i}.png"));
        for (int i = 0; i < test.Count; i++) ImageDecoder.SavePng(test.Load(i), Path.Combine(root, "test", test.ClassNames[test.LabelOf(i)], $"{i}.png"));
        return root;
    });

    [Theory]
    [InlineData("train", "--data")]
    [InlineData("train", "--resume")]
    [InlineData("evaluate", "--model")]
    [InlineData("evaluate", "ten-crop")]
    [InlineData("demo", "--data")]
    [InlineData("demo", "fashion-mnist-small")]
    public void Help_DescribesEachCommandsOptions(string command, string mentioned)
    {
        var (code, output, _) = Run(command, "--help");
        Assert.Equal(0, code);
        Assert.Contains(mentioned, output);
    }

    [Fact]
    public void Demo_OnAFolder_TrainsEvaluatesAndWritesModelMetricsAndPlots_ThenEvaluateAgrees()
    {
        string outDir = Path.Combine(TempDir(), "run");
        var (code, output, err) = Run("demo", "--data", Folder.Value, "--output", outDir, "--arch", "resnet8", "--epochs", "2", "--batch-size", "20", "--threads", "2");
        Assert.True(code == 0, err);
        Assert.Contains("data: image folder", output);
        Assert.Contains("test accuracy:", output);
        Assert.Contains("on 30 held-out images", output);
        Assert.Contains("true \\ predicted", output);
        Assert.Contains(Path.GetFullPath(outDir), output);
        foreach (var file in new[] { "model.dat", "model.json", "metrics.csv", "metrics.json", "curves.svg", "confusion.svg", "checkpoints/last.ckpt" })
            Assert.True(File.Exists(Path.Combine(outDir, file)), file);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(outDir, "metrics.csv")).Length); // header + 2 epochs
        Assert.StartsWith("<svg", File.ReadAllText(Path.Combine(outDir, "confusion.svg")));
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")));
        double accuracy = metrics.RootElement.GetProperty("test").GetProperty("accuracy").GetDouble();
        Assert.Equal(30, metrics.RootElement.GetProperty("test").GetProperty("images").GetInt32());

        var (evalCode, evalOut, evalErr) = Run("evaluate", "--model", Path.Combine(outDir, "model.dat"), "--data", Folder.Value);
        Assert.True(evalCode == 0, evalErr);
        Assert.Contains($"accuracy {accuracy.ToString("P2", System.Globalization.CultureInfo.InvariantCulture)}", evalOut);
        Assert.True(File.Exists(Path.Combine(outDir, "evaluation.json")));
    }

    [Fact]
    public void Train_ResumeWithAnotherArchitecture_ExitsTwoNamingBoth()
    {
        string outDir = Path.Combine(TempDir(), "run");
        Assert.Equal(0, Run("train", "--data", Path.Combine(Folder.Value, "train"), "--output", outDir, "--arch", "resnet8", "--epochs", "1", "--batch-size", "40").Code);
        var (code, _, err) = Run("train", "--data", Path.Combine(Folder.Value, "train"), "--output", outDir, "--arch", "resnet14", "--epochs", "1", "--resume");
        Assert.Equal(2, code);
        Assert.Contains("resnet8", err);
        Assert.Contains("resnet14", err);
    }

    [Fact]
    public void Train_BadInputs_ExitTwoWithAMessageNamingTheInput()
    {
        string missing = Path.Combine(TempDir(), "missing");
        var (code, _, err) = Run("train", "--data", missing);
        Assert.Equal(2, code);
        Assert.Contains(missing, err);

        string oneClass = TempDir();
        var img = InMemoryImages.From(DatasetSplit.Balanced(Idx.LoadSplit("/usr/share/datasets/fashion-mnist", train: false), 1));
        ImageDecoder.SavePng(img.Load(0), Path.Combine(oneClass, "shirts", "0.png"));
        (code, _, err) = Run("train", "--data", oneClass);
        Assert.Equal(2, code);
        Assert.Contains("only one class", err);

        (code, _, err) = Run("train", "--data", Path.Combine(Folder.Value, "train"), "--device", "cuda", "--epochs", "1");
        Assert.Equal(2, code);
        Assert.Contains("CUDA is not available", err);

        (code, _, err) = Run("train", "--data", Path.Combine(Folder.Value, "train"), "--recipe", "paper-mnist");
        Assert.Equal(2, code);
        Assert.Contains("fast-cpu", err);
    }

    [Fact]
    public void Demo_WithoutTheSampleFolder_SaysHowToPointAtData()
    {
        var (code, _, err) = Run("demo", "--data", Path.Combine(TempDir(), "nowhere"));
        Assert.Equal(2, code);
        Assert.Contains("nowhere", err);
    }
}
