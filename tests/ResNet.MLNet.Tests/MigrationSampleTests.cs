using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.ML;

namespace ResNet.MLNet.Tests;

public sealed partial class ReadmeSamplesTests
{
    [Fact]
    public async Task MigrationSample_FromImageClassificationTrainer_TrainsWithEarlyStoppingOnLoss()
    {
        string code = Samples().Single(s => s.Contains("EarlyStoppingMinDelta"));
        string workspace = Path.Combine(_dir, "workspace");
        // Substituted: the embedded dataset for "images", a temporary workspace, fewer epochs.
        code = code.Replace("\"images\"", Quote(Tests.Samples.Train)).Replace("\"workspace\"", Quote(workspace)).Replace("Epochs = 50", "Epochs = 3");
        var state = await CSharpScript.RunAsync(code, Options.AddReferences(typeof(ResNet.Trainer.Training.EarlyStoppingMetric).Assembly));
        var model = (ITransformer)state.GetVariable("migrated").Value;
        Assert.NotNull(model);
        Assert.True(Directory.EnumerateFiles(workspace).Any(), "the checkpoint folder stays empty");
    }
}
