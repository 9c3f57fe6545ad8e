// Images/s on the same model, machine and run: our batched OnnxScorer vs raw InferenceSession.Run vs TorchSharp eval.
// Usage: dotnet run -c Release --project bench/onnx [-- --threads 2 --seconds 3]
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using ResNet.Trainer;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using static TorchSharp.torch;

int threads = ArgInt("--threads", 2);
double seconds = ArgInt("--seconds", 3);
TorchNative.EnsureReady();
set_num_threads(threads);
Console.WriteLine($"threads: {threads}, {seconds}s per measurement, {Environment.ProcessorCount} logical cores, ONNX Runtime CPU provider");
Console.WriteLine();
Console.WriteLine("model        input     batch  method                    images/s");

Bench(ResNetSpec.ResNet20(), 32, [1, 8, 16, 32, 64]);
Bench(ResNetSpec.ResNet18(), 224, [1, 4, 8, 16]);

void Bench(ResNetSpec spec, int size, int[] candidates)
{
    using var model = new ResNet.Trainer.Models.ResNet(spec, seed: 1);
    model.eval();
    byte[] onnx = OnnxExporter.Export(model, new OnnxExportOptions { ImageHeight = size, IncludeFeatures = false });
    int per = 3 * size * size;
    var rng = new Random(1);
    var data = new float[candidates.Max() * per];
    for (int i = 0; i < data.Length; i++) data[i] = (float)rng.NextDouble();

    using var so = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
    using var session = new InferenceSession(onnx, so);
    double Raw(int b)
    {
        using var ro = new RunOptions();
        return Measure(b, () =>
        {
            using var x = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data.AsMemory(0, b * per), [b, 3, size, size]);
            using var y = session.Run(ro, [OnnxExporter.Input], [x], [OnnxExporter.ProbabilitiesOutput]);
        });
    }
    // The best batch size is the one where raw ONNX Runtime is fastest.
    var rawByBatch = candidates.ToDictionary(b => b, Raw);
    int best = rawByBatch.MaxBy(kv => kv.Value).Key;

    using var scorer = new OnnxScorer(onnx, new OnnxScorerOptions { IntraOpThreads = threads, MaxBatchSize = best });
    foreach (int b in new[] { 1, best }.Distinct())
    {
        string name = $"{spec.Name,-12} {size}x{size,-6}";
        Print(name, b, "raw InferenceSession.Run", rawByBatch[b]);
        Print(name, b, "OnnxScorer (ours)", Measure(b, () => scorer.Score(data.AsMemory(0, b * per), b)));
        Print(name, b, "TorchSharp eval", Measure(b, () =>
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            model.forward(tensor(data.AsSpan(0, b * per).ToArray(), [b, 3, size, size]));
        }));
    }
    Console.WriteLine($"{"",-12} best raw batch: {best} (tried {string.Join(", ", rawByBatch.Select(kv => $"{kv.Key}: {kv.Value:F0}"))})");
}

double Measure(int batch, Action run)
{
    for (int i = 0; i < 3; i++) run(); // warm-up
    var sw = Stopwatch.StartNew();
    int n = 0;
    while (sw.Elapsed.TotalSeconds < seconds || n < 3) { run(); n++; }
    return n * batch / sw.Elapsed.TotalSeconds;
}

static void Print(string model, int batch, string method, double ips) =>
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{model} {batch,5}  {method,-24} {ips,9:F1}"));

int ArgInt(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}
