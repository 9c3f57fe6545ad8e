using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis.CSharp.Scripting;
using Microsoft.CodeAnalysis.Scripting;
using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.Trainer.Models;

namespace ResNet.MLNet.Tests;

/// <summary>
/// Compiles and runs the C# samples of README.md, so they cannot rot. Only file names and sizes are substituted
/// (the embedded dataset for "pets", temporary output paths, fewer epochs); the code is the README's.
/// </summary>
public sealed partial class ReadmeSamplesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("resnet-readme-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [GeneratedRegex("```csharp\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();

    private static IReadOnlyList<string> Samples()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string readme = Path.Combine(dir.FullName, "README.md");
            if (File.Exists(readme) && Directory.Exists(Path.Combine(dir.FullName, "src", "ResNet.MLNet")))
                return CSharpBlock().Matches(File.ReadAllText(readme)).Select(m => m.Groups[1].Value).ToList();
        }
        throw new FileNotFoundException("README.md of the repository was not found above " + AppContext.BaseDirectory);
    }

    private static ScriptOptions Options => ScriptOptions.Default
        .WithReferences(typeof(MLContext).Assembly, typeof(DataOperationsCatalog).Assembly, typeof(ImageEstimatorsCatalog).Assembly,
            typeof(ResNetCatalog).Assembly, typeof(Trainer.Models.ResNetModel).Assembly, typeof(TorchSharp.torch).Assembly,
            typeof(Microsoft.ML.Data.TextLoader).Assembly)
        .WithImports("System", "System.IO", "System.Linq", "Microsoft.ML", "Microsoft.ML.Data", "ResNet.MLNet", "ResNet.MLNet.Transforms", "ResNet.Trainer.Models");

    [Fact]
    public void README_HasTheSamplesThisTestRuns()
    {
        var samples = Samples();
        Assert.Contains(samples, s => s.Contains("ml.Transforms.ResNetClassifier("));
        Assert.Contains(samples, s => s.Contains("ResNetWeights.Load("));
    }

    [Fact]
    public void PretrainedFineTuneSample_Compiles()
    {
        // Running it needs torchvision's resnet50 file (no download in tests); the catalog route itself is run by the
        // pretrained parity tests against a loopback server.
        string code = Samples().Single(s => s.Contains("PretrainedModel = \"resnet50\""));
        var diagnostics = CSharpScript.Create(code, Options.AddReferences(typeof(Trainer.Pretrained.PretrainedWeights).Assembly)).Compile();
        Assert.Empty(diagnostics.Where(d => d.Severity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error));
        Assert.True(code.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length <= 5, "the README promises a five-line fine-tune");
    }

    [Fact]
    public async Task MLNetSample_CompilesTrainsEvaluatesAndSaves()
    {
        string code = Samples().Single(s => s.Contains("ml.Transforms.ResNetClassifier(") && !s.Contains("PretrainedModel"));
        string zip = Path.Combine(_dir, "pets.zip");
        code = code.Replace("\"pets.zip\"", Quote(zip))
                   .Replace("\"pets\"", Quote(ReadmeData.Train))
                   .Replace("Epochs = 30", "Epochs = 15")
                   .Replace("ImageSize = 64", "ImageSize = 28");
        var state = await CSharpScript.RunAsync(code, Options);
        var metrics = (MulticlassClassificationMetrics)state.GetVariable("metrics").Value;
        Assert.InRange(metrics.MicroAccuracy, 0.25, 1.0); // 10 classes: chance is 0.10
        Assert.True(File.Exists(zip));
        var loaded = new MLContext().RegisterResNet().Model.Load(zip, out _);
        Assert.NotNull(loaded);
    }

    [Fact]
    public async Task TorchvisionWeightsSample_LoadsAStateDict()
    {
        string code = Samples().Single(s => s.Contains("ResNetWeights.Load("));
        // The sample's .pth comes from torch.save in PyTorch; the same format is written here by ResNetWeights.Save.
        string pth = Path.Combine(_dir, "resnet50.pth");
        using (var source = new Trainer.Models.ResNetModel(ResNetSpec.Parse("resnet50"), seed: 3))
            ResNetWeights.Save(source, pth);
        // A script's top level cannot hold a using declaration (a program's can): the one change to the code.
        code = code.Replace("\"resnet50.pth\"", Quote(pth)).Replace("using var model", "var model") + "\nmodel";
        var state = await CSharpScript.RunAsync(code, Options);
        using var model = (Trainer.Models.ResNetModel)state.ReturnValue;
        using var reference = new Trainer.Models.ResNetModel(ResNetSpec.Parse("resnet50"), seed: 3);
        Assert.True(model.state_dict()["layer3.4.conv2.weight"].equal(reference.state_dict()["layer3.4.conv2.weight"]).all().item<bool>());
    }

    private static string Quote(string path) => "@\"" + path.Replace("\"", "\"\"") + "\"";

    private static class ReadmeData
    {
        public static string Train => Tests.Samples.Train;
    }
}
