// INT8 (resnet quantize) beside float on the same machine, run and thread count:
//   speed: raw InferenceSession.Run on the float and the INT8 file, and our OnnxScorer on both; each at its own best
//          batch; paired repeats alternate the methods and report the median of the per-repeat ratios;
//   where the time goes: ONNX Runtime's per-operator profile of the INT8 (and float) graphs;
//   accuracy: a ResNet-20 trained briefly on the full Fashion-MNIST training set, float vs INT8 on the 10,000 test images.
// Usage: dotnet run -c Release --project bench/quant [-- --threads 2 --seconds 1 --repeats 8 --epochs 1]
//        [--parts resnet18,resnet20,accuracy]  (a subset, for probing; the recorded runs use all three)
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using ResNet.Scoring;
using ResNet.Scoring.Quantization;
using ResNet.Trainer;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using ResNet.Trainer.Training;
using static TorchSharp.torch;

var inv = CultureInfo.InvariantCulture;
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.CurrentCulture = inv;
int threads = ArgInt("--threads", 2);
double seconds = ArgInt("--seconds", 1);
int repeats = ArgInt("--repeats", 8);
int epochs = ArgInt("--epochs", 1);
string work = Directory.CreateTempSubdirectory("resnet-quant-bench-").FullName;
TorchNative.EnsureReady();
set_num_threads(threads);

Console.WriteLine($"date: {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC");
Console.WriteLine($"command: dotnet run -c Release --project bench/quant -- {string.Join(' ', args)}");
Console.WriteLine($"machine: {Environment.ProcessorCount} logical cores; dotnet processes running: {Process.GetProcessesByName("dotnet").Length}");
Console.WriteLine($"load average at start: {LoadAverage()}");
Console.WriteLine($"threads: {threads} (ONNX Runtime intra-op, TorchSharp); {seconds}s per measurement; {repeats} paired repeats");
Console.WriteLine();

var parts = ArgString("--parts", "resnet18,resnet20,accuracy").Split(',');
if (parts.Contains("resnet18")) Speed(ResNetSpec.ResNet18(), 224, [1, 4, 8, 16], profile: true);
if (parts.Contains("resnet20")) Speed(ResNetSpec.ResNet20(), 32, [8, 32, 64, 128], profile: true);
if (parts.Contains("accuracy")) Accuracy();
Console.WriteLine($"load average at end: {LoadAverage()}");
Directory.Delete(work, recursive: true);

void Speed(ResNetSpec spec, int size, int[] batches, bool profile)
{
    Console.WriteLine($"== {spec.Name} {size}x{size}: float vs INT8 ==");
    byte[] fp32 = ExportTrainedLike(spec, size);
    int per = 3 * size * size;
    var rng = new Random(1);
    var calibration = Enumerable.Range(0, 64).Select(_ => Enumerable.Range(0, per).Select(_ => (float)rng.NextDouble()).ToArray()).ToList();
    var sw = Stopwatch.StartNew();
    var (int8, summary) = OnnxQuantizer.Quantize(fp32, calibration, new QuantizationOptions { Threads = threads });
    Console.WriteLine($"quantized (defaults) in {sw.Elapsed.TotalSeconds:F1} s: {summary.QuantizedNodes} operators in 8-bit, float: {string.Join(", ", summary.FloatNodes)}");
    // The same with the first convolution in 8-bit too: what keeping it float costs in speed.
    var (int8All, _) = OnnxQuantizer.Quantize(fp32, calibration, new QuantizationOptions { Threads = threads, KeepFirstConvFloat = false });
    string fp32Path = Path.Combine(work, $"{spec.Name}-{size}.onnx"), int8Path = Path.Combine(work, $"{spec.Name}-{size}.int8.onnx");
    File.WriteAllBytes(fp32Path, fp32);
    File.WriteAllBytes(int8Path, int8);
    string int8AllPath = Path.Combine(work, $"{spec.Name}-{size}.int8-conv1.onnx");
    File.WriteAllBytes(int8AllPath, int8All);
    Console.WriteLine($"file size: float {fp32.Length:N0} bytes, INT8 {int8.Length:N0} bytes ({(double)int8.Length / fp32.Length:F3}x)");
    Console.WriteLine($"optimized INT8 graph (ORT_ENABLE_ALL): {OptimizedOps(int8Path)}");

    var data = new float[batches.Max() * per];
    for (int i = 0; i < data.Length; i++) data[i] = (float)rng.NextDouble();
    using var so = Options();
    using var fSession = new InferenceSession(fp32, so);
    using var qSession = new InferenceSession(int8, so);
    using var aSession = new InferenceSession(int8All, so);
    using var ro = new RunOptions();
    Action Raw(InferenceSession s, int b) => () =>
    {
        using var x = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data.AsMemory(0, b * per), [b, 3, size, size]);
        using var y = s.Run(ro, [OnnxExporter.Input], [x], [OnnxExporter.ProbabilitiesOutput]);
    };
    // Best batch for each file: one measurement per candidate with raw ONNX Runtime.
    int BestBatch(InferenceSession s, string name)
    {
        var sweep = batches.ToDictionary(b => b, b => Measure(b, Raw(s, b)));
        Console.WriteLine($"batch sweep, raw {name} (img/s): {string.Join(", ", sweep.Select(kv => $"{kv.Key}: {kv.Value:F1}"))}");
        return sweep.MaxBy(kv => kv.Value).Key;
    }
    int bf = BestBatch(fSession, "float"), bq = BestBatch(qSession, "INT8");
    using var fScorer = new OnnxScorer(fp32, new OnnxScorerOptions { IntraOpThreads = threads, MaxBatchSize = bf });
    using var qScorer = new OnnxScorer(int8, new OnnxScorerOptions { IntraOpThreads = threads, MaxBatchSize = bq });
    var methods = new (string Name, int Batch, Action Run)[]
    {
        ("raw ORT float", bf, Raw(fSession, bf)),
        ("raw ORT INT8", bq, Raw(qSession, bq)),
        ("OnnxScorer float", bf, () => fScorer.Score(data.AsMemory(0, bf * per), bf)),
        ("OnnxScorer INT8", bq, () => qScorer.Score(data.AsMemory(0, bq * per), bq)),
        ("raw ORT INT8 conv1", bq, Raw(aSession, bq)),
    };
    var ips = methods.Select(_ => new List<double>()).ToArray();
    for (int r = 0; r < repeats; r++)
        for (int k = 0; k < methods.Length; k++)
        {
            int m = r % 2 == 0 ? k : methods.Length - 1 - k; // alternate the order so drift in load hits both sides
            ips[m].Add(Measure(methods[m].Batch, methods[m].Run));
        }
    Console.WriteLine($"{"method",-18} {"batch",5} {"median img/s",13} {"best img/s",11}");
    for (int m = 0; m < methods.Length; m++)
        Console.WriteLine($"{methods[m].Name,-18} {methods[m].Batch,5} {Median(ips[m]),13:F1} {ips[m].Max(),11:F1}");
    var rawRatios = Enumerable.Range(0, repeats).Select(r => ips[1][r] / ips[0][r]).ToList();
    var scorerRatios = Enumerable.Range(0, repeats).Select(r => ips[3][r] / ips[0][r]).ToList();
    Console.WriteLine($"INT8 / float, raw ORT, median of {repeats} paired ratios: {Median(rawRatios):F2}x (range {rawRatios.Min():F2}-{rawRatios.Max():F2})");
    Console.WriteLine($"INT8 OnnxScorer / raw ORT float, median of paired ratios: {Median(scorerRatios):F2}x");
    Console.WriteLine($"OnnxScorer float / raw ORT float: {Median(Enumerable.Range(0, repeats).Select(r => ips[2][r] / ips[0][r]).ToList()):F2}x");
    Console.WriteLine($"INT8 with the first conv in 8-bit too / float, raw ORT: {Median(Enumerable.Range(0, repeats).Select(r => ips[4][r] / ips[0][r]).ToList()):F2}x (\"INT8 conv1\" row)");
    if (profile)
    {
        Profile(int8Path, "INT8", bq, size, data);
        Profile(int8AllPath, "INT8 with the first conv in 8-bit", bq, size, data);
        Profile(fp32Path, "float", bf, size, data);
    }
    Console.WriteLine();
}

// A model of the family with batch-norm statistics moved by a few train-mode passes, as a trained model has them.
byte[] ExportTrainedLike(ResNetSpec spec, int size)
{
    using var model = new ResNetModel(spec, seed: 1);
    using (var scope = NewDisposeScope())
    using (no_grad())
    {
        model.train();
        var gen = new Generator().manual_seed(1);
        for (int i = 0; i < 2; i++) model.forward(rand([4, 3, size, size], generator: gen));
    }
    model.eval();
    return OnnxExporter.Export(model, new OnnxExportOptions { ImageHeight = size, Normalization = InputNormalization.ImageNet, IncludePredictedIndex = true });
}

SessionOptions Options() => new() { IntraOpNumThreads = threads, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };

string OptimizedOps(string path)
{
    string optimized = path + ".optimized.onnx";
    using (var so = Options())
    {
        so.OptimizedModelFilePath = optimized;
        using var _ = new InferenceSession(path, so);
    }
    var ops = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph.Node.GroupBy(n => n.OpType).OrderByDescending(g => g.Count());
    return string.Join(", ", ops.Select(g => $"{g.Key} {g.Count()}"));
}

// ONNX Runtime's profiler: time per operator type over 20 runs at the given batch.
void Profile(string path, string name, int batch, int size, float[] data)
{
    using var so = Options();
    // The prefix first: EnableProfiling takes the prefix set at that moment (else the files land in the current folder).
    so.ProfileOutputPathPrefix = Path.Combine(work, Path.GetFileNameWithoutExtension(path) + "-profile");
    so.EnableProfiling = true;
    string file;
    using (var session = new InferenceSession(path, so))
    {
        using var ro = new RunOptions();
        for (int i = 0; i < 20; i++)
        {
            using var x = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data.AsMemory(0, batch * 3 * size * size), [batch, 3, size, size]);
            using var y = session.Run(ro, [OnnxExporter.Input], [x], [OnnxExporter.ProbabilitiesOutput]);
        }
        file = session.EndProfiling();
    }
    using var doc = JsonDocument.Parse(File.ReadAllText(file));
    var byOp = new Dictionary<string, (double Us, int Calls)>();
    foreach (var e in doc.RootElement.EnumerateArray())
    {
        if (e.GetProperty("cat").GetString() != "Node" || !e.TryGetProperty("args", out var a) || !a.TryGetProperty("op_name", out var op)) continue;
        if (!e.GetProperty("name").GetString()!.EndsWith("_kernel_time", StringComparison.Ordinal)) continue;
        var (us, calls) = byOp.GetValueOrDefault(op.GetString()!);
        byOp[op.GetString()!] = (us + e.GetProperty("dur").GetDouble(), calls + 1);
    }
    double total = byOp.Values.Sum(v => v.Us);
    Console.WriteLine($"profile, {name}, batch {batch}, 20 runs: {total / 20 / 1000:F1} ms per run in operators");
    foreach (var (op, (us, calls)) in byOp.OrderByDescending(kv => kv.Value.Us))
        Console.WriteLine($"  {op,-28} {us / total,6:P1} {us / 20 / 1000,8:F2} ms/run {calls / 20,4} calls/run");
}

void Accuracy()
{
    const string folder = "/usr/share/datasets/fashion-mnist";
    Console.WriteLine($"== accuracy: ResNet-20 trained on the full Fashion-MNIST training set ({epochs} epochs, fast-cpu recipe, batch 128) ==");
    var train = Idx.LoadSplit(folder, train: true);
    var test = Idx.LoadSplit(folder, train: false);
    var spec = ResNetSpec.ResNet20() with { InputChannels = 1, NumClasses = train.ClassNames.Count };
    var options = Recipes.FastCpu() with { Length = TrainingLength.Epochs(epochs), ImageSize = 28, Threads = threads, Seed = 1 };
    using var model = new ResNetModel(spec, seed: 1);
    var sw = Stopwatch.StartNew();
    var result = ResNetTrainer.Train(model, train, options: options);
    Console.WriteLine($"training: {sw.Elapsed.TotalSeconds:F0} s for {epochs} epochs of {train.Count:N0} images");
    byte[] fp32 = OnnxExporter.Export(model, new OnnxExportOptions
    {
        ClassNames = result.Card.ClassNames, ImageHeight = 28, Normalization = result.Card.Normalization.ToInputNormalization(),
    });
    float[] Floats(IImageSource s, int i) => s.Load(i).Pixels.Select(p => p / 255f).ToArray();
    // Calibration: 1,000 training images spread over the set (every 60th).
    var calibration = Enumerable.Range(0, 1000).Select(i => Floats(train, i * train.Count / 1000)).ToList();
    var images = Enumerable.Range(0, test.Count).Select(i => Floats(test, i)).ToList();
    var labels = Enumerable.Range(0, test.Count).Select(test.LabelOf).ToArray();
    using var reference = new OnnxScorer(fp32, new OnnxScorerOptions { IntraOpThreads = threads, MaxBatchSize = 128 });
    int[] fp = QuantizedModelComparison.Predict(reference, images);
    double fpAcc = (double)fp.Where((p, i) => p == labels[i]).Count() / fp.Length;
    Console.WriteLine($"float: {fpAcc:P2} on {fp.Length:N0} test images; file {fp32.Length:N0} bytes");
    foreach (var (method, firstFloat) in new[] { (CalibrationMethod.Percentile, true), (CalibrationMethod.MinMax, true), (CalibrationMethod.Percentile, false), (CalibrationMethod.MinMax, false), (CalibrationMethod.Entropy, false) })
    {
        var (int8, _) = OnnxQuantizer.Quantize(fp32, calibration, new QuantizationOptions { Method = method, KeepFirstConvFloat = firstFloat, Threads = threads });
        using var q = new OnnxScorer(int8, new OnnxScorerOptions { IntraOpThreads = threads, MaxBatchSize = 128 });
        int[] qp = QuantizedModelComparison.Predict(q, images);
        double acc = (double)qp.Where((p, i) => p == labels[i]).Count() / qp.Length;
        double agree = (double)qp.Where((p, i) => p == fp[i]).Count() / qp.Length;
        Console.WriteLine($"INT8 {method,-10}{(firstFloat ? " first conv float" : ""),-17}: {acc:P2} ({(acc - fpAcc) * 100:+0.00;-0.00;0.00} points), top-1 agreement {agree:P2}; file {int8.Length:N0} bytes ({(double)int8.Length / fp32.Length:F3}x)");
    }
}

double Measure(int batch, Action run)
{
    for (int i = 0; i < 2; i++) run(); // warm-up
    var sw = Stopwatch.StartNew();
    int n = 0;
    while (sw.Elapsed.TotalSeconds < seconds || n < 3) { run(); n++; }
    return n * batch / sw.Elapsed.TotalSeconds;
}

static double Median(List<double> v)
{
    var s = v.Order().ToList();
    return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
}

static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "n/a";

string ArgString(string name, string fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

int ArgInt(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}
