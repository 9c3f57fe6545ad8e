using ResNet.Cli.Reporting;
using ResNet.Trainer.Training;

namespace ResNet.Cli.Tests;

/// <summary>The training progress the command line prints: a live bar, epoch lines, notes and warnings.</summary>
public class ProgressPrinterTests
{
    [Fact]
    public void NotesAndWarnings_CloseTheLiveBar_AndWarningsSayWhatTheyAre()
    {
        var output = new StringWriter { NewLine = "\n" };
        var printer = new ProgressPrinter(output, live: true);
        printer.Report(new TrainingProgress(ProgressKind.Iteration, 1, 2, 5, 10, 2.5, 0.75, null, null, 0.1, 100, TimeSpan.FromSeconds(30)));
        printer.Report(TrainingProgress.Note("resumed from last.ckpt"));
        printer.Report(TrainingProgress.Warning("the feature cache 'f.bin' is damaged; computing the features again."));
        var lines = output.ToString().Split('\n');
        Assert.StartsWith("\r[############------------] epoch 1/2 it 5/10 loss 2.500 err 75.0 %", lines[0]);
        Assert.Equal("resumed from last.ckpt", lines[1]);
        Assert.Equal("warning: the feature cache 'f.bin' is damaged; computing the features again.", lines[2]);
        Assert.Equal("", lines[3]);
        Assert.Equal(4, lines.Length);
    }
}
