using System.CommandLine;
using System.Globalization;
using ResNet.Cli.Hosting;
using ResNet.Cli.Reporting;
using ResNet.Scoring.Quantization;
using ResNet.Trainer.Data;
using ResNet.Trainer.Onnx;
using ResNet.Trainer.Training;

namespace ResNet.Cli.Commands;

/// <summary><c>resnet evaluate</c>: top-1/top-5 error, per-class accuracy and the confusion matrix of a saved model.</summary>
internal static class EvaluateCommand
{
    public static Command Create(TextWriter output)
    {
        var model = new Option<string>("--model") { Description = "Weights saved by train/demo (model.dat, with model.json beside it), or an ONNX model (float or quantized by `resnet quantize`).", Required = true };
        var data = new Option<string>("--data") { Description = "Labelled images: an image folder (its test/ subfolder if it has one), IDX or CIFAR folder (their test split).", Required = true };
        var mode = new Option<string>("--mode") { Description = "single, ten-crop or multi-scale (paper section 3.4).", DefaultValueFactory = _ => "single" };
        var outDir = new Option<string?>("--output") { Description = "Folder for evaluation.json and confusion.svg (default: beside the model)." };
        var strict = new Option<bool>("--strict-images") { Description = "Stop on a corrupt or non-image file instead of skipping it." };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for TorchSharp or ONNX Runtime." };
        var ttaFlip = new Option<bool>("--tta-flip") { Description = "Flip test-time augmentation (--mode single, model.dat): average each image's logits with its mirror's." };
        var ttaShift = new Option<int>("--tta-shift") { Description = "Shift test-time augmentation (--mode single, model.dat): also average the logits of each image moved this many pixels up, down, left and right (1 or 2; with --tta-flip, of their mirrors too).", DefaultValueFactory = _ => 0 };
        var cmd = new Command("evaluate", "Evaluate a saved model on labelled images: accuracy, top-5 error, per-class accuracy, confusion matrix.") { model, data, mode, outDir, strict, threads, ttaFlip, ttaShift };
        cmd.SetAction((parse, ct) => Task.FromResult(UserErrors.Run(parse, () =>
        {
            var error = parse.InvocationConfiguration.Error;
            string modelPath = ModelPath(parse.GetValue(model)!);
            int? threadCount = parse.GetValue(threads);
            // The same rule as training's Threads (libtorch aborts the process on 0 or less).
            if (threadCount is int bad && bad < 1)
                throw new ArgumentException($"--threads {bad} is not valid: give 1 or more CPU threads, or leave it out for all cores.");
            var testMode = parse.GetValue(mode) switch
            {
                "single" => TestMode.Single,
                "ten-crop" => TestMode.TenCrop,
                "multi-scale" => TestMode.MultiScale,
                var m => throw new ArgumentException($"--mode '{m}' is not one of single, ten-crop, multi-scale."),
            };
            bool flip = parse.GetValue(ttaFlip);
            if (flip && testMode != TestMode.Single)
                throw new ArgumentException($"--tta-flip averages an image and its mirror in --mode single; --mode {parse.GetValue(mode)} has its own views (ten-crop already includes the mirrors). Give one or the other.");
            if (flip && IsOnnx(modelPath))
                throw new ArgumentException($"--tta-flip needs the trained weights (model.dat); an ONNX model scores the mirrors only when exported with them (resnet export --tta-flip, or resnet train --tta-flip), and is then evaluated without the flag.");
            int shift = parse.GetValue(ttaShift);
            if (shift < 0)
                throw new ArgumentException($"--tta-shift {shift} is not valid: give the pixels to move each view by (1 or 2), or leave it out for no shifted views.");
            if (shift > 0 && testMode != TestMode.Single)
                throw new ArgumentException($"--tta-shift averages shifted views in --mode single; --mode {parse.GetValue(mode)} has its own views. Give one or the other.");
            if (shift > 0 && IsOnnx(modelPath))
                throw new ArgumentException($"--tta-shift needs the trained weights (model.dat); an ONNX model is scored as exported (resnet export --tta-flip puts the mirror in the graph; shifts are not exported).");
            string dir = parse.GetValue(outDir) ?? Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
            OutputFolder.Prepare(dir, "--output");
            var onBad = parse.GetValue(strict) ? BadImagePolicy.Error : BadImagePolicy.Skip;
            IImageSource Open(int channels, int height, IReadOnlyList<string> classes)
            {
                var opened = DataLocator.Open(parse.GetValue(data)!, channels, height, onBad, w => error.WriteLine("warning: " + w));
                var source = opened.Test ?? opened.Train;
                if (!source.ClassNames.SequenceEqual(classes))
                    throw new InvalidDatasetException($"--data '{parse.GetValue(data)}' has classes [{string.Join(", ", source.ClassNames)}] but the model '{modelPath}' was trained on [{string.Join(", ", classes)}]. Evaluate on data with the model's class folders.", parse.GetValue(data)!);
                return source;
            }
            string name;
            IImageSource source;
            EvaluationReport report;
            if (IsOnnx(modelPath))
            {
                if (testMode != TestMode.Single)
                    throw new ArgumentException($"--mode {parse.GetValue(mode)} needs the trained weights (model.dat); an ONNX model is evaluated with --mode single.");
                using var scorer = new OnnxScorer(modelPath, new OnnxScorerOptions { IntraOpThreads = threadCount ?? 0 });
                source = Open(scorer.Info.Channels, scorer.Info.Height, scorer.Info.ClassNames);
                name = $"{Path.GetFileName(modelPath)} ({(scorer.Info.Architecture.Length > 0 ? scorer.Info.Architecture : "ONNX")}{(OnnxQuantizer.IsQuantized(modelPath) ? ", int8" : "")})";
                report = Evaluator.Evaluate(scorer, source, cancellationToken: ct);
            }
            else
            {
                if (threadCount is int t) TorchSharp.torch.set_num_threads(t);
                var (net, card) = ModelCard.Load(modelPath);
                using var _ = net;
                int maxShift = EvaluationOptions.MaxShiftFor(card.Pipeline.Height, card.Pipeline.Width);
                if (shift > maxShift)
                    throw new ArgumentException($"--tta-shift {shift} is more than {maxShift} pixels, half the smaller side of {card.Spec.Name}'s {card.Pipeline.Height}x{card.Pipeline.Width} input. Give 1 or 2.");
                source = Open(card.Spec.InputChannels, card.ImageHeight, card.ClassNames);
                name = card.Spec.Name;
                report = Evaluator.Evaluate(net, source, card.Pipeline, new EvaluationOptions { Mode = testMode, FlipTestTimeAugmentation = flip, ShiftTestTimeAugmentation = shift }, ct);
            }
            var inv = CultureInfo.InvariantCulture;
            output.WriteLine(string.Create(inv, $"{name} on {source.Count} images ({parse.GetValue(mode)}{(flip ? " + flip" : "")}{(shift > 0 ? $" + shifts of {shift}" : "")}): accuracy {report.Accuracy:P2}, top-1 error {report.Top1Error:P2}, top-5 error {report.Top5Error:P2}, loss {report.Loss:F4}"));
            output.WriteLine();
            output.Write(report.FormatConfusionMatrix());
            Directory.CreateDirectory(dir);
            Reports.WriteJson(Path.Combine(dir, "evaluation.json"), Reports.Summary(report));
            Reports.WriteConfusionSvg(Path.Combine(dir, "evaluation-confusion.svg"), report);
            output.WriteLine();
            output.WriteLine($"wrote {Path.Combine(dir, "evaluation.json")} and {Path.Combine(dir, "evaluation-confusion.svg")}");
            return 0;
        })));
        return cmd;
    }

    // evaluate runs the TorchSharp model (model.dat + model.json); a folder means the model.dat inside it.
    private static string ModelPath(string path)
    {
        if (Directory.Exists(path))
        {
            string inside = Path.Combine(path, "model.dat");
            string onnx = Path.Combine(path, "model.onnx");
            return File.Exists(inside) ? inside : File.Exists(onnx) ? onnx
                : throw new FileNotFoundException($"--model '{path}' is a folder without model.dat or model.onnx; give the model.dat that resnet train wrote (with model.json beside it), or an ONNX model.", inside);
        }
        return path;
    }

    // An exported (or quantized) ONNX model is evaluated through ONNX Runtime; model.dat through TorchSharp.
    private static bool IsOnnx(string path) => Path.GetExtension(path).Equals(".onnx", StringComparison.OrdinalIgnoreCase);
}
