using System.CommandLine;
using System.Globalization;
using ResNet.Cli.Hosting;
using ResNet.Cli.Reporting;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;

namespace ResNet.Cli.Commands;

/// <summary><c>resnet export</c>: trained weights to a standard ONNX file with normalization and class names inside.</summary>
internal static class ExportCommand
{
    public static Command Create(TextWriter output)
    {
        var arch = new Option<string>("--arch") { Description = "Architecture the weights were trained with, e.g. resnet20, resnet50.", Required = true };
        var weights = new Option<string>("--weights") { Description = "Trained weights: .dat (TorchSharp), .pth/.pt (PyTorch state_dict) or .safetensors.", Required = true };
        var outPath = new Option<string>("--output", "-o") { Description = "ONNX file to write.", Required = true };
        var classes = new Option<int?>("--classes") { Description = "Number of classes (default: the class-names file's count, else 10 for CIFAR and 1000 for ImageNet models)." };
        var classNames = new Option<string?>("--class-names") { Description = "Text file with one class name per line, in output order." };
        var channels = new Option<int>("--channels") { Description = "Input channels: 1 (grayscale) or 3 (RGB).", DefaultValueFactory = _ => 3 };
        var size = new Option<int?>("--image-size") { Description = "Input height and width the model was trained at (default 32 for CIFAR, 224 for ImageNet models)." };
        var mean = new Option<string?>("--mean") { Description = "Per-channel mean the model was trained with, comma separated, in the units of --range (e.g. 0.485,0.456,0.406)." };
        var std = new Option<string?>("--std") { Description = "Per-channel standard deviation, comma separated, in the units of --range (e.g. 0.229,0.224,0.225)." };
        var range = new Option<string>("--range") { Description = "Pixel range the model was fed: 0..1 or 0..255.", DefaultValueFactory = _ => "0..1" };
        var fold = new Option<bool>("--fold-bn") { Description = "Fold batch norms into the convolutions (faster scoring; the file can then be scored but not re-imported exactly)." };
        var noFeatures = new Option<bool>("--no-features") { Description = "Do not add the pooled-features output." };
        var noActivations = new Option<bool>("--no-activations") { Description = "Do not add the last-stage activation output (which `resnet predict --explain` draws class-activation heat maps from)." };
        var ttaFlip = new Option<bool>("--tta-flip") { Description = "Flip test-time augmentation in the graph: score each image and its mirror and average them (twice the compute)." };
        var triton = new Option<string?>("--triton") { Description = "Also add the model to this Triton model repository folder (config.pbtxt, 1/model.onnx, labels.txt)." };
        var cmd = new Command("export", "Export trained weights to ONNX: dynamic batch, normalization folded in, class names and input spec in metadata.")
        {
            arch, weights, outPath, classes, classNames, channels, size, mean, std, range, fold, noFeatures, noActivations, ttaFlip, triton,
        };
        cmd.SetAction(parse => UserErrors.Run(parse, () =>
        {
            var spec = ResNetSpec.Parse(parse.GetValue(arch)!);
            string? namesFile = parse.GetValue(classNames);
            string[]? names = namesFile is null ? null : ReadClassNames(namesFile);
            int? count = parse.GetValue(classes);
            if (names is not null && count is { } c && c != names.Length)
                throw new ClassCountMismatchException($"--classes is {c} but '{namesFile}' has {names.Length} class names; give one name per class.");
            int nc = count ?? names?.Length ?? spec.NumClasses;
            spec = spec with { InputChannels = parse.GetValue(channels), NumClasses = nc };
            int imageSize = parse.GetValue(size) ?? spec.DefaultImageSize;
            var pixelRange = parse.GetValue(range) switch
            {
                "0..1" => PixelRange.ZeroToOne,
                "0..255" => PixelRange.ZeroTo255,
                var other => throw new ArgumentException($"--range must be 0..1 or 0..255, got '{other}'."),
            };
            float[] m = ParseFloats(parse.GetValue(mean), "--mean", spec.InputChannels, 0f);
            float[] s = ParseFloats(parse.GetValue(std), "--std", spec.InputChannels, 1f);

            string path = parse.GetValue(outPath)!;
            OutputFolder.PrepareFile(path, "--output");
            using var model = new ResNet.Trainer.Models.ResNetModel(spec);
            ResNetWeights.Load(model, parse.GetValue(weights)!);
            model.eval();
            OnnxExporter.Export(model, path, new OnnxExportOptions
            {
                ClassNames = names,
                ImageHeight = imageSize,
                Normalization = new InputNormalization(pixelRange, m, s),
                FoldBatchNorm = parse.GetValue(fold),
                IncludeFeatures = !parse.GetValue(noFeatures),
                IncludeActivations = !parse.GetValue(noActivations),
                FlipTestTimeAugmentation = parse.GetValue(ttaFlip),
            });
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {path}: {spec.Name}, input [N, {spec.InputChannels}, {imageSize}, {imageSize}] RGB {parse.GetValue(range)}, {nc} classes, {new FileInfo(path).Length:N0} bytes"));
            if (parse.GetValue(triton) is { } repository)
                output.WriteLine($"wrote Triton model {ResNet.Serving.TritonRepository.Write(repository, path)}");
            return 0;
        }));
        return cmd;
    }

    internal static string[] ReadClassNames(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Class-names file '{path}' does not exist; write one class name per line.", path);
        var names = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        if (names.Length == 0)
            throw new InvalidDataException($"Class-names file '{path}' is empty; write one class name per line.");
        return names;
    }

    private static float[] ParseFloats(string? text, string option, int channels, float fallback)
    {
        if (text is null) return Enumerable.Repeat(fallback, channels).ToArray();
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var values = new float[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!float.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]))
                throw new ArgumentException($"{option}: '{parts[i]}' is not a number; write e.g. {option} 0.485,0.456,0.406.");
        if (values.Length != channels)
            throw new ArgumentException($"{option} has {values.Length} value(s) but the model has {channels} input channel(s); give one per channel.");
        return values;
    }
}
