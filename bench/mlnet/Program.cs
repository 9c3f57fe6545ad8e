// IDataView scoring images/s on the same model, images, machine and run: ResNetClassifier's transformer (freshly fitted,
// and after mlContext.Model.Save/Load) vs ML.NET's ApplyOnnxModel on the same ONNX file vs raw batched ONNX Runtime.
// Usage: dotnet run -c Release --project bench/mlnet [-- --threads 1,2 --rounds 5 --rows 2000 --large 100000]
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Image;
using Microsoft.ML.Transforms.Onnx;
using ResNet.MLNet;
using ResNet.MLNet.Transforms;
using ResNet.Trainer.Onnx;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
int[] threadCounts = ArgString("--threads", "1,2").Split(',').Select(int.Parse).ToArray();
int rounds = ArgInt("--rounds", 5);
int rows = ArgInt("--rows", 2000);
int largeRows = ArgInt("--large", 100_000);
int channels = ArgInt("--channels", 3);
int size = ArgInt("--size", 32);
int epochs = ArgInt("--epochs", 1);
int[] batchCandidates = [1, 8, 16, 32, 64];
string repo = FindRepoRoot();
string trainFolder = Path.Combine(repo, "samples", "data", "fashion-mnist-small", "train");
string work = Directory.CreateTempSubdirectory("resnet-mlnet-bench-").FullName;
double sink = 0; // consumed outputs go here, so nothing is optimised away

Console.WriteLine($"date (UTC): {DateTime.UtcNow:yyyy-MM-dd HH:mm}");
Console.WriteLine($"machine: {RuntimeInformation.OSDescription}, {CpuModel()}, {Environment.ProcessorCount} logical cores; .NET {Environment.Version}; ONNX Runtime {OrtEnv.Instance().GetVersionString()} CPU provider");
Console.WriteLine($"load average at start: {LoadAverage()}");

// 1. Fit ResNetClassifier (ResNet-20, 1 epoch) on the embedded Fashion-MNIST subset; the image column is a path.
var ml = new MLContext(seed: 1);
var train = ml.Data.LoadImagesFromDirectory(trainFolder);
var sw = Stopwatch.StartNew();
var fitted = ml.Transforms.Conversion.MapValueToKey("Label")
    .Append(ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
    {
        Architecture = "resnet20",
        ImageColumnName = "ImagePath",
        Channels = channels,
        ImageSize = size,
        Epochs = epochs,
        BatchSize = 64,
        Seed = 1,
    }))
    .Fit(train);
var fresh = fitted.LastTransformer;
var info = fresh.ModelInfo;
Console.WriteLine($"fitted ResNetClassifier: resnet20, {info.Channels}x{info.Height}x{info.Width}, {info.ClassCount} classes, {epochs} epoch(s) in {sw.Elapsed.TotalSeconds:F0} s; " +
                  $"its scoring batch size {fresh.BatchSize}");

// The same model as an ONNX file (what ApplyOnnxModel and raw ONNX Runtime read) and as a saved ML.NET model.
string onnxPath = Path.Combine(work, "resnet20.onnx");
File.WriteAllBytes(onnxPath, fresh.OnnxModel.ToArray());
string[] paths = Directory.EnumerateFiles(trainFolder, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
IDataView PathView(int n) => ml.Data.LoadFromEnumerable(Enumerable.Range(0, n).Select(i => new PathRow { ImagePath = paths[i % paths.Length] }));
var view = PathView(rows);
string zipPath = Path.Combine(work, "model.zip");
ml.Model.Save(fresh, view.Schema, zipPath);
var loaded = new MLContext(seed: 1).RegisterResNet().Model.Load(zipPath, out _);
Console.WriteLine($"images: the {paths.Length} training PNGs repeated to {rows} rows (a path column); model zip {new FileInfo(zipPath).Length / 1024} KiB, ONNX {new FileInfo(onnxPath).Length / 1024} KiB");

// ONNX Runtime's default intra-op thread count here (the transformer and ML.NET's loaded model use the default):
// the pool adds (threads - 1) OS threads; the calling thread is the last one.
int SessionThreads(int intraOp)
{
    int before = ThreadCount();
    using var probe = new OnnxScorer(fresh.OnnxModel.ToArray(), new OnnxScorerOptions { IntraOpThreads = intraOp });
    probe.Score(new float[info.PixelCount], 1);
    return ThreadCount() - before + 1;
}
int defaultThreads = SessionThreads(0);
Console.WriteLine($"ONNX Runtime default intra-op threads on this machine: {defaultThreads} (counted from the OS threads a default session adds; " +
                  $"check: an explicit 2 counts {SessionThreads(2)}, an explicit 1 counts {SessionThreads(1)})");

PixelRange range = info.PixelScale == 1f ? PixelRange.ZeroTo255 : PixelRange.ZeroToOne;
int per = info.PixelCount;
var decoded = paths.Select(p => ImageTensors.Load(p, info.Channels, info.Height, info.Width, range)).ToArray();
var predecoded = new float[rows * per];
for (int i = 0; i < rows; i++) decoded[i % decoded.Length].CopyTo(predecoded, i * per);

var scorerField = typeof(ResNetScoringTransformer).GetField("_scorer", BindingFlags.NonPublic | BindingFlags.Instance)
    ?? throw new InvalidOperationException("ResNetScoringTransformer._scorer not found; update the benchmark's thread override.");
var summary = new List<string>();

foreach (int threads in threadCounts)
{
    Console.WriteLine();
    Console.WriteLine($"== ONNX Runtime intra-op threads: {threads} (inter-op 1) ==  load average: {LoadAverage()}");
    using var so = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
    using var session = new InferenceSession(onnxPath, so);

    // Raw ONNX Runtime's best batch size, chosen on pre-decoded input (best of 2 passes each).
    var sweep = batchCandidates.ToDictionary(b => b, b => Enumerable.Range(0, 2).Max(_ => Measure(() => RawPredecoded(session, b))));
    int best = sweep.MaxBy(kv => kv.Value).Key;
    Console.WriteLine($"raw batch sweep, pre-decoded (img/s): {string.Join(", ", sweep.Select(kv => $"{kv.Key}: {kv.Value:F0}"))}; best {best}");

    // The transformer has no public thread option: when the wanted count is not ONNX Runtime's default, its scorer is
    // swapped (reflection) for the same OnnxScorer opened with IntraOpThreads = threads. The cursor path is unchanged.
    var applyResNet = ml.Transforms.ApplyResNet(onnxPath, "ImagePath", batchSize: best).Fit(view);
    var owned = new List<IDisposable>();
    var originalScorer = scorerField.GetValue(fresh);
    string ourThreads = threads == defaultThreads ? $"{threads} (default)" : $"{threads} (scorer swapped)";
    if (threads != defaultThreads)
        foreach (var t in new[] { fresh, applyResNet })
        {
            var s = new OnnxScorer(t.OnnxModel.ToArray(), new OnnxScorerOptions { IntraOpThreads = threads, MaxBatchSize = t.BatchSize, ClassNames = t.ModelInfo.ClassNames });
            owned.Add(s);
            scorerField.SetValue(t, (BatchScorer)((pixels, count) => s.Score(pixels, count).Probabilities));
        }

    // The deployed-app route: the same zip, loaded with the batched scorer put back, at this table's thread count.
    var loadedBatched = new MLContext(seed: 1).Model.LoadWithResNetScoring(zipPath, out _, threads: threads, batchSize: fresh.BatchSize);
    var applyOnnx = ApplyOnnxModelPipeline(threads).Fit(view);
    var preprocessOnly = Preprocessing().Fit(view);
    var decodeBuffer = new float[best * per];
    var methods = new (string Name, string Threads, Func<int> Run)[]
    {
        ($"ResNetClassifier, fitted (batch {fresh.BatchSize})", ourThreads, () => Consume(fresh.Transform(view), "Score")),
        ($"ApplyResNet(onnx), batch {best}", ourThreads, () => Consume(applyResNet.Transform(view), "Score")),
        ("ResNetClassifier, Save+Load", $"{defaultThreads} (default)", () => Consume(loaded.Transform(view), "Score")),
        ("ML.NET ApplyOnnxModel", $"{threads}", () => Consume(applyOnnx.Transform(view), "probabilities")),
        ($"raw ORT + decode, batch {best}", $"{threads}", () => RawWithDecode(session, best, decodeBuffer)),
        ($"raw ORT pre-decoded, batch {best}", $"{threads}", () => RawPredecoded(session, best)),
        // Where the time goes: the two decoders alone, no model.
        ("(no model) ML.NET LoadImages+Resize+Extract", "-", () => Consume(preprocessOnly.Transform(view), OnnxExporter.Input)),
        ("(no model) SkiaSharp decode (ImageTensors)", "-", () => DecodeOnly()),
        ($"zip via LoadWithResNetScoring (batch {fresh.BatchSize})", $"{threads}", () => Consume(loadedBatched.Transform(view), "Score")),
    };

    foreach (var m in methods) m.Run(); // warm-up: one full pass each
    var bestIps = new double[methods.Length];
    var loads = new List<double>();
    var pairedLoadedBatched = new List<double>();
    var pairedLoadedPlain = new List<double>();
    for (int round = 0; round < rounds; round++)
    {
        loads.Add(Load1());
        var ips = new double[methods.Length];
        for (int m = 0; m < methods.Length; m++)
            bestIps[m] = Math.Max(bestIps[m], ips[m] = Measure(methods[m].Run));
        // Paired within the round: each loaded route against the fitted transformer measured moments before.
        pairedLoadedBatched.Add(ips[^1] / ips[0]);
        pairedLoadedPlain.Add(ips[2] / ips[0]);
    }
    loads.Add(Load1());

    string load = $"{loads.Min():F2}-{loads.Max():F2}";
    Console.WriteLine($"{"method",-46} {"ORT threads",-20} {"images/s",9}  {"x raw+decode",12}  {"x ApplyOnnxModel",16}  load (1 min)");
    for (int m = 0; m < methods.Length; m++)
        Console.WriteLine($"{methods[m].Name,-46} {methods[m].Threads,-20} {bestIps[m],9:F1}  {bestIps[m] / bestIps[4],12:F2}  {bestIps[m] / bestIps[3],16:F2}  {load}");
    summary.Add($"threads {threads}: fitted = {bestIps[0] / bestIps[4]:F2}x raw+decode, {bestIps[0] / bestIps[5]:F2}x raw pre-decoded, {bestIps[0] / bestIps[3]:F2}x ApplyOnnxModel; " +
                $"Save+Load = {bestIps[2] / bestIps[4]:F2}x raw+decode, {bestIps[2] / bestIps[3]:F2}x ApplyOnnxModel; " +
                $"paired medians over {rounds} rounds: LoadWithResNetScoring / fitted = {Median(pairedLoadedBatched):F2}x, Model.Load / fitted = {Median(pairedLoadedPlain):F2}x");
    (loadedBatched as IDisposable)?.Dispose();

    scorerField.SetValue(fresh, originalScorer);
    foreach (var d in owned) d.Dispose();
    applyResNet.Dispose();
}
Console.WriteLine();
foreach (var s in summary) Console.WriteLine(s);

// Memory: a large view made by repeating the paths, scored by the freshly fitted transformer (batched path). The
// peak resident set (VmHWM) is reset first (/proc/self/clear_refs), so it covers this scoring only.
if (largeRows > 0)
{
    var fresh2 = ml.Transforms.ApplyResNet(onnxPath, "ImagePath").Fit(view); // unmodified transformer, default threads, batch 32
    Consume(fresh2.Transform(PathView(1000)), "Score");
    GC.Collect();
    GC.WaitForPendingFinalizers();
    bool reset = TryResetPeak();
    long startRss = Status("VmRSS"), startPeak = Status("VmHWM");
    var large = fresh2.Transform(PathView(largeRows));
    var col = large.Schema["Score"];
    var samples = new List<string>();
    sw.Restart();
    using (var cursor = large.GetRowCursor([col]))
    {
        var getter = cursor.GetGetter<VBuffer<float>>(col);
        VBuffer<float> v = default;
        long n = 0;
        while (cursor.MoveNext())
        {
            getter(ref v);
            sink += v.GetValues()[0];
            if (++n % (largeRows / 5) == 0) samples.Add($"{n / 1000}k: {Status("VmRSS") / 1024} MiB");
        }
    }
    double secs = sw.Elapsed.TotalSeconds;
    Console.WriteLine();
    Console.WriteLine($"memory, {largeRows} rows through the fitted-style transformer (ApplyResNet on the same ONNX, default threads, batch 32), {largeRows / secs:F0} img/s, load average {LoadAverage()}:");
    Console.WriteLine($"  resident set before scoring {startRss / 1024} MiB (peak {(reset ? "reset to" : "NOT reset, since process start:")} {startPeak / 1024} MiB); while scoring: {string.Join(", ", samples)}");
    Console.WriteLine($"  peak resident set while scoring (VmHWM): {Status("VmHWM") / 1024} MiB; managed heap after: {GC.GetTotalMemory(false) / (1024 * 1024)} MiB");
    fresh2.Dispose();
}
Console.WriteLine($"load average at end: {LoadAverage()}; (checksum {sink:E3})");
fresh.Dispose();
Directory.Delete(work, recursive: true);

// ML.NET's own route: LoadImages -> ResizeImages -> ExtractPixels -> ApplyOnnxModel, with the transformer's preprocessing.
IEstimator<ITransformer> ApplyOnnxModelPipeline(int threads) =>
    Preprocessing().Append(ml.Transforms.ApplyOnnxModel(new OnnxOptions
    {
        ModelFile = onnxPath,
        InputColumns = [OnnxExporter.Input],
        OutputColumns = [OnnxExporter.ProbabilitiesOutput],
        ShapeDictionary = new Dictionary<string, int[]> { [OnnxExporter.Input] = [1, info.Channels, info.Height, info.Width] },
        IntraOpNumThreads = threads,
        InterOpNumThreads = 1,
    }));

IEstimator<ITransformer> Preprocessing()
{
    IEstimator<ITransformer> chain = ml.Transforms.LoadImages("img", null, "ImagePath")
        .Append(ml.Transforms.ResizeImages("img", info.Width, info.Height, "img", ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center));
    if (info.Channels == 1) chain = chain.Append(ml.Transforms.ConvertToGrayscale("img", "img"));
    return chain
        .Append(ml.Transforms.ExtractPixels(OnnxExporter.Input, "img",
            info.Channels == 1 ? ImagePixelExtractingEstimator.ColorBits.Red : ImagePixelExtractingEstimator.ColorBits.Rgb,
            ImagePixelExtractingEstimator.ColorsOrder.ARGB, interleavePixelColors: false, scaleImage: info.PixelScale, offsetImage: 0f, outputAsFloatArray: true));
}

int DecodeOnly()
{
    for (int i = 0; i < rows; i++)
        sink += ImageTensors.Load(paths[i % paths.Length], info.Channels, info.Height, info.Width, range)[0];
    return rows;
}

// Raw ONNX Runtime on float batches decoded before timing (no copy: the tensor wraps the buffer).
int RawPredecoded(InferenceSession session, int batch)
{
    using var ro = new RunOptions();
    for (int start = 0; start < rows; start += batch)
    {
        int n = Math.Min(batch, rows - start);
        using var x = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, predecoded.AsMemory(start * per, n * per), [n, info.Channels, info.Height, info.Width]);
        using var y = session.Run(ro, [OnnxExporter.Input], [x], [OnnxExporter.ProbabilitiesOutput]);
        sink += y[0].GetTensorDataAsSpan<float>()[0];
    }
    return rows;
}

// Raw ONNX Runtime with each batch decoded from the same files inside the timing (SkiaSharp decode + resize).
int RawWithDecode(InferenceSession session, int batch, float[] buffer)
{
    using var ro = new RunOptions();
    for (int start = 0; start < rows; start += batch)
    {
        int n = Math.Min(batch, rows - start);
        for (int i = 0; i < n; i++)
            ImageTensors.Load(paths[(start + i) % paths.Length], info.Channels, info.Height, info.Width, range).CopyTo(buffer, i * per);
        using var x = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, buffer.AsMemory(0, n * per), [n, info.Channels, info.Height, info.Width]);
        using var y = session.Run(ro, [OnnxExporter.Input], [x], [OnnxExporter.ProbabilitiesOutput]);
        sink += y[0].GetTensorDataAsSpan<float>()[0];
    }
    return rows;
}

// Reads the score vector of every row with a cursor, as a consumer of the IDataView would.
int Consume(IDataView scored, string column)
{
    var col = scored.Schema[column];
    using var cursor = scored.GetRowCursor([col]);
    var getter = cursor.GetGetter<VBuffer<float>>(col);
    VBuffer<float> v = default;
    int n = 0;
    while (cursor.MoveNext())
    {
        getter(ref v);
        sink += v.GetValues()[0];
        n++;
    }
    return n;
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
}

static double Measure(Func<int> run)
{
    var watch = Stopwatch.StartNew();
    int images = run();
    return images / watch.Elapsed.TotalSeconds;
}

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

static double Load1() => File.Exists("/proc/loadavg") ? double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture) : double.NaN;

static int ThreadCount() => Directory.GetDirectories("/proc/self/task").Length;

static string CpuModel() => File.Exists("/proc/cpuinfo")
    ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "cpu"
    : "cpu";

// kB from /proc/self/status (VmRSS: resident now, VmHWM: peak resident).
static long Status(string key)
{
    string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(key + ":", StringComparison.Ordinal));
    return line is null ? -1 : long.Parse(line.Split(':', 2)[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
}

// Writing 5 to clear_refs resets VmHWM to the current resident set (Linux >= 4.0).
static bool TryResetPeak()
{
    try { File.WriteAllText("/proc/self/clear_refs", "5"); return true; }
    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { return false; }
}

static string FindRepoRoot()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        if (File.Exists(Path.Combine(d.FullName, "ResNetMLNet.sln"))) return d.FullName;
    throw new DirectoryNotFoundException("Run from inside the repository (ResNetMLNet.sln not found above the binary).");
}

string ArgString(string name, string fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}

int ArgInt(string name, int fallback) => int.Parse(ArgString(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

internal sealed class PathRow
{
    public string ImagePath { get; set; } = "";
}
