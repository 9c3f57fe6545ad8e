// Loads a model zip saved by a ResNet.MLNet training pipeline and scores an image folder (one subfolder per class).
// Usage: ScoringApp <model.zip> <image folder>
using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: ScoringApp <model.zip> <image folder with one subfolder per class>");
    return 2;
}
var ml = new MLContext();
var images = ml.Data.LoadImagesFromDirectory(args[1]);

// The batched scorer, two ONNX Runtime threads; plain ml.RegisterResNet().Model.Load works on the same zip, row by row.
var model = ml.Model.LoadWithResNetScoring(args[0], out _, threads: 2);
var scored = model.Transform(images);
var metrics = ml.MulticlassClassification.Evaluate(scored);
var predicted = scored.GetColumn<string>("PredictedClass").ToList();

var plain = ml.RegisterResNet().Model.Load(args[0], out _).Transform(images).GetColumn<string>("PredictedClass").ToList();
int agree = predicted.Zip(plain).Count(p => p.First == p.Second);

Console.WriteLine($"images: {predicted.Count}");
Console.WriteLine($"accuracy: {metrics.MicroAccuracy:F4}");
Console.WriteLine($"batched and row-by-row agree: {agree}/{plain.Count}");
if (OperatingSystem.IsLinux())
    Console.WriteLine($"libtorch loaded: {File.ReadAllText("/proc/self/maps").Contains("libtorch", StringComparison.Ordinal)}");
return agree == plain.Count ? 0 : 1;
