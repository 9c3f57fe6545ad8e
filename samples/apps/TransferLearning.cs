#:project ../../src/ResNet.MLNet/ResNet.MLNet.csproj
#:package Microsoft.ML.OnnxRuntime
#:property PublishAot=false
#:property GenerateDocumentationFile=false
#:package Microsoft.ML.DnnImageFeaturizer.ResNet18
// The TransferLearning notebook (samples/Notebooks/TransferLearning.ipynb) as a .NET 10 file-based app:
//   dotnet run samples/apps/TransferLearning.cs
// An ImageNet-trained ResNet18 from the pretrained catalog, by name, used two ways:
// 1. head only: frozen 512 pooled features + ML.NET's L-BFGS maximum entropy; 2. fine-tuning the whole network.
// RESNET_PRETRAINED names the catalog entry (default resnet18: torchvision's IMAGENET1K_V1 file, downloaded on first use;
// cntk-resnet18 is the CNTK trunk of Microsoft.ML.DnnImageFeaturizer.ResNet18, which this app references).
// RESNET_NOTEBOOK_SCALE=ci runs it at CI scale, where run-apps.sh serves a ResNet-18 state_dict with random weights
// (written by Debian's torchvision under its own hashed name) from a local mirror, RESNET_MLNET_WEIGHTS_URL.
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet;
using ResNet.MLNet.Transforms;
using ResNet.Trainer.Pretrained;
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

// The pretrained network, by catalog name. A CI mirror holds a stand-in file under its own hashed name (the downloader
// checks the hash in the name), so the catalog's ResNet-18 entry is pointed at that name.
PretrainedWeights pretrained = Environment.GetEnvironmentVariable("RESNET_PRETRAINED") ?? "resnet18";
if (ci && Environment.GetEnvironmentVariable(WeightsCache.MirrorVariable) is { } mirror && Directory.Exists(mirror)
    && Directory.GetFiles(mirror, "resnet18-*.pth").FirstOrDefault() is { } standIn)
    pretrained = ResNetPretrained.ResNet18 with { Tag = "CI-RANDOM", Url = new Uri(ResNetPretrained.ResNet18.Url!, Path.GetFileName(standIn)), Top1 = null, Top5 = null };
Console.WriteLine($"pretrained: {pretrained.Name}, {pretrained.Parameters:N0} parameters" +
    (pretrained.Transform is { } t ? $", resize {t.ResizeSize}, centre crop {t.CropSize}" : ", stretched to 224x224") +
    (pretrained.Top1 is double top1 ? $", {top1:F3}% ImageNet top-1" : ""));

// 1. Head only: the trunk runs once per image (cache checkpoint), L-BFGS makes many passes over the features.
var headOnly = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.ResNetFeaturizer("Features", "ImagePath", pretrained: pretrained))
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

// 2. Fine-tuning every layer from the same weights (a new 10-class classifier), with the catalog's fine-tune recipe:
// the trunk at a tenth of the head's rate, a cosine schedule, random-resized crops and flips of the original images.
var fineTuner = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
{
    ImageColumnName = "ImagePath",
    PretrainedModel = pretrained,
    Epochs = ci ? 1 : 6,
    BatchSize = 32,
    Seed = 1,
    MetricsCallback = new EpochPrinter(),
});
var fineTune = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(fineTuner)
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
watch.Restart();
var tunedModel = fineTune.Fit(train);
double tunedTrainSeconds = watch.Elapsed.TotalSeconds;
watch.Restart();
var tunedMetrics = ml.MulticlassClassification.Evaluate(tunedModel.Transform(test));
double tunedScoreSeconds = watch.Elapsed.TotalSeconds;
Console.WriteLine($"fine-tuned: test accuracy {tunedMetrics.MicroAccuracy:P1}; training {tunedTrainSeconds:F0} s, scoring {tunedScoreSeconds:F0} s");
int size = fineTuner.LastTraining!.Card.ImageHeight;

Console.WriteLine($"{"method",-58} {"accuracy",9} {"train s",8} {"score s",8}");
Console.WriteLine($"{$"head only: frozen {pretrained.Name} features + L-BFGS",-58} {headMetrics.MicroAccuracy,9:P1} {headTrainSeconds,8:F0} {headScoreSeconds,8:F0}");
Console.WriteLine($"{$"fine-tuned {pretrained.Name} ({fineTuner.LastTraining.History.Count} epochs at {size}x{size})",-58} {tunedMetrics.MicroAccuracy,9:P1} {tunedTrainSeconds,8:F0} {tunedScoreSeconds,8:F0}");
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
