using static ResNet.Cli.Tests.Cli;
using ResNet.Trainer.Data;

namespace ResNet.Cli.Tests;

public class TensorBoardFlagTests
{
    [Fact]
    public void Train_WithTensorBoard_WritesAnEventFileWithEachEpochsLossAndTheConfusionMatrix()
    {
        string root = Path.Combine(Path.GetTempPath(), "resnet-cli-tests", Guid.NewGuid().ToString("N"));
        var images = InMemoryImages.From(DatasetSplit.Balanced(Idx.LoadSplit("/usr/share/datasets/fashion-mnist", train: true), 4));
        for (int i = 0; i < images.Count; i++)
            foreach (var part in new[] { "train", "test" })
                ImageDecoder.SavePng(images.Load(i), Path.Combine(root, "data", part, images.ClassNames[images.LabelOf(i)], $"{i}.png"));
        string logs = Path.Combine(root, "tb");
        var (code, _, err) = Run("train", "--data", Path.Combine(root, "data"), "--output", Path.Combine(root, "run"), "--arch", "resnet8", "--epochs", "2", "--batch-size", "20", "--tensorboard", logs);
        Assert.True(code == 0, err);
        byte[] events = File.ReadAllBytes(Assert.Single(Directory.GetFiles(logs, "events.out.tfevents.*")));
        string text = System.Text.Encoding.UTF8.GetString(events);
        Assert.Contains("epoch/loss", text);
        Assert.Contains("epoch/images_per_second", text);   // 2 iterations per epoch: fewer than ProgressEvery, so no iteration events
        Assert.Contains("| T-shirt_top |", text);   // the confusion matrix's first row
    }
}
