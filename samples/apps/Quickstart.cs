#:project ../../src/ResNet.MLNet/ResNet.MLNet.csproj
#:package Microsoft.ML.OnnxRuntime
#:property PublishAot=false
#:property GenerateDocumentationFile=false
// The Quickstart notebook (samples/Notebooks/Quickstart.ipynb) as a .NET 10 file-based app:
//   dotnet run samples/apps/Quickstart.cs [-- <output folder>]
// RESNET_NOTEBOOK_SCALE=ci runs it at CI scale (2 epochs). The confusion matrix and the gallery go to <output folder>
// (default: a temporary folder) as HTML, where the notebook displays them.
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet;
using ResNet.MLNet.Transforms;
using ResNet.Trainer.Training;

var scale = Environment.GetEnvironmentVariable("RESNET_NOTEBOOK_SCALE") ?? "full";
bool ci = scale == "ci";
string outDir = args.Length > 0 ? args[0] : Directory.CreateTempSubdirectory("resnet-quickstart-").FullName;
Directory.CreateDirectory(outDir);
var clock = Stopwatch.StartNew();
Console.WriteLine($"scale: {scale}, {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");

// Load the image folder: one subfolder per class gives ImagePath and Label.
var samples = Path.Combine(AppContext.GetData("EntryPointFileDirectoryPath") as string ?? ".", "..", "data", "fashion-mnist-small");
var ml = new MLContext(seed: 1);
var train = ml.Data.LoadImagesFromDirectory(Path.Combine(samples, "train"));
var test = ml.Data.LoadImagesFromDirectory(Path.Combine(samples, "test"));
Console.WriteLine($"{train.GetColumn<string>("ImagePath").Count()} training images, {test.GetColumn<string>("ImagePath").Count()} test images");
Console.WriteLine("classes: " + string.Join(", ", train.GetColumn<string>("Label").Distinct().Order()));

// Train ResNet-20 on 1-channel 28x28 inputs.
var estimator = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
{
    Architecture = "resnet20",
    Channels = 1,
    ImageSize = 28,
    Epochs = ci ? 2 : 15,
    BatchSize = 64,
    Seed = 1,
    MetricsCallback = new EpochPrinter(),
});
var pipeline = ml.Transforms.LoadImages("Image", null, "ImagePath")
    .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
    .Append(estimator)
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
var watch = Stopwatch.StartNew();
var model = pipeline.Fit(train);
Console.WriteLine($"trained in {watch.Elapsed.TotalSeconds:F0} s");

// Evaluate on the held-out images.
var scored = model.Transform(test);
var metrics = ml.MulticlassClassification.Evaluate(scored);
Console.WriteLine($"test accuracy (micro) {metrics.MicroAccuracy:P1}, macro {metrics.MacroAccuracy:P1}, log-loss {metrics.LogLoss:F3}");
VBuffer<ReadOnlyMemory<char>> slotNames = default;
scored.Schema["Score"].GetSlotNames(ref slotNames);
var classes = slotNames.DenseValues().Select(v => v.ToString()).ToArray();
Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());

// Two test images of each class with their predictions, as an HTML gallery.
var rows = test.GetColumn<string>("ImagePath").Zip(test.GetColumn<string>("Label"), scored.GetColumn<string>("PredictedClass"))
    .GroupBy(r => r.Second).OrderBy(g => g.Key).SelectMany(g => g.Take(2)).ToList();
var gallery = new System.Text.StringBuilder("<div style='display:flex;flex-wrap:wrap;gap:8px;font:11px sans-serif'>");
foreach (var (path, truth, predicted) in rows)
{
    string png = Convert.ToBase64String(File.ReadAllBytes(path));
    string colour = truth == predicted ? "#2a7d2a" : "#c62828";
    gallery.Append($"<figure style='margin:0;text-align:center;width:96px'><img src='data:image/png;base64,{png}' width='84' height='84' style='image-rendering:pixelated'/>" +
                   $"<figcaption>{truth}<br/><span style='color:{colour}'>&#8594; {predicted}</span></figcaption></figure>");
}
File.WriteAllText(Path.Combine(outDir, "gallery.html"), gallery.Append("</div>").ToString());
Console.WriteLine($"{rows.Count(r => r.Second == r.Third)} of {rows.Count} gallery images right; gallery.html written to the output folder");

// Save, reload in a fresh MLContext, and predict one image.
string zip = Path.Combine(outDir, "resnet-quickstart-model.zip");
ml.Model.Save(model, train.Schema, zip);
var fresh = new MLContext().RegisterResNet();
var loaded = fresh.Model.Load(zip, out _);
var reloadedMetrics = fresh.MulticlassClassification.Evaluate(loaded.Transform(test));
Console.WriteLine($"saved {new FileInfo(zip).Length / 1024.0:F0} KB; reloaded model's test accuracy {reloadedMetrics.MicroAccuracy:P1} (before saving: {metrics.MicroAccuracy:P1})");
if (Math.Abs(reloadedMetrics.MicroAccuracy - metrics.MicroAccuracy) > 1e-9)
    throw new InvalidOperationException("The reloaded model scores differently from the one saved.");
var engine = fresh.Model.CreatePredictionEngine<ImageInput, ImagePrediction>(loaded);
var onePath = rows[0].First;
var prediction = engine.Predict(new ImageInput { ImagePath = onePath });
Console.WriteLine($"{Path.GetFileName(Path.GetDirectoryName(onePath))}/{Path.GetFileName(onePath)} -> {prediction.PredictedClass} (p = {prediction.Score.Max():F2}); classes in score order: {string.Join(", ", classes)}");
Console.WriteLine($"app ran at scale '{scale}' in {clock.Elapsed.TotalMinutes:F1} min");

/// <summary>The model's input columns: the image path, and the label (MapValueToKey expects the column; any value will do).</summary>
public class ImageInput { public string ImagePath { get; set; } = ""; public string Label { get; set; } = ""; }
/// <summary>The prediction read back.</summary>
public class ImagePrediction { public string PredictedClass { get; set; } = ""; public float[] Score { get; set; } = []; }

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
