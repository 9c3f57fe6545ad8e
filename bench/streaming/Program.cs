// Streaming-training benchmark: `generate` writes a folder of JPEGs; `fit` fine-tunes through the ML.NET estimator on it
// and prints one JSON line (images/s of the training loop, wall seconds, peak RSS). run.sh pairs it with `resnet train`.
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using ResNet.MLNet;
using ResNet.MLNet.Transforms;
using ResNet.Trainer.Data;
using ResNet.Trainer.Training;
using SkiaSharp;

var inv = CultureInfo.InvariantCulture;
switch (args.FirstOrDefault())
{
    case "generate" when args.Length == 4:
        Generate(args[1], int.Parse(args[2], inv), int.Parse(args[3], inv));
        return 0;
    case "fit" when args.Length == 4:
        Fit(args[1], int.Parse(args[2], inv), int.Parse(args[3], inv));
        return 0;
    default:
        Console.Error.WriteLine("usage: StreamingBench generate <folder> <images> <classes> | fit <folder> <iterations> <batch>");
        return 2;
}

// 640x480 JPEGs (quality 90), one subfolder per class: a class colour behind random discs and bars, so the classes differ.
static void Generate(string folder, int images, int classes)
{
    var clock = Stopwatch.StartNew();
    Parallel.For(0, images, i =>
    {
        int c = i % classes;
        var rng = new Random(i);
        string path = Path.Combine(folder, $"class{c:D2}", $"{i:D6}.jpg");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bitmap = new SKBitmap(640, 480);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColor.FromHsv(c * 360f / classes, 60, 70));
            using var paint = new SKPaint { IsAntialias = true };
            for (int k = 0; k < 12; k++)
            {
                paint.Color = new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256));
                if (k % 2 == 0) canvas.DrawCircle(rng.Next(640), rng.Next(480), 20 + rng.Next(80), paint);
                else canvas.DrawRect(rng.Next(640), rng.Next(480), 20 + rng.Next(200), 10 + rng.Next(40), paint);
            }
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 90);
        File.WriteAllBytes(path, data.ToArray());
    });
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"generated {images} 640x480 JPEGs in {classes} classes in {clock.Elapsed.TotalSeconds:F0} s under {folder}"));
}

// ResNet-18 at 224 through LoadImagesFromDirectory -> MapValueToKey -> ResNetClassifier on the path column, the defaults
// of `resnet train` otherwise (fast-cpu recipe), no hold-out and no normalization statistics (the CLI would decode all
// 20,000 images for them before the first step; the estimator a 1,000-image sample): the same work as the CLI run.
static void Fit(string folder, int iterations, int batch)
{
    var clock = Stopwatch.StartNew();
    var ml = new MLContext(seed: 0);
    var data = ml.Data.LoadImagesFromDirectory(folder);
    TrainingProgress? last = null;
    var estimator = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
    {
        Architecture = "resnet18", ImageColumnName = "ImagePath", ImageSize = 224, Iterations = iterations, BatchSize = batch,
        ValidationFraction = 0, Normalization = NormalizationKind.None, MetricsCallback = new Last(p => { if (p.Kind == ProgressKind.Epoch) last = p; }),
    });
    ml.Transforms.Conversion.MapValueToKey("Label").Append(estimator).Fit(data);
    string status = File.ReadAllText("/proc/self/status");
    long hwmKb = long.Parse(status.Split('\n').First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{{\"impl\":\"estimator\",\"iterations\":{last?.Iteration},\"epoch_seconds\":{estimator.LastTraining!.History[0].Seconds:F1},\"images_per_second\":{(double)iterations * batch / estimator.LastTraining.History[0].Seconds:F2},\"progress_images_per_second\":{last?.ImagesPerSecond:F2},\"wall_seconds\":{clock.Elapsed.TotalSeconds:F1},\"vm_hwm_mb\":{hwmKb / 1024}}}"));
}

internal sealed class Last(Action<TrainingProgress> action) : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress value) => action(value);
}
