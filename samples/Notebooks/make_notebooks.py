"""Writes the .ipynb files of this folder from the cell sources below (outputs empty).

The notebooks are the deliverable; this script keeps their shared first cells identical. Run it after editing a
cell here, then execute the notebooks with run-notebooks.sh (which can write the outputs back with --write-outputs).
Regenerating empties every notebook's outputs: restore the ones whose cells did not change (git checkout) and
re-run the others.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text.strip("\n")}


def code(text):
    return {"cell_type": "code", "execution_count": None,
            "metadata": {"dotnet_interactive": {"language": "csharp"}, "polyglot_notebook": {"kernelName": "csharp"}},
            "outputs": [], "source": text.strip("\n")}


PACKAGES = code('''
// The libraries as a user gets them: the NuGet packages packed from this repository into artifacts/packages
// (from the repository root: dotnet pack src/ResNet.MLNet.Scoring -c Release && dotnet pack src/ResNet.Trainer -c Release && dotnet pack src/ResNet.MLNet -c Release;
// run-notebooks.sh does this). A #i line takes only a literal path, so this cell finds the folder relative to the
// notebook and sends the two directives to the kernel; with the path at hand, the plain form is:
//   #i "nuget: /path/to/repo/artifacts/packages"
//   #r "nuget: ResNet.MLNet, 0.1.0"
//   #r "nuget: Microsoft.ML.OnnxRuntime, 1.31.0"   (the app picks ONNX Runtime's native build: CPU here, or .Gpu)
using System.IO;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.Events;

var packages = Path.GetFullPath(Path.Combine("..", "..", "artifacts", "packages"));
var restore = await Kernel.Root.SendAsync(new SubmitCode($"#i \\"nuget: {packages}\\"\\n#r \\"nuget: ResNet.MLNet, 0.1.0\\"\\n#r \\"nuget: Microsoft.ML.OnnxRuntime, 1.31.0\\"", "csharp"));
if (restore.Events.OfType<CommandFailed>().FirstOrDefault() is { } failed)
    throw new InvalidOperationException($"Referencing ResNet.MLNet from {packages} failed: {failed.Message}");
''')

SCALE = code('''
// RESNET_NOTEBOOK_SCALE=ci keeps this notebook within a few minutes (CI runs it that way); anything else is the full run.
using System.IO;

var scale = Environment.GetEnvironmentVariable("RESNET_NOTEBOOK_SCALE") ?? "full";
bool ci = scale == "ci";
// The repository's folders, found upwards from the notebook's folder.
string FindUp(string relative)
{
    for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        if (Directory.Exists(Path.Combine(dir.FullName, relative))) return Path.Combine(dir.FullName, relative);
    throw new DirectoryNotFoundException($"'{relative}' was not found above {Directory.GetCurrentDirectory()}; open the notebook from the repository.");
}
var clock = System.Diagnostics.Stopwatch.StartNew();
Console.WriteLine($"scale: {scale}, {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
''')

EPOCH_PRINTER = code('''
using ResNet.Trainer.Training;

// Prints one line per epoch (and the trainer's notes) as training runs.
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
''')

RUN_NOTE = md('''
## About the outputs

The outputs below come from a real run of this notebook; the last cell prints the scale it ran at
(`RESNET_NOTEBOOK_SCALE`), the machine and the wall time. Numbers from a `ci` run are a smoke test of the code path,
not results.
''')

FOOTER = code('''
Console.WriteLine($"notebook ran at scale '{scale}' in {clock.Elapsed.TotalMinutes:F1} min (after package restore)");
''')

# ----------------------------------------------------------------------------------------------------------------
quickstart = [
    md('''
# Quickstart: a residual network as an ML.NET pipeline step

An image folder (one subfolder per class) goes in, a trained ResNet comes out as an ordinary ML.NET transformer:
`Transform`, `Evaluate`, `Save`/`Load` and `PredictionEngine` work as for any ML.NET model. TorchSharp trains,
the model is exported to ONNX, and ONNX Runtime scores it inside the pipeline.

The data is the embedded sample `samples/data/fashion-mnist-small`: 10 Fashion-MNIST classes, 100 training and
30 test images per class, 28x28 gray PNGs.
'''),
    RUN_NOTE,
    PACKAGES,
    SCALE,
    EPOCH_PRINTER,
    md('''
## Load the image folder

`LoadImagesFromDirectory` lists the images with their class folder as the label (`ImagePath`, `Label`).
'''),
    code('''
using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet;
using ResNet.MLNet.Transforms;

var samples = FindUp(Path.Combine("samples", "data", "fashion-mnist-small"));
var ml = new MLContext(seed: 1);
var train = ml.Data.LoadImagesFromDirectory(Path.Combine(samples, "train"));
var test = ml.Data.LoadImagesFromDirectory(Path.Combine(samples, "test"));
Console.WriteLine($"{train.GetColumn<string>("ImagePath").Count()} training images, {test.GetColumn<string>("ImagePath").Count()} test images");
Console.WriteLine("classes: " + string.Join(", ", train.GetColumn<string>("Label").Distinct().Order()));
'''),
    md('''
## Train

`LoadImages` decodes, `MapValueToKey` makes the label a key, `ResNetClassifier` trains ResNet-20 (the paper's CIFAR
family: a 3x3 stem, three stages of 16/32/64 filters) on 1-channel 28x28 inputs with the `fast-cpu` recipe, and
`MapKeyToValue` turns the predicted key back into the class name.
'''),
    code('''
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

var watch = System.Diagnostics.Stopwatch.StartNew();
var model = pipeline.Fit(train);
Console.WriteLine($"trained in {watch.Elapsed.TotalSeconds:F0} s");
'''),
    md('''
## Evaluate on the held-out images

ML.NET's multiclass evaluator works on the ResNet's `Score` and `PredictedLabel` columns as on any trainer's.
'''),
    code('''
var scored = model.Transform(test);
var metrics = ml.MulticlassClassification.Evaluate(scored);
Console.WriteLine($"test accuracy (micro) {metrics.MicroAccuracy:P1}, macro {metrics.MacroAccuracy:P1}, log-loss {metrics.LogLoss:F3}");

// The class names in score order, from the Score column's slot names.
VBuffer<ReadOnlyMemory<char>> slotNames = default;
scored.Schema["Score"].GetSlotNames(ref slotNames);
var classes = slotNames.DenseValues().Select(v => v.ToString()).ToArray();
'''),
    md('''
## Confusion matrix

Rows are the true classes, columns the predicted ones; the shade is the share of the row.
'''),
    code('''
string ConfusionHtml(ConfusionMatrix cm, string[] names)
{
    var sb = new System.Text.StringBuilder("<table style='border-collapse:collapse;font:12px sans-serif'><tr><th>true \\\\ predicted</th>");
    foreach (var n in names) sb.Append($"<th style='writing-mode:vertical-rl;padding:2px'>{n}</th>");
    sb.Append("</tr>");
    for (int i = 0; i < names.Length; i++)
    {
        double total = Math.Max(1, cm.Counts[i].Sum());
        sb.Append($"<tr><th style='text-align:right;padding-right:6px'>{names[i]}</th>");
        for (int j = 0; j < names.Length; j++)
        {
            double share = cm.Counts[i][j] / total;
            int shade = (int)(255 * (1 - share));
            string ink = share > 0.5 ? "white" : "black";
            sb.Append($"<td style='width:30px;height:24px;text-align:center;border:1px solid #ccc;background:rgb({shade},{shade},255);color:{ink}'>{(cm.Counts[i][j] > 0 ? cm.Counts[i][j].ToString() : "")}</td>");
        }
        sb.Append("</tr>");
    }
    return sb.Append("</table>").ToString();
}
display(HTML(ConfusionHtml(metrics.ConfusionMatrix, classes)));
'''),
    md('''
## A few test images with their predictions

Two images of each class; green when the prediction is right, red when it is wrong.
'''),
    code('''
// The scored view keeps the rows in order; its Label is now a key, so the class names come from the test view.
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
display(HTML(gallery.Append("</div>").ToString()));
'''),
    md('''
## Save and reload

The model saves to an ML.NET zip with `mlContext.Model.Save`; a fresh `MLContext` loads it after
`RegisterResNet()`, and predicts the same.
'''),
    code('''
string zip = Path.Combine(Path.GetTempPath(), "resnet-quickstart-model.zip");
ml.Model.Save(model, train.Schema, zip);
var fresh = new MLContext().RegisterResNet();
var loaded = fresh.Model.Load(zip, out var inputSchema);
var reloadedMetrics = fresh.MulticlassClassification.Evaluate(loaded.Transform(test));
Console.WriteLine($"saved {new FileInfo(zip).Length / 1024.0:F0} KB; reloaded model's test accuracy {reloadedMetrics.MicroAccuracy:P1} (before saving: {metrics.MicroAccuracy:P1})");

// The model's input columns: the image path, and the label (MapValueToKey expects the column; any value will do).
public class ImageInput { public string ImagePath { get; set; } = ""; public string Label { get; set; } = ""; }
public class ImagePrediction { public string PredictedClass { get; set; } = ""; public float[] Score { get; set; } = []; }

var engine = fresh.Model.CreatePredictionEngine<ImageInput, ImagePrediction>(loaded);
var onePath = rows[0].First;
var prediction = engine.Predict(new ImageInput { ImagePath = onePath });
Console.WriteLine($"{Path.GetFileName(Path.GetDirectoryName(onePath))}/{Path.GetFileName(onePath)} -> {prediction.PredictedClass} (p = {prediction.Score.Max():F2})");
'''),
    FOOTER,
]

# ----------------------------------------------------------------------------------------------------------------
transfer = [
    md('''
# Transfer learning with an ImageNet-trained ResNet18, by catalog name

The embedded image folder stands in for "your own images". Two ways to use a network trained on ImageNet, both
reached by its name in the pretrained catalog (`ResNetPretrained`, default `resnet18`: torchvision's IMAGENET1K_V1
file, downloaded on first use into the cache and checked against the SHA-256 prefix in its name):

1. **Head only**: the pretrained trunk, frozen, turns each image into 512 pooled features
   (`ResNetFeaturizer(pretrained: ...)`); an ML.NET linear trainer (L-BFGS maximum entropy) learns the classes on
   them. The features are computed once and cached.
2. **Fine-tuning**: the whole network starts from the same weights with a new 10-class classifier
   (`ResNetClassifier` with `PretrainedModel`), trained with the `fine-tune` recipe (the trunk at a tenth of the
   head's rate, a cosine schedule, random-resized crops and flips of the original images).

The entry's own preprocessing (resize to 256, centre crop 224, ImageNet mean and std) prepares every image, in
training and in the exported model's scorer.

**Where the recorded figures come from.** The machine that runs this repository's notebooks cannot download
torchvision's files. At CI scale (`RESNET_NOTEBOOK_SCALE=ci`) `run-notebooks.sh` serves a ResNet-18 state_dict with
*random* weights, written by Debian's torchvision under its own hashed name, from a local mirror
(`RESNET_MLNET_WEIGHTS_URL`); the numbers of such a run only show that the code path works. The full-scale figures
recorded for this notebook (2026-11-28, 2 cores, 1000 training and 300 test images) come from the one real
ImageNet network reachable there, the CNTK ResNet18 of NuGet `Microsoft.ML.DnnImageFeaturizer.ResNet18` (catalog
entry `cntk-resnet18`), used by an earlier form of this notebook: head only 81.3 % test accuracy (27 s training,
8 s scoring); fine-tuned 6 epochs at 64x64 from its imported weights, 85.3 % (48 s training, 1 s scoring).
They are not figures of torchvision's weights.
'''),
    RUN_NOTE,
    PACKAGES,
    SCALE,
    EPOCH_PRINTER,
    code('''
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet;
using ResNet.MLNet.Transforms;
using ResNet.Trainer.Pretrained;

var samples = FindUp(Path.Combine("samples", "data", "fashion-mnist-small"));
var ml = new MLContext(seed: 1);

public class ImageRow { public string ImagePath { get; set; } = ""; public string Label { get; set; } = ""; }
// The first n images of each class (the full folder has 100 training and 30 test images per class).
IDataView Take(string folder, int perClass) => ml.Data.LoadFromEnumerable(
    ml.Data.CreateEnumerable<ImageRow>(ml.Data.LoadImagesFromDirectory(folder), reuseRowObject: false)
        .GroupBy(r => r.Label).SelectMany(g => g.Take(perClass)).ToList());
var train = Take(Path.Combine(samples, "train"), ci ? 10 : 100);
var test = Take(Path.Combine(samples, "test"), ci ? 10 : 30);
Console.WriteLine($"{train.GetColumn<string>("Label").Count()} training images, {test.GetColumn<string>("Label").Count()} test images, 10 classes");
'''),
    md('''
## The pretrained network, by name

`RESNET_PRETRAINED` picks another entry (`resnet50`, `resnet50:IMAGENET1K_V1`, ...). A CI mirror holds a stand-in
file under its own hashed name (the downloader checks the hash in the name), so there the catalog's ResNet-18 entry
is pointed at that name.
'''),
    code('''
PretrainedWeights pretrained = Environment.GetEnvironmentVariable("RESNET_PRETRAINED") ?? "resnet18";
if (ci && Environment.GetEnvironmentVariable(WeightsCache.MirrorVariable) is { } mirror && Directory.Exists(mirror)
    && Directory.GetFiles(mirror, "resnet18-*.pth").FirstOrDefault() is { } standIn)
    pretrained = ResNetPretrained.ResNet18 with { Tag = "CI-RANDOM", Url = new Uri(ResNetPretrained.ResNet18.Url!, Path.GetFileName(standIn)), Top1 = null, Top5 = null };
Console.WriteLine($"pretrained: {pretrained.Name}, {pretrained.Parameters:N0} parameters" +
    (pretrained.Transform is { } t ? $", resize {t.ResizeSize}, centre crop {t.CropSize}" : ", stretched to 224x224") +
    (pretrained.Top1 is double top1 ? $", {top1:F3}% ImageNet top-1" : ""));
'''),
    md('''
## 1. Head only: frozen features + an ML.NET linear trainer

`AppendCacheCheckpoint` keeps the features in memory: the trainer makes many passes, the trunk runs once per image.
'''),
    code('''
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
'''),
    md('''
## 2. Fine-tuning the whole network

`PretrainedModel` starts every layer but the classifier (new, for 10 classes) from the entry's weights; the recipe
defaults to `fine-tune`. The image column holds paths: the entry's resize and crop need the original images.
'''),
    code('''
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
'''),
    md('''
## Accuracy and cost
'''),
    code('''
int size = fineTuner.LastTraining!.Card.ImageHeight;
display(HTML($@"<table style='font:13px sans-serif'>
<tr><th style='text-align:left'>method</th><th>test accuracy</th><th>training (s)</th><th>scoring {test.GetColumn<string>("Label").Count()} images (s)</th></tr>
<tr><td>head only: frozen {pretrained.Name} features + L-BFGS</td><td>{headMetrics.MicroAccuracy:P1}</td><td>{headTrainSeconds:F0}</td><td>{headScoreSeconds:F0}</td></tr>
<tr><td>fine-tuned {pretrained.Name} ({fineTuner.LastTraining.History.Count} epochs at {size}x{size})</td><td>{tunedMetrics.MicroAccuracy:P1}</td><td>{tunedTrainSeconds:F0}</td><td>{tunedScoreSeconds:F0}</td></tr>
</table>"));
'''),
    FOOTER,
]

# ----------------------------------------------------------------------------------------------------------------
degradation = [
    md('''
# The degradation problem: plain versus residual networks

He et al. (2015), section 4.1 and Fig. 1/Fig. 6: adding layers to a plain network (no shortcuts) makes its
**training** error worse, not better; the same networks with identity shortcuts train better as they get deeper.
Here the paper's CIFAR networks (3x3 stem, three stages of 16/32/64 filters, depth 6n+2, option-A shortcuts) are
trained plain and residual at depths 20 and 56 with one recipe (SGD, momentum 0.9, weight decay 1e-4, lr 0.1 divided
by 10 at 50% and 75% of training, a short linear warm-up) on a balanced subset of Fashion-MNIST's training set
(`/usr/share/datasets/fashion-mnist`, Debian package `dataset-fashion-mnist`). The setting is `DegradationOptions`'
default, which is also `resnet experiment degradation`'s: the same experiment runs from the command line with no
options. The next cells print it; `bench/degradation/README.md` says how it was chosen.

What the paper predicts: plain-56 ends with a higher training error than plain-20 (degradation), ResNet-56 with a
lower one than ResNet-20 (shortcuts let depth help). The first half of this notebook runs the experiment; the second
shows the recorded runs of two seeds in C# and in PyTorch 1.13 (`bench/degradation`), drawn in the paper's Fig. 6
layout.
'''),
    RUN_NOTE,
    PACKAGES,
    SCALE,
    EPOCH_PRINTER,
    code('''
using ResNet.Trainer.Data;

// The default setting (seed 1); at CI scale, 100 images, 2 epochs and batch 20.
var options = ci ? new DegradationOptions { TrainingImages = 100, Epochs = 2, BatchSize = 20 } : new DegradationOptions();
var fashion = Idx.LoadSplit("/usr/share/datasets/fashion-mnist", train: true);
var subset = options.SelectTrainingImages(fashion);
var recipe = options.Recipe();
Console.WriteLine($"{subset.Count} of {fashion.Count} training images, {fashion.Width}x{fashion.Height} gray; depths {string.Join(", ", options.Depths)}; seed {options.Seed}");
Console.WriteLine($"recipe: {options.Epochs} epochs, batch {recipe.BatchSize}, lr {recipe.LearningRate} (/10 at 50% and 75%), momentum {recipe.Momentum}, weight decay {recipe.WeightDecay}, augmentation {recipe.Augmentation}");
'''),
    md('''
## Train the four networks

Same seed, same batches in the same order; only the depth and the shortcuts differ.
'''),
    code('''
var result = DegradationExperiment.Run(subset, options, new EpochPrinter());
'''),
    md('''
## Training error against iterations

The paper's Fig. 6 layout: plain nets on the left, residual nets on the right, one colour per depth.
'''),
    code('''
display(HTML(result.ToSvg($"this run, seed {options.Seed}")));
Console.Write(result.ToCsv());
'''),
    md('''
## What came out
'''),
    code('''
Console.Write(result.Summary());
if (result.Verdict() is var (plainDegrades, residualImproves))
    Console.WriteLine(plainDegrades && residualImproves
        ? "Both halves of the paper's claim hold in this run."
        : "This run does not reproduce the paper's claim in full (see above).");
'''),
    md('''
## Recorded runs: two seeds, C# and PyTorch

`bench/degradation/run.sh` ran the default setting with `resnet experiment degradation` and with the PyTorch 1.13
peer (`bench/degradation/pytorch_peer.py`: the same nets, data, recipe and budget; its own random draws). The CSV
files and logs are in `bench/degradation/results`, and its README says which seeds ran where and how long they took.
This cell reads every recorded run back and draws it as above.
'''),
    code('''
var recorded = FindUp(Path.Combine("bench", "degradation", "results"));
// csharp-seed1.csv, csharp-seed2.csv, pytorch-seed1.csv, ...: every recorded run, C# first.
var files = Directory.GetFiles(recorded, "*-seed*.csv").Order(StringComparer.Ordinal).ToArray();
if (files.Length == 0) throw new FileNotFoundException($"No recorded runs (*-seed*.csv) in {recorded}; bench/degradation/run.sh writes them.");
foreach (var file in files)
{
    string[] parts = Path.GetFileNameWithoutExtension(file).Split("-seed");
    string title = $"{(parts[0] == "csharp" ? "C#" : "PyTorch 1.13")}, seed {parts[1]}";
    var run = DegradationResult.FromCsv(File.ReadAllText(file), new DegradationOptions().TrainingImages);
    display(HTML(run.ToSvg(title)));
    var (plain, residual) = run.Verdict()!.Value;
    Console.WriteLine($"{title}: " + string.Join(", ", run.Runs.Select(r => $"{r.Name} {r.FinalTrainError:P2}")) +
        $"; plain degrades: {plain}, residual improves: {residual}; {run.Runs.Sum(r => r.Elapsed.TotalMinutes):F1} min of training");
}
'''),
    FOOTER,
]

# ----------------------------------------------------------------------------------------------------------------
cifar = [
    md('''
# The paper's CIFAR-10 recipe (Table 6)

Section 4.2 of the paper: ResNet-20/32/44/56/110 on CIFAR-10 with batch 128, SGD lr 0.1, momentum 0.9, weight
decay 1e-4, lr divided by 10 at 32k and 48k iterations, stop at 64k, a 45k/5k train/validation split, 4-pixel
padding + random 32x32 crop + horizontal flip, per-pixel mean subtraction; ResNet-110 warms up at lr 0.01 until the
training error is below 80%. Test errors to reproduce: 8.75 / 7.51 / 7.17 / 6.97 / 6.43 % for 20/32/44/56/110.

## On a GPU machine

1. Download and extract CIFAR-10's **binary** version (`cifar-10-binary.tar.gz`, folder `cifar-10-batches-bin`), or
   let `CifarDownload.DownloadAsync` do it (it checks the MD5).
2. Build with the CUDA backend of TorchSharp: `dotnet build -c Release -p:TorchSharpBackend=cuda-linux`
   (the CPU backend is the default).
3. Train with the recipe, on the command line:
   `resnet train --data cifar-10-batches-bin --arch resnet110 --recipe paper-cifar --device cuda --output runs/resnet110`,
   or from code as in the cells below with `RESNET_CIFAR_DIR` pointing at the folder and `RESNET_NOTEBOOK_SCALE=full`.
   One run is 64k iterations (about 164 epochs of 45k images); on one modern GPU ResNet-20 takes tens of minutes,
   ResNet-110 a few hours.

## Here

CIFAR-10 cannot be downloaded on this machine. Unless `RESNET_CIFAR_DIR` is set, the notebook writes files in
CIFAR-10's binary format itself, from real Fashion-MNIST images (28x28 gray, padded to 32x32 and repeated over
R, G and B), and runs the recipe's code path with tiny settings: the same reader, recipe, schedule shape,
augmentation, normalization and evaluation, with far fewer iterations. These numbers prove the path, not Table 6.
'''),
    RUN_NOTE,
    PACKAGES,
    SCALE,
    EPOCH_PRINTER,
    code('''
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;

// CIFAR-10 binary format: per record 1 label byte, then the 1024 red, 1024 green and 1024 blue bytes of a 32x32 image.
void WriteCifarBatch(string path, InMemoryImages images)
{
    using var file = File.Create(path);
    var record = new byte[1 + 3 * 1024];
    for (int i = 0; i < images.Count; i++)
    {
        Array.Clear(record);
        record[0] = (byte)images.LabelOf(i);
        var pixels = images.PixelsOf(i);
        int offset = (32 - images.Width) / 2;
        for (int y = 0; y < images.Height; y++)
            for (int x = 0; x < images.Width; x++)
                for (int c = 0; c < 3; c++)
                    record[1 + c * 1024 + (y + offset) * 32 + x + offset] = pixels[y * images.Width + x];
        file.Write(record);
    }
}

string? cifarDir = Environment.GetEnvironmentVariable("RESNET_CIFAR_DIR");
bool realCifar = cifarDir is not null;
if (!realCifar)
{
    cifarDir = Directory.CreateTempSubdirectory("cifar-format-").FullName;
    const string fashion = "/usr/share/datasets/fashion-mnist";
    var trainImages = InMemoryImages.From(DatasetSplit.Balanced(Idx.LoadSplit(fashion, train: true), ci ? 30 : 200));
    var testImages = InMemoryImages.From(DatasetSplit.Balanced(Idx.LoadSplit(fashion, train: false), ci ? 10 : 50));
    WriteCifarBatch(Path.Combine(cifarDir, "data_batch_1.bin"), trainImages);
    WriteCifarBatch(Path.Combine(cifarDir, "test_batch.bin"), testImages);
    File.WriteAllLines(Path.Combine(cifarDir, "batches.meta.txt"), trainImages.ClassNames);
    Console.WriteLine($"wrote CIFAR-format files to {cifarDir}: {new FileInfo(Path.Combine(cifarDir, "data_batch_1.bin")).Length:N0} + {new FileInfo(Path.Combine(cifarDir, "test_batch.bin")).Length:N0} bytes");
}
var train = Cifar.LoadSplit(cifarDir!, train: true);
var test = Cifar.LoadSplit(cifarDir!, train: false);
Console.WriteLine($"read back: {train.Count} training and {test.Count} test images, {train.Width}x{train.Height}x{train.Channels}, classes {string.Join(", ", train.ClassNames)}");
'''),
    md('''
## The recipe

`Recipes.PaperCifar(spec)` is section 4.2 as written. On generated data the iteration counts shrink and the
learning-rate drops stay at the same fractions (50% and 75%, the paper's 32k and 48k of 64k).
'''),
    code('''
var spec = ResNetSpec.Parse("resnet20") with { InputChannels = 3, NumClasses = train.ClassNames.Count };
var paper = Recipes.PaperCifar(spec);
Console.WriteLine($"paper recipe: batch {paper.BatchSize}, lr {paper.LearningRate}, momentum {paper.Momentum}, weight decay {paper.WeightDecay}, " +
                  $"lr /10 at iterations {string.Join(" and ", ((StepsAtIterations)paper.Schedule).Milestones)}, {paper.Length}, validation {paper.ValidationFraction:P0}, {paper.Augmentation}, {paper.Normalization} normalization");

var recipe = realCifar && !ci ? paper : paper with
{
    Length = TrainingLength.Iterations(ci ? 16 : 240),
    Schedule = new StepsAtIterations(ci ? new long[] { 8, 12 } : new long[] { 120, 180 }),
    BatchSize = ci ? 32 : 64,
};
Console.WriteLine($"this run: batch {recipe.BatchSize}, lr /10 at iterations {string.Join(" and ", ((StepsAtIterations)recipe.Schedule).Milestones)}, {recipe.Length}");
'''),
    code('''
var model = new ResNet.Trainer.Models.ResNetModel(spec, seed: 1);
var run = ResNetTrainer.Train(model, train, null, recipe, new EpochPrinter());
var report = Evaluator.Evaluate(model, test, run.Card.Pipeline);
Console.WriteLine($"{spec.Name}: {run.History.Count} epochs ({run.History[^1].Iteration} iterations) in {run.Elapsed.TotalSeconds:F0} s; " +
                  $"best validation epoch {run.BestEpoch}; test error {report.Top1Error:P2} on {report.Count} images" +
                  (realCifar ? "" : " (generated CIFAR-format data, not CIFAR-10)"));
Console.WriteLine(report.FormatConfusionMatrix());
model.Dispose();
'''),
    md('''
## Table 6 on a GPU

With `RESNET_CIFAR_DIR` set, `RESNET_NOTEBOOK_SCALE=full` and a CUDA build, the loop below trains every depth of
Table 6 with the paper's recipe unchanged (`Device = "cuda"`), and prints the test error next to the paper's. Here it
lists what it would run.
'''),
    code('''
var table6 = new (string Arch, double PaperError)[] { ("resnet20", 8.75), ("resnet32", 7.51), ("resnet44", 7.17), ("resnet56", 6.97), ("resnet110", 6.43) };
foreach (var (arch, paperError) in table6)
{
    var s = ResNetSpec.Parse(arch) with { InputChannels = 3, NumClasses = 10 };
    if (realCifar && !ci)
    {
        using var net = new ResNet.Trainer.Models.ResNetModel(s, seed: 1);
        var r = ResNetTrainer.Train(net, train, null, Recipes.PaperCifar(s) with { Device = "cuda" }, new EpochPrinter());
        var e = Evaluator.Evaluate(net, test, r.Card.Pipeline);
        Console.WriteLine($"{arch}: test error {e.Top1Error:P2} (paper: {paperError:F2} %)");
    }
    else
        Console.WriteLine($"{arch}: {ModelStats.Parameters(s):N0} parameters, recipe {(Recipes.PaperCifar(s).Warmup is null ? "as above" : "as above + warm-up at lr 0.01 until training error < 80%")}; paper's test error {paperError:F2} %");
}
'''),
    FOOTER,
]


def write(name, cells):
    nb = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": ".NET (C#)", "language": "C#", "name": ".net-csharp"},
            "language_info": {"name": "polyglot-notebook"},
            "polyglot_notebook": {"kernelInfo": {"defaultKernelName": "csharp", "items": [{"name": "csharp", "aliases": []}]}},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")


NOTEBOOKS = {"Quickstart.ipynb": quickstart, "TransferLearning.ipynb": transfer, "Degradation.ipynb": degradation, "CifarRecipe.ipynb": cifar}

if __name__ == "__main__":
    import sys
    # With names, only those notebooks are rewritten (the others keep their outputs).
    for name in sys.argv[1:] or NOTEBOOKS:
        write(name, NOTEBOOKS[name])
