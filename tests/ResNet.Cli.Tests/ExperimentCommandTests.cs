using static ResNet.Cli.Tests.Cli;
using System.Globalization;

namespace ResNet.Cli.Tests;

public class ExperimentCommandTests
{
    [Fact]
    public void Degradation_OnAFashionMnistSubset_WritesOneCsvRowPerNetAndEpoch_WithFiniteErrors_AndThePlot()
    {
        string outDir = Path.Combine(Path.GetTempPath(), "resnet-cli-tests", Guid.NewGuid().ToString("N"));
        var (code, output, err) = Run("experiment", "degradation", "--depths", "8,14", "--epochs", "2", "--subset", "60",
            "--batch-size", "20", "--threads", "2", "--output", outDir);
        Assert.True(code == 0, err + output);

        var lines = File.ReadAllLines(Path.Combine(outDir, "degradation.csv"));
        Assert.Equal("net,depth,residual,parameters,epoch,iteration,train_loss,train_error,learning_rate,seconds", lines[0]);
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToList();
        // 2 depths x (plain, residual) x 2 epochs.
        Assert.Equal(8, rows.Count);
        Assert.All(rows, r => Assert.Equal(10, r.Length));
        Assert.Equal(["plain8", "resnet8", "plain14", "resnet14"], rows.Select(r => r[0]).Distinct());
        Assert.Equal(["8", "8", "8", "8", "14", "14", "14", "14"], rows.Select(r => r[1]));
        Assert.Equal(["false", "false", "true", "true", "false", "false", "true", "true"], rows.Select(r => r[2]));
        Assert.Equal(["1", "2", "1", "2", "1", "2", "1", "2"], rows.Select(r => r[4]));
        // 60 images from 10 classes at batch 20: 3 iterations per epoch.
        Assert.Equal(["3", "6"], rows.Take(2).Select(r => r[5]));
        foreach (var r in rows)
        {
            double loss = double.Parse(r[6], CultureInfo.InvariantCulture), error = double.Parse(r[7], CultureInfo.InvariantCulture);
            Assert.True(double.IsFinite(loss) && loss > 0, $"loss {r[6]}");
            Assert.InRange(error, 0.0, 1.0);
        }
        // A residual net has the same parameter count as its plain counterpart (option A shortcuts have none).
        Assert.Equal(rows[0][3], rows[2][3]);

        string svg = File.ReadAllText(Path.Combine(outDir, "degradation.svg"));
        Assert.StartsWith("<svg", svg);
        Assert.Equal(4, svg.Split("<polyline").Length - 1);
        Assert.Contains("plain14", output);
        Assert.Contains("final training error", output);
    }

    [Theory]
    [InlineData("--depths", "21", "6n+2")]
    [InlineData("--depths", "20,x", "not a whole number")]
    [InlineData("--epochs", "0", "--epochs 0")]
    [InlineData("--warmup", "-1", "--warmup -1 is not valid: give a warm-up of 0 or more iterations")]
    public void Degradation_BadSettings_SayWhatToGive(string option, string value, string expected)
    {
        var (code, _, err) = Run("experiment", "degradation", option, value, "--subset", "20", "--output", Path.GetTempPath());
        Assert.Equal(2, code);
        Assert.Contains(expected, err);
    }

    [Fact]
    public void Degradation_ANegativeSubset_IsRefusedByItsFlag_BeforeTheDataIsRead()
    {
        var (code, _, err) = Run("experiment", "degradation", "--subset", "-1", "--data", "/nonexistent", "--output", Path.GetTempPath());
        Assert.Equal(2, code);
        Assert.Contains("--subset -1 is not valid: give a number of training images, or 0 for all of them", err);
    }

    [Fact]
    public void Degradation_ShowSettings_PrintsTheLibrarysDefaults_WithTheFlagsGiven_AndTrainsNothing()
    {
        string outDir = Path.Combine(Path.GetTempPath(), "resnet-cli-tests", Guid.NewGuid().ToString("N"));
        var (code, output, err) = Run("experiment", "degradation", "--seed", "2", "--warmup", "0", "--show-settings", "--output", outDir);
        Assert.True(code == 0, err + output);
        // The CLI's defaults are DegradationOptions' own: with the two flags given, the JSON is the library's default settings with those two changed.
        var expected = new ResNet.Trainer.Training.DegradationOptions { Seed = 2, Warmup = new ResNet.Trainer.Training.LinearWarmup(0) };
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(expected), output.Trim());
        Assert.False(Directory.Exists(outDir));
    }
}
