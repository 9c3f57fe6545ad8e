// Images/s on the same model, machine and run: our batched OnnxScorer vs raw InferenceSession.Run vs TorchSharp eval.
// Usage: dotnet run -c Release --project bench/onnx [-- --threads 2 --seconds 1]
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using ResNet.Trainer;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using static TorchSharp.torch;

const int Rounds = 10;
int threads = ArgInt("--threads", 2);
double seconds = ArgInt("--seconds", 1);
TorchNative.EnsureReady();
set_num_threads(threads);
// libtorch 2.10 checks NNPACK on every convolution and, on CPUs NNPACK does not support (this one), prints a
// warning each time; TorchSharp exposes no switch, so turn NNPACK off through libtorch itself.
ResNet.Trainer.TorchNative.EnsureReady();
bool nnpackOff = ResNet.Trainer.NnpackSwitch.TryDisable();
Console.WriteLine($"date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; command: bench/onnx {string.Join(' ', args)}");
Console.WriteLine($"threads: {threads}, {Rounds} rounds of {seconds}s per figure (methods interleaved round by round; median and best of the rounds, and the median of the per-round ratios), {Environment.ProcessorCount} logical cores, ONNX Runtime CPU provider, NNPACK {(nnpackOff ? "off" : "could not be turned off")}");
// The figures are only comparable within one run; other load on the machine shows here.
if (File.Exists("/proc/loadavg")) Console.WriteLine($"load average at start: {File.ReadAllText("/proc/loadavg").Trim()}");
Console.WriteLine();
Console.WriteLine("model        input     batch  method                    median img/s    best img/s");

Bench(ResNetSpec.ResNet20(), 32, [1, 8, 16, 32, 64]);
Bench(ResNetSpec.ResNet18(), 224, [1, 4, 8, 16]);

void Bench(ResNetSpec spec, int size, int[] candidates)
{
    using var model = new ResNet.Trainer.Models.ResNetModel(spec, seed: 1);
    model.eval();
    byte[] onnx = OnnxExporter.Export(model, new OnnxExportOptions { ImageHeight = size, IncludeFeatures = false });
    int per = 3 * size * size;
    var rng = new Random(1);
    var data = new float[candidates.Max() * per];
    for (int i = 0; i < data.Length; i++) data[i] = (float)rng.NextDouble();

    using var so = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
    using var session = new InferenceSession(onnx, so);
    using var ro = new RunOptions();
    Action Raw(int b) => () =>
    {
        using var x = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data.AsMemory(0, b * per), [b, 3, size, size]);
        using var y = session.Run(ro, [OnnxExporter.Input], [x], [OnnxExporter.ProbabilitiesOutput]);
    };
    // The best batch size is the one where raw ONNX Runtime is fastest (one round each, to choose).
    var rawByBatch = candidates.ToDictionary(b => b, b => Measure(b, Raw(b)));
    int best = rawByBatch.MaxBy(kv => kv.Value).Key;

    foreach (int b in new[] { 1, best }.Distinct())
    {
        using var scorer = new OnnxScorer(onnx, new OnnxScorerOptions { IntraOpThreads = threads, MaxBatchSize = b });
        var methods = new (string Name, Action Run)[]
        {
            ("raw InferenceSession.Run", Raw(b)),
            ("OnnxScorer (ours)", () => scorer.Score(data.AsMemory(0, b * per), b)),
            ($"ScoreAsync, {b} x 1 image", () =>
                Task.WaitAll(Enumerable.Range(0, b).Select(i => scorer.ScoreAsync(data.AsMemory(i * per, per), 1)).ToArray())),
            ("TorchSharp eval", () =>
            {
                using var scope = NewDisposeScope();
                using var _ = no_grad();
                model.forward(tensor(data.AsSpan(0, b * per).ToArray(), [b, 3, size, size]));
            }),
        };
        // ips[m][round]: each method measured once per round, in turn, so a round's figures saw the same machine load.
        var ips = methods.Select(_ => new double[Rounds]).ToArray();
        for (int round = 0; round < Rounds; round++)
            for (int m = 0; m < methods.Length; m++)
                ips[m][round] = Measure(b, methods[m].Run);
        string name = $"{spec.Name,-12} {size}x{size,-6}";
        for (int m = 0; m < methods.Length; m++) Print(name, b, methods[m].Name, Median(ips[m]), ips[m].Max());
        double PairedRatio(int m, int peer) => Median(ips[m].Zip(ips[peer], (a, p) => a / p));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{"",-12} median of per-round ratios: ours / raw = {PairedRatio(1, 0):F2}, ScoreAsync / raw = {PairedRatio(2, 0):F2}, ours / TorchSharp = {PairedRatio(1, 3):F2}"));
    }
    Console.WriteLine($"{"",-12} raw batch sweep (img/s): {string.Join(", ", rawByBatch.Select(kv => $"{kv.Key}: {kv.Value:F0}"))}; best {best}");
}

double Measure(int batch, Action run)
{
    for (int i = 0; i < 3; i++) run(); // warm-up
    var sw = Stopwatch.StartNew();
    int n = 0;
    while (sw.Elapsed.TotalSeconds < seconds || n < 3) { run(); n++; }
    return n * batch / sw.Elapsed.TotalSeconds;
}

static void Print(string model, int batch, string method, double median, double best) =>
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{model} {batch,5}  {method,-24} {median,12:F1} {best,13:F1}"));

static double Median(IEnumerable<double> values)
{
    var v = values.Order().ToArray();
    return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
}

int ArgInt(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}
