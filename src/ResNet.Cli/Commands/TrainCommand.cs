using System.CommandLine;
using System.Globalization;
using ResNet.Cli.Hosting;
using ResNet.Cli.Reporting;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using ResNet.Trainer.Pretrained;
using ResNet.Trainer.Training;

namespace ResNet.Cli.Commands;

/// <summary><c>resnet train</c>: trains a network on an image folder, IDX files or CIFAR batches; writes the model, metrics and plots.</summary>
internal static class TrainCommand
{
    /// <summary>The options shared by <c>train</c> and <c>demo</c>.</summary>
    internal sealed class Options
    {
        public readonly Option<string> Arch = new("--arch") { Description = "Architecture, e.g. resnet20, resnet56, resnet110, resnet18, plain-20.", DefaultValueFactory = _ => "resnet20" };
        public readonly Option<string?> Recipe = new("--recipe") { Description = "Base settings: fast-cpu (default), paper-cifar, paper-imagenet or fine-tune (default with --pretrained); the options below override them." };
        public readonly Option<string?> Pretrained = new("--pretrained") { Description = "Start from a pretrained network of the catalog: resnet18, resnet34, resnet50, resnet101, resnet152 (torchvision's ImageNet weights, fetched on first use; resnet50:IMAGENET1K_V1 names a tag) or cntk-resnet18." };
        public readonly Option<int?> Epochs = new("--epochs") { Description = "Passes over the training set." };
        public readonly Option<long?> Iterations = new("--iterations") { Description = "Stop after this many iterations instead (the paper: 64000 on CIFAR)." };
        public readonly Option<int?> BatchSize = new("--batch-size") { Description = "Images per mini-batch." };
        public readonly Option<double?> Lr = new("--lr") { Description = "Base learning rate." };
        public readonly Option<string?> Schedule = new("--schedule") { Description = "constant, cosine, one-cycle, plateau, steps:32000,48000 (iterations) or epochs:30,60." };
        public readonly Option<double?> Momentum = new("--momentum") { Description = "SGD momentum." };
        public readonly Option<bool> Nesterov = new("--nesterov") { Description = "Use Nesterov momentum." };
        public readonly Option<double?> WeightDecay = new("--weight-decay") { Description = "L2 weight decay." };
        public readonly Option<bool> NoNormAndBiasDecay = new("--no-decay-norm-and-bias") { Description = "Weight decay on the weight matrices only, not on batch-norm parameters and biases (by default, as in the paper, on all)." };
        public readonly Option<double?> LabelSmoothing = new("--label-smoothing") { Description = "Label smoothing (0 to 1)." };
        public readonly Option<double?> Ema = new("--ema") { Description = "Keep a moving average of the weights with this decay (e.g. 0.999); validation, the test pass and the saved model use it." };
        public readonly Option<int?> Warmup = new("--warmup") { Description = "Linear warm-up over this many iterations." };
        public readonly Option<string?> Augment = new("--augment") { Description = "none, cifar (pad 4, crop, flip), cifar:N (pad N, crop, flip; fast-cpu's is cifar:2), imagenet (scale, crop, flip, colour) or random-resized-crop." };
        public readonly Option<double?> RandomErasing = new("--random-erasing") { Description = "Erase a random box (2-33% of the area) of each training image with this probability (0 to 1; torchvision's RandomErasing uses 0.5)." };
        public readonly Option<string?> Normalize = new("--normalize") { Description = "per-pixel (the paper), per-channel or none." };
        public readonly Option<int?> ImageSize = new("--image-size") { Description = "Resize images to this size (default: the data's size)." };
        public readonly Option<bool> AllowLargeImages = new("--allow-large-images") { Description = $"Accept an --image-size above {TrainingOptions.MaxImageSize}." };
        public readonly Option<int?> Channels = new("--channels") { Description = "Model input channels, 1 or 3 (default: from the data)." };
        public readonly Option<double?> Validation = new("--validation") { Description = "Share of the training set held out for validation (e.g. 0.1)." };
        public readonly Option<int?> Seed = new("--seed") { Description = "Seed of weights, shuffling, augmentation and split." };
        public readonly Option<string?> Device = new("--device") { Description = "cpu, cuda, cuda:N or auto (default: cpu)." };
        public readonly Option<string?> Precision = new("--precision") { Description = "fp32 (default) or bf16: bfloat16 convolutions with float32 weights and batch norm (1.3-1.6x faster steps on CPUs with AVX512_BF16 or AMX; about half as fast on CPUs without, where training warns)." };
        public readonly Option<int?> Threads = new("--threads") { Description = "CPU threads for TorchSharp (default: all cores)." };
        public readonly Option<int?> Workers = new("--workers") { Description = "Loader threads that decode and augment." };
        public readonly Option<int?> CheckpointEvery = new("--checkpoint-every") { Description = "Write a checkpoint every N epochs (default: 1)." };
        public readonly Option<string?> Resume = new("--resume") { Description = "Continue from a checkpoint: the one given, or <output>/checkpoints/last.ckpt when none is.", Arity = ArgumentArity.ZeroOrOne };
        public readonly Option<int?> EarlyStop = new("--early-stopping") { Description = "Stop after N epochs without validation improvement." };
        public readonly Option<bool> StrictImages = new("--strict-images") { Description = "Stop on a corrupt or non-image file instead of skipping it with a warning." };
        public readonly Option<string> TestMode = new("--test-mode") { Description = "Test-time views: single, ten-crop or multi-scale.", DefaultValueFactory = _ => "single" };
        public readonly Option<bool> TtaFlip = new("--tta-flip") { Description = "Flip test-time augmentation: the test pass and model.onnx average each image's logits with its mirror's (single test mode)." };

        /// <summary>The user's changes to the recipe, as parsed: every flag left out keeps the recipe's value.</summary>
        public TrainingOverrides Overrides(ParseResult p, string checkpoints) => new()
        {
            Recipe = p.GetValue(Recipe),
            Epochs = p.GetValue(Epochs),
            Iterations = p.GetValue(Iterations),
            BatchSize = p.GetValue(BatchSize),
            LearningRate = p.GetValue(Lr),
            Schedule = p.GetValue(Schedule) is string s ? LearningRateSchedule.Parse(s) : null,
            Momentum = p.GetValue(Momentum),
            Nesterov = p.GetValue(Nesterov) ? true : null,
            WeightDecay = p.GetValue(WeightDecay),
            DecayNormAndBias = p.GetValue(NoNormAndBiasDecay) ? false : null,
            LabelSmoothing = p.GetValue(LabelSmoothing),
            EmaDecay = p.GetValue(Ema),
            Warmup = p.GetValue(Warmup) is int w ? new LinearWarmup(w) : null,
            Augmentation = p.GetValue(Augment) is string a ? ResNet.Trainer.Data.Augmentation.Parse(a) : null,
            RandomErasing = p.GetValue(RandomErasing),
            Normalization = p.GetValue(Normalize) switch
            {
                null => null,
                "per-pixel" => NormalizationKind.PerPixel,
                "per-channel" => NormalizationKind.PerChannel,
                "none" => NormalizationKind.None,
                var other => throw new ArgumentException($"--normalize '{other}' is not one of per-pixel, per-channel, none."),
            },
            ImageSize = p.GetValue(ImageSize),
            AllowLargeImages = p.GetValue(AllowLargeImages) ? true : null,
            ValidationFraction = p.GetValue(Validation),
            Seed = p.GetValue(Seed),
            Device = p.GetValue(Device),
            Precision = p.GetValue(Precision),
            Threads = p.GetValue(Threads),
            Workers = p.GetValue(Workers),
            CheckpointDirectory = checkpoints,
            CheckpointEvery = p.GetValue(CheckpointEvery),
            Resume = p.GetResult(Resume) is not null,
            EarlyStoppingPatience = p.GetValue(EarlyStop),
        };

        /// <summary>The catalog entry of <c>--pretrained</c>, or null.</summary>
        /// <exception cref="ArgumentException">No entry has that name; the message lists the names there are.</exception>
        public PretrainedWeights? PretrainedEntry(ParseResult p)
        {
            if (p.GetValue(Pretrained) is not string name) return null;
            try { return ResNetPretrained.Parse(name); }
            catch (ArgumentException ex) { throw new ArgumentException($"--pretrained: {ex.Message}", ex.ParamName); } // the error reporter drops the parameter name
        }

        public IEnumerable<Option> All => [Arch, Recipe, Pretrained, Epochs, Iterations, BatchSize, Lr, Schedule, Momentum, Nesterov, WeightDecay, NoNormAndBiasDecay, LabelSmoothing, Ema, Warmup,
            Augment, RandomErasing, Normalize, ImageSize, AllowLargeImages, Channels, Validation, Seed, Device, Precision, Threads, Workers, CheckpointEvery, Resume, EarlyStop, StrictImages, TestMode, TtaFlip];
    }

    public static Command Create(TextWriter output)
    {
        var data = new Option<string>("--data") { Description = "Image folder (one subfolder per class, or train/ and test/ inside), a folder of IDX files, or of CIFAR .bin batches.", Required = true };
        var test = new Option<string?>("--test") { Description = "Held-out image folder to evaluate on at the end (default: the data's own test split, if any)." };
        var outDir = new Option<string>("--output") { Description = "Folder for the model, checkpoints, metrics and plots.", DefaultValueFactory = _ => "resnet-run" };
        var o = new Options();
        var cmd = new Command("train", "Train a residual network; writes model.dat + model.json, metrics (CSV/JSON) and plots (SVG) to --output.") { data, test, outDir };
        foreach (var option in o.All) cmd.Options.Add(option);
        cmd.Options.Add(TensorBoardFlag.Option);
        cmd.SetAction((parse, ct) => Task.FromResult(Session.Run(parse, o, parse.GetValue(data)!, parse.GetValue(test), parse.GetValue(outDir)!, null, output, ct)));
        return cmd;
    }

    /// <summary>One training run from parsed options: used by <c>train</c> and <c>demo</c>.</summary>
    internal static class Session
    {
        public static int Run(ParseResult parse, Options o, string dataPath, string? testPath, string outDir, Func<TrainingOverrides, TrainingOverrides>? adjust, TextWriter output, CancellationToken ct) =>
            UserErrors.Run(parse, () => Train(parse, o, dataPath, testPath, outDir, adjust, output, ct));

        private static int Train(ParseResult parse, Options o, string dataPath, string? testPath, string outDir, Func<TrainingOverrides, TrainingOverrides>? adjust, TextWriter output, CancellationToken ct)
        {
            var error = parse.InvocationConfiguration.Error;
            var inv = CultureInfo.InvariantCulture;
            // Every setting is checked before the data is read or a file is written.
            var pretrained = o.PretrainedEntry(parse);
            if (pretrained is not null && parse.GetResult(o.Arch) is { Implicit: false } && ResNetSpec.Parse(parse.GetValue(o.Arch)!).Name != ResNetSpec.Parse(pretrained.Architecture).Name)
                throw new ArgumentException($"--arch {parse.GetValue(o.Arch)} and --pretrained {pretrained.Name} name different networks; --pretrained decides the architecture, so leave --arch out.");
            var arch = ResNetSpec.Parse(pretrained?.Architecture ?? parse.GetValue(o.Arch)!);
            string checkpoints = ResumeFolder(parse, o, outDir);
            var overrides = o.Overrides(parse, checkpoints);
            overrides = overrides with { Recipe = overrides.Recipe ?? Recipes.DefaultFor(pretrained is not null) };
            if (adjust is not null) overrides = adjust(overrides);
            overrides.Resolve(arch);
            bool ttaFlip = parse.GetValue(o.TtaFlip);
            if (ttaFlip && parse.GetValue(o.TestMode) != "single")
                throw new ArgumentException($"--tta-flip averages an image and its mirror in --test-mode single; --test-mode {parse.GetValue(o.TestMode)} has its own views (ten-crop already includes the mirrors). Give one or the other.");
            OutputFolder.Prepare(outDir, "--output", dataPath, testPath);
            var warnings = new List<string>();
            var onBad = parse.GetValue(o.StrictImages) ? BadImagePolicy.Error : BadImagePolicy.Skip;
            void Warn(string w) { lock (warnings) warnings.Add(w); error.WriteLine("warning: " + w); }
            // A pretrained network takes RGB at its own preprocessing: a catalog entry's resize and crop work on the original images.
            var geometry = pretrained?.Transform;
            int? channels = pretrained is null ? parse.GetValue(o.Channels) : 3;
            int? imageSize = geometry is null ? parse.GetValue(o.ImageSize) : null;
            var opened = DataLocator.Open(dataPath, channels, imageSize, onBad, Warn, keepOriginalSize: geometry is not null);
            IImageSource? testSource = opened.Test;
            if (testPath is not null)
            {
                testSource = DataLocator.Open(testPath, opened.Train.Channels, imageSize, onBad, w => error.WriteLine("warning: " + w), keepOriginalSize: geometry is not null).Train;
                if (!testSource.ClassNames.SequenceEqual(opened.Train.ClassNames))
                    throw new InvalidDatasetException($"--test '{testPath}' has classes [{string.Join(", ", testSource.ClassNames)}] but --data '{dataPath}' has [{string.Join(", ", opened.Train.ClassNames)}]. Give both the same class subfolders.", testPath);
            }
            IImageSource trainSource = opened.Train;
            if (geometry is not null)
            {
                // The augmentation (random-resized-crop in the fine-tune recipe) sees the original; evaluation sees the entry's crop.
                if (overrides.Resolve(arch).Augmentation is not RandomResizedCropAugmentation) trainSource = new ResizeCropSource(trainSource, geometry);
                if (testSource is not null) testSource = new ResizeCropSource(testSource, geometry);
            }
            PretrainedNetwork? net = pretrained is null ? null
                : PretrainedLoader.Load(pretrained, opened.Train.ClassNames.Count, overrides.Resolve(arch).Seed, progress: new Progress<DownloadProgress>(d => error.WriteLine(d.ToString())));

            var spec = net?.Model.Spec ?? arch with { InputChannels = opened.Train.Channels, NumClasses = opened.Train.ClassNames.Count };
            var options = overrides.Resolve(spec);
            if (net is not null)
                options = options with { ImageSize = net.ImageSize, FixedNormalization = net.Normalization };
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
            output.WriteLine(string.Create(inv, $"recipe: {overrides.Recipe}; batch {options.BatchSize}, lr {options.LearningRate}, {options.Schedule.GetType().Name}, momentum {options.Momentum}{(options.Nesterov ? " (Nesterov)" : "")}, weight decay {options.WeightDecay}{(options.DecayNormAndBias ? "" : " (weight matrices only)")}{(options.EmaDecay is double ema ? $", weight average (EMA) decay {ema}" : "")}{(options.RandomErasing > 0 ? $", random erasing {options.RandomErasing}" : "")}, {options.Length}, device {options.Device}"));

            if (pretrained is not null)
                output.WriteLine(string.Create(inv, $"pretrained: {pretrained.Name}{(pretrained.Top1 is double top1 ? $" ({top1:F3}% ImageNet top-1)" : "")}; trunk lr x{options.TrunkLearningRateFactor}"));
            using var model = net?.Model ?? new ResNet.Trainer.Models.ResNetModel(spec, seed: options.Seed);
            var printer = new ProgressPrinter(output, ProgressPrinter.IsTerminal(output));
            var tensorBoard = TensorBoardFlag.Open(parse);
            var result = ResNetTrainer.Train(model, trainSource, null, options, TensorBoardWriter.Tee(printer, tensorBoard)!, ct);
            printer.EndLine();

            bool interrupted = result.Stop == StopReason.Cancelled;
            long? stoppedAt = result.Card.InterruptedAtIteration;
            // An interrupted run never replaces a completed model from an earlier run: its files go beside it.
            string dir = interrupted && HoldsCompletedModel(outDir) ? Path.Combine(outDir, "interrupted") : outDir;
            Directory.CreateDirectory(dir);
            var card = result.Card;
            card.Save(model, Path.Combine(dir, "model.dat"));
            // The ONNX file carries the class names and folds the normalization in: `resnet predict`, ApplyResNet.
            ResNet.Trainer.Onnx.OnnxExporter.Export(model, Path.Combine(dir, "model.onnx"), new ResNet.Trainer.Onnx.OnnxExportOptions
            {
                ClassNames = card.ClassNames,
                ImageHeight = card.ImageHeight,
                ImageWidth = card.ImageWidth,
                Normalization = card.Normalization.ToInputNormalization(),
                Preprocessing = geometry?.Geometry,
                IncludeActivations = true, // as `resnet export` does by default: `resnet predict --explain` draws from them
                FlipTestTimeAugmentation = ttaFlip, // scores as the test pass below does
            });
            Reports.WriteHistoryCsv(Path.Combine(dir, "metrics.csv"), result.History);
            EvaluationReport? report = null;
            if (testSource is not null && !interrupted)
            {
                report = Evaluator.Evaluate(model, testSource, card.Pipeline, new EvaluationOptions { Mode = testMode, Workers = options.Workers, FlipTestTimeAugmentation = ttaFlip }, ct);
                Reports.WriteConfusionSvg(Path.Combine(dir, "confusion.svg"), report);
                tensorBoard?.WriteConfusionMatrix(report.ClassNames, report.ConfusionMatrix, result.History.Count);
            }
            Reports.WriteJson(Path.Combine(dir, "metrics.json"), new
            {
                model = spec.Name,
                stop = result.Stop.ToString(),
                interrupted_at_iteration = stoppedAt,
                training_seconds = result.Elapsed.TotalSeconds,
                best_epoch = result.BestEpoch,
                epochs = result.History,
                test = report is null ? null : Reports.Summary(report),
                skipped_files = warnings,
            });
            if (result.History.Count > 0)
                Reports.WriteCurvesSvg(Path.Combine(dir, "curves.svg"), result.History, report?.Top1Error);

            output.WriteLine();
            output.WriteLine(interrupted
                ? string.Create(inv, $"Interrupted at iteration {stoppedAt} (after {result.History.Count} complete epoch(s), {result.Elapsed.TotalSeconds:F0} s).")
                : string.Create(inv, $"{result.Stop} after {result.History.Count} epoch(s) in {result.Elapsed.TotalSeconds:F0} s."));
            if (report is not null)
            {
                output.WriteLine(string.Create(inv, $"test accuracy: {report.Accuracy:P2} on {report.Count} held-out images (top-1 error {report.Top1Error:P2}, top-5 error {report.Top5Error:P2}, {mode}{(ttaFlip ? " + flip" : "")})"));
                output.WriteLine();
                output.Write(report.FormatConfusionMatrix());
            }
            output.WriteLine();
            string full = Path.GetFullPath(dir);
            output.WriteLine($"files in {full}:");
            output.WriteLine($"  model.dat + model.json   weights{(interrupted ? $" at iteration {stoppedAt}" : "")} and card (architecture, classes, normalization)");
            output.WriteLine($"  model.onnx               ONNX model for `resnet predict`, ApplyResNet, any ONNX runtime");
            output.WriteLine($"  metrics.csv, metrics.json  per-epoch figures{(report is null ? "" : " and the test evaluation")}");
            if (result.History.Count > 0) output.WriteLine($"  curves.svg               training curves");
            if (report is not null) output.WriteLine($"  confusion.svg            confusion matrix");
            if (result.CheckpointPath is { } last)
            {
                output.WriteLine($"checkpoint: {Path.GetFullPath(last)}");
                if (interrupted)
                    output.WriteLine($"resume: run the same command with --resume {Path.GetFullPath(last)}");
            }
            return interrupted ? UserErrors.Interrupted : 0;
        }

        // --resume alone: <output>/checkpoints; --resume <file>: that checkpoint's folder (the trainer reads last.ckpt there).
        private static string ResumeFolder(ParseResult parse, Options o, string outDir)
        {
            string folder = Path.Combine(outDir, "checkpoints");
            if (parse.GetResult(o.Resume) is null || parse.GetValue(o.Resume) is not string file) return folder;
            if (Directory.Exists(file))
                throw new ArgumentException($"--resume '{file}' is a folder; give the checkpoint file, e.g. {Path.Combine(file, ResNetTrainer.CheckpointFile)}.");
            if (!File.Exists(file))
                throw new FileNotFoundException($"--resume checkpoint '{file}' does not exist. Give the last.ckpt an earlier run wrote (it prints its path), or --resume alone for {Path.Combine(folder, ResNetTrainer.CheckpointFile)}.", file);
            if (Path.GetFileName(file) != ResNetTrainer.CheckpointFile)
                throw new ArgumentException($"--resume '{file}': training resumes from a file named {ResNetTrainer.CheckpointFile} (written by resnet train); rename it or give that file.");
            return Path.GetDirectoryName(Path.GetFullPath(file))!;
        }

        private static bool HoldsCompletedModel(string outDir)
        {
            string card = Path.Combine(outDir, "model.json");
            if (!File.Exists(card)) return false;
            try { return ModelCard.FromJson(File.ReadAllText(card)).InterruptedAtIteration is null; }
            catch (Exception ex) when (ex is System.Text.Json.JsonException or IOException or InvalidDataException) { return true; } // unreadable: still the user's file
        }
    }
}
