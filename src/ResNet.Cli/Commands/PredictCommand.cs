using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ResNet.Cli.Hosting;
using ResNet.Cli.Reporting;
using ResNet.Trainer.Onnx;

namespace ResNet.Cli.Commands;

/// <summary><c>resnet predict --model m.onnx &lt;files or folders&gt;</c>: top-k classes per image, as a table or JSON.</summary>
internal static class PredictCommand
{
    public static Command Create(TextWriter output)
    {
        var model = new Option<string>("--model", "-m") { Description = "ONNX model written by `resnet export`.", Required = true };
        var inputs = new Argument<string[]>("images") { Description = "Image files or folders (searched recursively for .png, .jpg, .jpeg, .bmp, .gif, .webp).", Arity = ArgumentArity.OneOrMore };
        var top = new Option<int>("--top", "-k") { Description = "How many classes to show per image.", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "Write JSON instead of a table." };
        var labels = new Option<string?>("--labels") { Description = "Text file with one class name per line, to use instead of the names stored in the model." };
        var batch = new Option<int>("--batch-size") { Description = "Images per ONNX Runtime call.", DefaultValueFactory = _ => 32 };
        var device = new Option<string>("--device") { Description = "cpu, cuda (falls back to CPU with a notice) or cuda-only (fails without CUDA).", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int>("--threads") { Description = "ONNX Runtime intra-op threads (0 = one per core).", DefaultValueFactory = _ => 0 };
        var explain = new Option<string?>("--explain") { Description = "Also write, into this folder, each image with the class-activation heat map of its predicted class drawn over it (PNG). Needs a model with the activations output (resnet train and resnet export write it)." };
        var cmd = new Command("predict", "Classify images with an exported ONNX model; images of any size are resized to the model's input and converted to its channel count.")
        {
            model, inputs, top, json, labels, batch, device, threads, explain,
        };
        cmd.SetAction((parse, ct) => Task.FromResult(UserErrors.Run(parse, () =>
        {
            var error = parse.InvocationConfiguration.Error;
            var provider = parse.GetValue(device) switch
            {
                "cpu" => ExecutionProviderPreference.Cpu,
                "cuda" => ExecutionProviderPreference.Cuda,
                "cuda-only" => ExecutionProviderPreference.CudaOnly,
                var other => throw new ArgumentException($"--device must be cpu, cuda or cuda-only, got '{other}'."),
            };
            string? labelsFile = parse.GetValue(labels);
            var files = ImageTensors.FindImages(parse.GetValue(inputs)!);
            if (files.Count == 0)
                throw new ArgumentException("No images found; pass image files or folders holding .png, .jpg, .jpeg, .bmp, .gif or .webp files.");
            // The heat maps must not land among the images: the next run would score them.
            string? explainDir = parse.GetValue(explain) is { } e ? OutputFolder.Prepare(e, "--explain", parse.GetValue(inputs)!) : null;
            string modelPath = ModelPath(parse.GetValue(model)!);
            using var scorer = new OnnxScorer(modelPath, new OnnxScorerOptions
            {
                ExecutionProvider = provider,
                IntraOpThreads = parse.GetValue(threads),
                MaxBatchSize = Math.Max(1, parse.GetValue(batch)),
                ClassNames = labelsFile is null ? null : ExportCommand.ReadClassNames(labelsFile),
                Log = message => error.WriteLine(message),
            });
            var info = scorer.Info;
            if (explainDir is not null && !scorer.HasActivations)
                throw new OnnxModelFormatException(
                    $"--explain needs the model's '{OnnxNames.ActivationsOutput}' output (the last stage's activations), which '{modelPath}' does not have. " +
                    "Export the model again with `resnet export` without --no-activations (or train it again with `resnet train`), then retry.");
            var heatMaps = new HeatMapNames(explainDir);
            int k = Math.Clamp(parse.GetValue(top), 1, info.ClassCount);
            int batchSize = Math.Max(1, parse.GetValue(batch));
            var rows = new List<(string File, IReadOnlyList<ClassScore> Top, string? HeatMap)>(files.Count);
            var failed = new List<string>();
            for (int start = 0; start < files.Count; start += batchSize)
            {
                ct.ThrowIfCancellationRequested();
                var chunk = files.Skip(start).Take(batchSize).ToArray();
                var pixels = new float[]?[chunk.Length];
                var problems = new string?[chunk.Length];
                // Each image on its own: one bad file is reported on its line, the others are still scored.
                Parallel.For(0, chunk.Length, i =>
                {
                    try { pixels[i] = ImageTensors.Load(chunk[i], info.Channels, info.Height, info.Width, info.Normalization.Range); }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { problems[i] = ex.Message; }
                });
                var good = Enumerable.Range(0, chunk.Length).Where(i => pixels[i] is not null).ToArray();
                foreach (int i in Enumerable.Range(0, chunk.Length).Where(i => problems[i] is not null))
                {
                    failed.Add(chunk[i]);
                    error.WriteLine($"error: {problems[i]}");
                }
                if (good.Length == 0) continue;
                var result = scorer.Score(good.Select(i => pixels[i]!).ToArray(), activations: explainDir is not null);
                for (int j = 0; j < good.Length; j++)
                {
                    var best = scorer.TopK(result, j, k);
                    string? heatMap = explainDir is null ? null : WriteHeatMap(scorer, result, j, best[0].Index, chunk[good[j]], heatMaps.Next(chunk[good[j]]));
                    rows.Add((chunk[good[j]], best, heatMap));
                }
            }
            if (rows.Count > 0)
            {
                if (parse.GetValue(json)) WriteJson(output, rows);
                else WriteTable(output, rows);
                if (explainDir is not null && !parse.GetValue(json))
                    output.WriteLine($"heat maps of the predicted classes: {rows.Count} PNG file(s) in {explainDir}");
            }
            if (failed.Count > 0)
                error.WriteLine($"{failed.Count} of {files.Count} image(s) could not be read; the others are scored above.");
            return failed.Count > 0 ? UserErrors.BadInput : 0;
        })));
        return cmd;
    }

    // A folder given as --model means the model.onnx that resnet train wrote into it.
    private static string ModelPath(string path)
    {
        if (!Directory.Exists(path)) return path;
        string inside = Path.Combine(path, "model.onnx");
        return File.Exists(inside) ? inside
            : throw new FileNotFoundException($"--model '{path}' is a folder without model.onnx; give the ONNX file (resnet train writes model.onnx, resnet export writes the file you name).", inside);
    }

    // The predicted class's CAM over the image at its own size; the model saw it resized, so the map covers all of it.
    private static string WriteHeatMap(OnnxScorer scorer, ScoreResult result, int image, int classIndex, string file, string target)
    {
        var shape = scorer.ActivationShape;
        var map = scorer.ClassActivationMap(result, image, classIndex);
        ImageDecoder.SavePng(HeatMap.Overlay(ImageDecoder.Decode(file, 3), map, shape.Height, shape.Width), target);
        return target;
    }

    /// <summary>One PNG name per image, from its file name; images of the same name in different folders get -2, -3, ...</summary>
    private sealed class HeatMapNames(string? folder)
    {
        private readonly HashSet<string> _used = new(StringComparer.OrdinalIgnoreCase);

        public string Next(string image)
        {
            string stem = Path.GetFileNameWithoutExtension(image);
            string name = stem + ".cam.png";
            for (int i = 2; !_used.Add(name); i++) name = $"{stem}-{i}.cam.png";
            return Path.Combine(folder!, name);
        }
    }

    private static void WriteTable(TextWriter o, List<(string File, IReadOnlyList<ClassScore> Top, string? HeatMap)> rows)
    {
        int fileWidth = Math.Max(5, rows.Max(r => r.File.Length));
        int labelWidth = Math.Max(5, rows.SelectMany(r => r.Top).Max(s => s.Label.Length));
        o.WriteLine($"{"image".PadRight(fileWidth)}  rank  {"label".PadRight(labelWidth)}  probability");
        foreach (var (file, top, _) in rows)
            for (int i = 0; i < top.Count; i++)
                o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{(i == 0 ? file : "").PadRight(fileWidth)}  {i + 1,4}  {top[i].Label.PadRight(labelWidth)}  {top[i].Probability,11:0.0000}"));
    }

    private static void WriteJson(TextWriter o, List<(string File, IReadOnlyList<ClassScore> Top, string? HeatMap)> rows)
    {
        var doc = rows.Select(r => new
        {
            image = r.File,
            predictions = r.Top.Select(s => new { label = s.Label, index = s.Index, probability = s.Probability }),
            heat_map = r.HeatMap,
        });
        o.WriteLine(JsonSerializer.Serialize(doc, new JsonSerializerOptions
        {
            WriteIndented = true,
            DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        }));
    }
}
