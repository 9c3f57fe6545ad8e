#:project ../../src/ResNet.MLNet/ResNet.MLNet.csproj
#:package Microsoft.ML.OnnxRuntime
#:property PublishAot=false
#:property GenerateDocumentationFile=false
#:package Microsoft.ML.DnnImageFeaturizer.ResNet18
// The TransferLearning notebook (samples/Notebooks/TransferLearning.ipynb) as a .NET 10 file-based app:
//   dotnet run samples/apps/TransferLearning.cs
// An ImageNet-trained ResNet18 trunk (the one ML.NET ships in Microsoft.ML.DnnImageFeaturizer.ResNet18) used two ways:
// 1. head only: frozen 512 pooled features + ML.NET's L-BFGS maximum entropy; 2. fine-tuning the whole network.
// RESNET_NOTEBOOK_SCALE=ci runs it at CI scale.
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet;
using ResNet.MLNet.Transforms;
using ResNet.Trainer.Onnx;
using ResNet.Trainer.Training;

var scale = Environment.GetEnvironmentVariable("RESNET_NOTEBOOK_SCALE") ?? "full";
bool ci = scale == "ci";
var clock = Stopwatch.StartNew();
var samples = Path.Combine(AppContext.GetData("EntryPointFileDirectoryPath") as string ?? ".", "..", "data", "fashion-mnist-small");
var ml = new MLContext(seed: 1);

// The first n images of each class (the folder has 100 training and 30 test images per class).
IDataView Take(string folder, int perClass) => ml.Data.LoadFromEnumerable(
    ml.Data.CreateEnumerable<ImageRow>(ml.Data.LoadImagesFromDirectory(folder), reuseRowObject: false)
        .GroupBy(r => r.Label).SelectMany(g => g.Take(perClass)).ToList());
var train = Take(Path.Combine(samples, "train"), ci ? 10 : 100);
var test = Take(Path.Combine(samples, "test"), ci ? 10 : 30);
int testCount = test.GetColumn<string>("Label").Count();
Console.WriteLine($"{train.GetColumn<string>("Label").Count()} training images, {testCount} test images, 10 classes");

// The package copies DnnImageModels/ into the app's output folder; its own tools/ folder holds the same files.
string dnnModels = Path.Combine(AppContext.BaseDirectory, "DnnImageModels");
if (!Directory.Exists(dnnModels))
    dnnModels = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(typeof(Microsoft.ML.ResNet18Extension).Assembly.Location)!, "..", "..", "tools", "DnnImageModels"));
string work = Directory.CreateTempSubdirectory("resnet-transfer-").FullName;
string featuresOnnx = Path.Combine(work, "resnet18-imagenet-features.onnx");
File.WriteAllBytes(featuresOnnx, ResNetFeaturizerEstimator.PretrainedResNet18Onnx(dnnModels));
var imported = OnnxImporter.ImportDnnImageFeaturizer(
    Path.Combine(dnnModels, "ResNet18Onnx", "ResNet18.onnx"), Path.Combine(dnnModels, "ResNetPrepOnnx", "ResNetPreprocess.onnx"));
string imagenetWeights = Path.Combine(work, "resnet18-imagenet.dat");
ResNet.Trainer.Models.ResNetWeights.Save(imported.Model, imagenetWeights);
var trunkSpec = imported.Model.Spec;
Console.WriteLine($"imported {trunkSpec.Name}: stages [{string.Join(", ", trunkSpec.StageDepths)}], {imported.Model.parameters().Sum(p => p.numel()):N0} parameters, input {imported.Info.Height}x{imported.Info.Width}");
imported.Model.Dispose();

// 1. Head only: the trunk runs once per image (cache checkpoint), L-BFGS makes many passes over the features.
var headOnly = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.ResNetFeaturizer("Features", "ImagePath", modelPath: featuresOnnx))
    .AppendCacheCheckpoint(ml)
    .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy())
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
var watch = Stopwatch.StartNew();
var headModel = headOnly.Fit(train);
double headTrainSeconds = watch.Elapsed.TotalSeconds;
watch.Restart();
var headMetrics = ml.MulticlassClassification.Evaluate(headModel.Transform(test));
double headScoreSeconds = watch.Elapsed.TotalSeconds;
Console.WriteLine($"head only: test accuracy {headMetrics.MicroAccuracy:P1}; training {headTrainSeconds:F0} s, scoring {headScoreSeconds:F0} s");

// 2. Fine-tuning from the ImageNet weights (every layer but the new 10-class fc), at a smaller input to stay CPU-sized.
int size = ci ? 32 : 64;
var fineTuner = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
{
    Architecture = "resnet18",
    Channels = 3,
    ImageSize = size,
    PretrainedWeights = imagenetWeights,
    Epochs = ci ? 1 : 6,
    BatchSize = 32,
    LearningRate = 0.01,
    Seed = 1,
    MetricsCallback = new EpochPrinter(),
});
var fineTune = ml.Transforms.LoadImages("Image", null, "ImagePath")
    .Append(ml.Transforms.Conversion.MapValueToKey("Label"))
    .Append(fineTuner)
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
watch.Restart();
var tunedModel = fineTune.Fit(train);
double tunedTrainSeconds = watch.Elapsed.TotalSeconds;
watch.Restart();
var tunedMetrics = ml.MulticlassClassification.Evaluate(tunedModel.Transform(test));
double tunedScoreSeconds = watch.Elapsed.TotalSeconds;
Console.WriteLine($"fine-tuned: test accuracy {tunedMetrics.MicroAccuracy:P1}; training {tunedTrainSeconds:F0} s, scoring {tunedScoreSeconds:F0} s");

Console.WriteLine($"{"method",-58} {"accuracy",9} {"train s",8} {"score s",8}");
Console.WriteLine($"{"head only: frozen ResNet18 features (224x224) + L-BFGS",-58} {headMetrics.MicroAccuracy,9:P1} {headTrainSeconds,8:F0} {headScoreSeconds,8:F0}");
Console.WriteLine($"{$"fine-tuned ResNet18 ({fineTuner.LastTraining!.History.Count} epochs at {size}x{size})",-58} {tunedMetrics.MicroAccuracy,9:P1} {tunedTrainSeconds,8:F0} {tunedScoreSeconds,8:F0}");
Console.WriteLine($"app ran at scale '{scale}' in {clock.Elapsed.TotalMinutes:F1} min (scoring {testCount} images)");

/// <summary>An image-folder row.</summary>
public class ImageRow { public string ImagePath { get; set; } = ""; public string Label { get; set; } = ""; }

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
