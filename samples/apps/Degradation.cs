#:project ../../src/ResNet.MLNet/ResNet.MLNet.csproj
#:package Microsoft.ML.OnnxRuntime
#:property PublishAot=false
#:property GenerateDocumentationFile=false
// The Degradation notebook (samples/Notebooks/Degradation.ipynb) as a .NET 10 file-based app:
//   dotnet run samples/apps/Degradation.cs [-- <output folder>]
// Plain versus residual CIFAR-family networks at depths 20 and 56 on a balanced Fashion-MNIST subset (He et al. 2015,
// section 4.1), in DegradationOptions' default setting. RESNET_NOTEBOOK_SCALE=ci runs it at CI scale. The curves go to
// <output folder>/degradation.svg in the paper's Fig. 6 layout.
using System.Diagnostics;
using ResNet.Trainer.Data;
using ResNet.Trainer.Training;

var scale = Environment.GetEnvironmentVariable("RESNET_NOTEBOOK_SCALE") ?? "full";
bool ci = scale == "ci";
string outDir = args.Length > 0 ? args[0] : Directory.CreateTempSubdirectory("resnet-degradation-").FullName;
Directory.CreateDirectory(outDir);
var clock = Stopwatch.StartNew();

var options = ci ? new DegradationOptions { TrainingImages = 100, Epochs = 2, BatchSize = 20 } : new DegradationOptions();
var fashion = Idx.LoadSplit("/usr/share/datasets/fashion-mnist", train: true);
var subset = options.SelectTrainingImages(fashion);
var recipe = options.Recipe();
Console.WriteLine($"{subset.Count} of {fashion.Count} training images, {fashion.Width}x{fashion.Height} gray; depths {string.Join(", ", options.Depths)}; seed {options.Seed}");
Console.WriteLine($"recipe: {options.Epochs} epochs, batch {recipe.BatchSize}, lr {recipe.LearningRate} (/10 at 50% and 75%), momentum {recipe.Momentum}, weight decay {recipe.WeightDecay}, augmentation {recipe.Augmentation}");

// Same seed, same batches in the same order; only the depth and the shortcuts differ.
var result = DegradationExperiment.Run(subset, options, new EpochPrinter());
File.WriteAllText(Path.Combine(outDir, "degradation.svg"), result.ToSvg($"seed {options.Seed}"));
Console.Write(result.ToCsv());
Console.Write(result.Summary());
if (result.Verdict() is var (plainDegrades, residualImproves))
    Console.WriteLine(plainDegrades && residualImproves
        ? "Both halves of the paper's claim hold in this run."
        : "This run does not reproduce the paper's claim in full (see above).");
Console.WriteLine($"app ran at scale '{scale}' in {clock.Elapsed.TotalMinutes:F1} min; degradation.svg written to the output folder");

/// <summary>Prints one line per epoch (and the trainer's notes) as training runs.</summary>
class EpochPrinter : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress p)
    {
        if (p.Kind == ProgressKind.Epoch)
            Console.WriteLine($"  epoch {p.Epoch}/{p.Epochs}: loss {p.Loss:F3}, training error {p.TrainError:P1}, lr {p.LearningRate:G3}, {p.ImagesPerSecond:F0} images/s");
        else if (p.Kind == ProgressKind.Message)
            Console.WriteLine(p.Message);
    }
}
