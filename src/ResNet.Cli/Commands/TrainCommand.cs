using System.CommandLine;
using System.Globalization;
using ResNet.Cli.Reporting;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Training;

namespace ResNet.Cli.Commands;

/// <summary><c>resnet train</c>: trains a network on an image folder, IDX files or CIFAR batches; writes the model, metrics and plots.</summary>
internal static class TrainCommand
{
    /// <summary>The options shared by <c>train</c> and <c>demo</c>.</summary>
    internal sealed class Options
    {
        public readonly Option<string> Arch = new("--arch") { Description = "Architecture, e.g. resnet20, resnet56, resnet110, resnet18, plain-20.", DefaultValueFactory = _ => "resnet20" };
        public readonly Option<string> Recipe = new("--recipe") { Description = "Base settings: fast-cpu, paper-cifar or paper-imagenet; the options below override them.", DefaultValueFactory = _ => "fast-cpu" };
        public readonly Option<int?> Epochs = new("--epochs") { Description = "Passes over the training set." };
        public readonly Option<long?> Iterations = new("--iterations") { Description = "Stop after this many iterations instead (the paper: 64000 on CIFAR)." };
        public readonly Option<int?> BatchSize = new("--batch-size") { Description = "Images per mini-batch." };
        public readonly Option<double?> Lr = new("--lr") { Description = "Base learning rate." };
        public readonly Option<string?> Schedule = new("--schedule") { Description = "constant, cosine, one-cycle, plateau, steps:32000,48000 (iterations) or epochs:30,60." };
        public readonly Option<double?> Momentum = new("--momentum") { Description = "SGD momentum." };
        public readonly Option<bool> Nesterov = new("--nesterov") { Description = "Use Nesterov momentum." };
        public readonly Option<double?> WeightDecay = new("--weight-decay") { Description = "L2 weight decay." };
        public readonly Option<double?> LabelSmoothing = new("--label-smoothing") { Description = "Label smoothing (0 to 1)." };
        public readonly Option<int?> Warmup = new("--warmup") { Description = "Linear warm-up over this many iterations." };
        public readonly Option<string?> Augment = new("--augment") { Description = "none, cifar (pad 4, crop, flip) or imagenet (scale, crop, flip, colour)." };
        public readonly Option<string?> Normalize = new("--normalize") { Description = "per-pixel (the paper), per-channel or none." };
        public readonly Option<int?> ImageSize = new("--image-size") { Description = "Resize images to this size (default: the data's size)." };
        public readonly Option<int?> Channels = new("--channels") { Description = "Model input channels, 1 or 3 (default: from the data)." };
        public readonly Option<double?> Validation = new("--validation") { Description = "Share of the training set held out for validation (e.g. 0.1)." };
        public readonly Option<int?> Seed = new("--seed") { Description = "Seed of weights, shuffling, augmentation and split." };
        public readonly Option<string> Device = new("--device") { Description = "cpu, cuda, cuda:N or auto.", DefaultValueFactory = _ => "cpu" };
        public readonly Option<int?> Threads = new("--threads") { Description = "CPU threads for TorchSharp (default: all cores)." };
        public readonly Option<int?> Workers = new("--workers") { Description = "Loader threads that decode and augment." };
        public readonly Option<int> CheckpointEvery = new("--checkpoint-every") { Description = "Write a checkpoint every N epochs.", DefaultValueFactory = _ => 1 };
        public readonly Option<bool> Resume = new("--resume") { Description = "Continue from <output>/checkpoints/last.ckpt." };
        public readonly Option<int?> EarlyStop = new("--early-stopping") { Description = "Stop after N epochs without validation improvement." };
        public readonly Option<bool> StrictImages = new("--strict-images") { Description = "Stop on a corrupt or non-image file instead of skipping it with a warning." };
        public readonly Option<string> TestMode = new("--test-mode") { Description = "Test-time views: single, ten-crop or multi-scale.", DefaultValueFactory = _ => "single" };

        public IEnumerable<Option> All => [Arch, Recipe, Epochs, Iterations, BatchSize, Lr, Schedule, Momentum, Nesterov, WeightDecay, LabelSmoothing, Warmup,
            Augment, Normalize, ImageSize, Channels, Validation, Seed, Device, Threads, Workers, CheckpointEvery, Resume, EarlyStop, StrictImages, TestMode];
    }

    public static Command Create(TextWriter output)
    {
        var data = new Option<string>("--data") { Description = "Image folder (one subfolder per class, or train/ and test/ inside), a folder of IDX files, or of CIFAR .bin batches.", Required = true };
        var test = new Option<string?>("--test") { Description = "Held-out image folder to evaluate on at the end (default: the data's own test split, if any)." };
        var outDir = new Option<string>("--output") { Description = "Folder for the model, checkpoints, metrics and plots.", DefaultValueFactory = _ => "resnet-run" };
        var o = new Options();
        var cmd = new Command("train", "Train a residual network; writes model.dat + model.json, metrics (CSV/JSON) and plots (SVG) to --output.") { data, test, outDir };
        foreach (var option in o.All) cmd.Options.Add(option);
        cmd.SetAction((parse, ct) => Task.FromResult(Session.Run(parse, o, parse.GetValue(data)!, parse.GetValue(test), parse.GetValue(outDir)!, null, output, ct)));
        return cmd;
    }

    /// <summary>One training run from parsed options: used by <c>train</c> and <c>demo</c>.</summary>
    internal static class Session
    {
        public static int Run(ParseResult parse, Options o, string dataPath, string? testPath, string outDir, Func<TrainingOptions, TrainingOptions>? adjust, TextWriter output, CancellationToken ct)
        {
            var error = parse.InvocationConfiguration.Error;
            var inv = CultureInfo.InvariantCulture;
            try
            {
                var warnings = new List<string>();
                var onBad = parse.GetValue(o.StrictImages) ? BadImagePolicy.Error : BadImagePolicy.Skip;
                var opened = DataLocator.Open(dataPath, parse.GetValue(o.Channels), parse.GetValue(o.ImageSize), onBad, w => { warnings.Add(w); error.WriteLine("warning: " + w); });
                IImageSource? testSource = opened.Test;
                if (testPath is not null)
                    testSource = DataLocator.Open(testPath, opened.Train.Channels, parse.GetValue(o.ImageSize), onBad, w => error.WriteLine("warning: " + w)).Train;

                var spec = ResNetSpec.Parse(parse.GetValue(o.Arch)!) with { InputChannels = opened.Train.Channels, NumClasses = opened.Train.ClassNames.Count };
                var options = Build(parse, o, spec, Path.Combine(outDir, "checkpoints"));
                if (adjust is not null) options = adjust(options);
                string mode = parse.GetValue(o.TestMode)!;
                var testMode = mode switch
                {
                    "single" => ResNet.Trainer.Training.TestMode.Single,
                    "ten-crop" => ResNet.Trainer.Training.TestMode.TenCrop,
                    "multi-scale" => ResNet.Trainer.Training.TestMode.MultiScale,
                    _ => throw new ArgumentException($"--test-mode '{mode}' is not one of single, ten-crop, multi-scale."),
                };

                output.WriteLine($"data: {opened.Description}");
                output.WriteLine(string.Create(inv, $"model: {spec.Name}, {ModelStats.Parameters(spec):N0} parameters, input {spec.InputChannels} channel(s), {spec.NumClasses} classes"));
                output.WriteLine(string.Create(inv, $"recipe: {parse.GetValue(o.Recipe)}; batch {options.BatchSize}, lr {options.LearningRate}, {options.Schedule.GetType().Name}, momentum {options.Momentum}{(options.Nesterov ? " (Nesterov)" : "")}, weight decay {options.WeightDecay}, {(options.MaxIterations is long it ? $"{it} iterations" : $"{options.Epochs} epochs")}, device {options.Device}"));

                using var model = new ResNet.Trainer.Models.ResNetModel(spec, seed: options.Seed);
                var printer = new ProgressPrinter(output, ProgressPrinter.IsTerminal(output));
                var result = ResNet.Trainer.Training.Trainer.Train(model, opened.Train, null, options, printer, ct);
                printer.EndLine();

                Directory.CreateDirectory(outDir);
                string modelPath = Path.Combine(outDir, "model.dat");
                result.Card.Save(model, modelPath);
                // The ONNX file carries the class names and folds the normalization in: `resnet predict`, ApplyResNet.
                ResNet.Trainer.Onnx.OnnxExporter.Export(model, Path.Combine(outDir, "model.onnx"), new ResNet.Trainer.Onnx.OnnxExportOptions
                {
                    ClassNames = result.Card.ClassNames,
                    ImageHeight = result.Card.ImageHeight,
                    ImageWidth = result.Card.ImageWidth,
                    Normalization = result.Card.Normalization.ToInputNormalization(),
                });
                Reports.WriteHistoryCsv(Path.Combine(outDir, "metrics.csv"), result.History);
                EvaluationReport? report = null;
                if (testSource is not null && result.Stop != StopReason.Cancelled)
                {
                    report = Evaluator.Evaluate(model, testSource, result.Card.Pipeline, new EvaluationOptions { Mode = testMode, Workers = options.Workers }, ct);
                    Reports.WriteConfusionSvg(Path.Combine(outDir, "confusion.svg"), report);
                }
                Reports.WriteJson(Path.Combine(outDir, "metrics.json"), new
                {
                    model = spec.Name,
                    stop = result.Stop.ToString(),
                    training_seconds = result.Elapsed.TotalSeconds,
                    best_epoch = result.BestEpoch,
                    epochs = result.History,
                    test = report is null ? null : Reports.Summary(report),
                    skipped_files = warnings,
                });
                if (result.History.Count > 0)
                    Reports.WriteCurvesSvg(Path.Combine(outDir, "curves.svg"), result.History, report?.Top1Error);

                output.WriteLine();
                output.WriteLine(string.Create(inv, $"{result.Stop} after {result.History.Count} epoch(s) in {result.Elapsed.TotalSeconds:F0} s."));
                if (report is not null)
                {
                    output.WriteLine(string.Create(inv, $"test accuracy: {report.Accuracy:P2} on {report.Count} held-out images (top-1 error {report.Top1Error:P2}, top-5 error {report.Top5Error:P2}, {mode})"));
                    output.WriteLine();
                    output.Write(report.FormatConfusionMatrix());
                }
                output.WriteLine();
                string full = Path.GetFullPath(outDir);
                output.WriteLine($"files in {full}:");
                output.WriteLine($"  model.dat + model.json   weights and card (architecture, classes, normalization)");
                output.WriteLine($"  model.onnx               ONNX model for `resnet predict`, ApplyResNet, any ONNX runtime");
                output.WriteLine($"  metrics.csv, metrics.json  per-epoch figures{(report is null ? "" : " and the test evaluation")}");
                if (result.History.Count > 0) output.WriteLine($"  curves.svg               training curves");
                if (report is not null) output.WriteLine($"  confusion.svg            confusion matrix");
                output.WriteLine($"  checkpoints/last.ckpt    resumable checkpoint (--resume)");
                return result.Stop == StopReason.Cancelled ? 130 : 0;
            }
            catch (Exception ex) when (ex is InvalidDatasetException or CorruptDataException or DirectoryNotFoundException or FileNotFoundException
                or UnknownArchitectureException or UnknownRecipeException or CheckpointMismatchException or DeviceUnavailableException or TrainingDivergedException or ArgumentException or IOException)
            {
                error.WriteLine("error: " + ex.Message);
                return 2;
            }
        }

        private static TrainingOptions Build(ParseResult p, Options o, ResNetSpec spec, string checkpoints)
        {
            var t = Recipes.Get(p.GetValue(o.Recipe)!, spec);
            int? epochs = p.GetValue(o.Epochs);
            long? iterations = p.GetValue(o.Iterations);
            return t with
            {
                Epochs = epochs ?? t.Epochs,
                MaxIterations = iterations ?? (epochs is null ? t.MaxIterations : null),
                BatchSize = p.GetValue(o.BatchSize) ?? t.BatchSize,
                LearningRate = p.GetValue(o.Lr) ?? t.LearningRate,
                Schedule = p.GetValue(o.Schedule) is string s ? LearningRateSchedule.Parse(s) : t.Schedule,
                Momentum = p.GetValue(o.Momentum) ?? t.Momentum,
                Nesterov = p.GetValue(o.Nesterov) || t.Nesterov,
                WeightDecay = p.GetValue(o.WeightDecay) ?? t.WeightDecay,
                LabelSmoothing = p.GetValue(o.LabelSmoothing) ?? t.LabelSmoothing,
                Warmup = p.GetValue(o.Warmup) is int w ? new LinearWarmup(w) : t.Warmup,
                Augmentation = p.GetValue(o.Augment) is string a ? Augmentation.Parse(a) : t.Augmentation,
                Normalization = p.GetValue(o.Normalize) switch
                {
                    null => t.Normalization,
                    "per-pixel" => NormalizationKind.PerPixel,
                    "per-channel" => NormalizationKind.PerChannel,
                    "none" => NormalizationKind.None,
                    var other => throw new ArgumentException($"--normalize '{other}' is not one of per-pixel, per-channel, none."),
                },
                ImageSize = p.GetValue(o.ImageSize) ?? t.ImageSize,
                ValidationFraction = p.GetValue(o.Validation) ?? t.ValidationFraction,
                Seed = p.GetValue(o.Seed) ?? t.Seed,
                Device = p.GetValue(o.Device)!,
                Threads = p.GetValue(o.Threads) ?? t.Threads,
                Workers = p.GetValue(o.Workers) ?? t.Workers,
                CheckpointDirectory = checkpoints,
                CheckpointEvery = p.GetValue(o.CheckpointEvery),
                Resume = p.GetValue(o.Resume),
                EarlyStoppingPatience = p.GetValue(o.EarlyStop) ?? t.EarlyStoppingPatience,
            };
        }
    }
}
