using System.CommandLine;
using System.Globalization;
using ResNet.Cli.Hosting;
using ResNet.Cli.Reporting;
using ResNet.Trainer.Data;
using ResNet.Trainer.Training;

namespace ResNet.Cli.Commands;

/// <summary><c>resnet evaluate</c>: top-1/top-5 error, per-class accuracy and the confusion matrix of a saved model.</summary>
internal static class EvaluateCommand
{
    public static Command Create(TextWriter output)
    {
        var model = new Option<string>("--model") { Description = "Weights saved by train/demo (model.dat, with model.json beside it).", Required = true };
        var data = new Option<string>("--data") { Description = "Labelled images: an image folder (its test/ subfolder if it has one), IDX or CIFAR folder (their test split).", Required = true };
        var mode = new Option<string>("--mode") { Description = "single, ten-crop or multi-scale (paper section 3.4).", DefaultValueFactory = _ => "single" };
        var outDir = new Option<string?>("--output") { Description = "Folder for evaluation.json and confusion.svg (default: beside the model)." };
        var strict = new Option<bool>("--strict-images") { Description = "Stop on a corrupt or non-image file instead of skipping it." };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for TorchSharp." };
        var cmd = new Command("evaluate", "Evaluate a saved model on labelled images: accuracy, top-5 error, per-class accuracy, confusion matrix.") { model, data, mode, outDir, strict, threads };
        cmd.SetAction((parse, ct) => Task.FromResult(UserErrors.Run(parse, () =>
        {
            var error = parse.InvocationConfiguration.Error;
            string modelPath = ModelPath(parse.GetValue(model)!);
            if (parse.GetValue(threads) is int t)
            {
                // The same rule as training's Threads (libtorch aborts the process on 0 or less).
                if (t < 1) throw new ArgumentException($"--threads {t} is not valid: give 1 or more CPU threads, or leave it out for all cores.");
                TorchSharp.torch.set_num_threads(t);
            }
            var (net, card) = ModelCard.Load(modelPath);
            string dir = parse.GetValue(outDir) ?? Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
            using var _ = net;
            OutputFolder.Prepare(dir, "--output");
            var opened = DataLocator.Open(parse.GetValue(data)!, card.Spec.InputChannels, card.ImageHeight,
                parse.GetValue(strict) ? BadImagePolicy.Error : BadImagePolicy.Skip, w => error.WriteLine("warning: " + w));
            var source = opened.Test ?? opened.Train;
            if (!source.ClassNames.SequenceEqual(card.ClassNames))
                throw new InvalidDatasetException($"--data '{parse.GetValue(data)}' has classes [{string.Join(", ", source.ClassNames)}] but the model '{modelPath}' was trained on [{string.Join(", ", card.ClassNames)}]. Evaluate on data with the model's class folders.", parse.GetValue(data)!);
            var testMode = parse.GetValue(mode) switch
            {
                "single" => TestMode.Single,
                "ten-crop" => TestMode.TenCrop,
                "multi-scale" => TestMode.MultiScale,
                var m => throw new ArgumentException($"--mode '{m}' is not one of single, ten-crop, multi-scale."),
            };
            var report = Evaluator.Evaluate(net, source, card.Pipeline, new EvaluationOptions { Mode = testMode }, ct);
            var inv = CultureInfo.InvariantCulture;
            output.WriteLine(string.Create(inv, $"{card.Spec.Name} on {source.Count} images ({parse.GetValue(mode)}): accuracy {report.Accuracy:P2}, top-1 error {report.Top1Error:P2}, top-5 error {report.Top5Error:P2}, loss {report.Loss:F4}"));
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
            return File.Exists(inside) ? inside
                : throw new FileNotFoundException($"--model '{path}' is a folder without model.dat; give the model.dat that resnet train wrote (with model.json beside it).", inside);
        }
        if (Path.GetExtension(path).Equals(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"--model '{path}' is an ONNX file; evaluate reads the model.dat (with model.json beside it) that resnet train wrote. " +
                "Give that file, or score the ONNX model with resnet predict.");
        return path;
    }
}
