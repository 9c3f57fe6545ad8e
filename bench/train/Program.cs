// Training throughput of ResNet.Trainer: a bare SGD step on a fixed batch, and an end-to-end epoch through
// the loader (augmentation and normalization on worker threads). Prints one JSON line per measurement so
// run.sh can put it beside PyTorch's figures from the same run.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using ResNet.Trainer;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Training;
using TorchSharp;
using static TorchSharp.torch;

var arg = args.Select((a, i) => (a, i)).Where(p => p.a.StartsWith("--", StringComparison.Ordinal))
    .ToDictionary(p => p.a[2..], p => p.i + 1 < args.Length ? args[p.i + 1] : "");
string arch = arg.GetValueOrDefault("model", "resnet20");
int batch = int.Parse(arg.GetValueOrDefault("batch", "128"), CultureInfo.InvariantCulture);
int size = int.Parse(arg.GetValueOrDefault("size", "32"), CultureInfo.InvariantCulture);
int channels = int.Parse(arg.GetValueOrDefault("channels", "3"), CultureInfo.InvariantCulture); // 1: Fashion-MNIST's gray images
int threads = int.Parse(arg.GetValueOrDefault("threads", "2"), CultureInfo.InvariantCulture);
int steps = int.Parse(arg.GetValueOrDefault("steps", "20"), CultureInfo.InvariantCulture);
int warm = int.Parse(arg.GetValueOrDefault("warmup", "5"), CultureInfo.InvariantCulture);
bool epoch = arg.ContainsKey("epoch");
string precision = arg.GetValueOrDefault("precision", TrainingOptions.Fp32);
// --layout nchw keeps every activation NCHW (the step before the blocked layout); blocked is the library's default.
string layout = arg.GetValueOrDefault("layout", "blocked");
if (layout is not ("blocked" or "nchw")) throw new ArgumentException($"--layout {layout}: use blocked or nchw.");

TorchNative.EnsureReady();
torch.set_num_threads(threads);
if (arg.ContainsKey("tta"))
{
    // The run's settings are the trainer's own: a recipe with overrides, as `resnet train` takes them.
    var overrides = new TrainingOverrides
    {
        Recipe = arg.GetValueOrDefault("recipe", "fast-cpu"),
        Epochs = int.Parse(arg.GetValueOrDefault("epochs", "8"), CultureInfo.InvariantCulture),
        BatchSize = batch, Threads = threads, Precision = precision, KeepBest = false, EvaluationBatchSize = 500,
        LearningRate = Number("lr"), WeightDecay = Number("weight-decay"), LabelSmoothing = Number("label-smoothing"), EmaDecay = Number("ema"),
        RandomErasing = Number("random-erasing"),
        DecayNormAndBias = arg.ContainsKey("no-decay-norm-and-bias") ? false : null, // spelled as resnet train spells it
        Seed = arg.TryGetValue("seed", out var seed) ? int.Parse(seed, CultureInfo.InvariantCulture) : null,
        Schedule = arg.TryGetValue("schedule", out var schedule) ? LearningRateSchedule.Parse(schedule) : null,
        Augmentation = arg.TryGetValue("padding", out var padding) ? new CifarAugmentation(int.Parse(padding, CultureInfo.InvariantCulture)) : null,
    };
    TimeToAccuracy(arg.GetValueOrDefault("model", "resnet8"), arg.ContainsKey("zero-init-residual"), overrides, arg.ContainsKey("tta-flip"),
        arg.TryGetValue("per-class", out var perClass) ? int.Parse(perClass, CultureInfo.InvariantCulture) : null, arg.GetValueOrDefault("save"),
        int.Parse(arg.GetValueOrDefault("tta-shift", "0"), CultureInfo.InvariantCulture));
    return;
}
if (layout == "blocked" && !ResNet.Trainer.Native.CpuFeatures.OneDnnReadsCaches)
{
    // The library keeps NCHW on such a CPU, so a "blocked" figure would be an NCHW one under the wrong label.
    Console.Error.WriteLine("--layout blocked: oneDNN's sum primitive cannot run on this CPU (its cpuid lists no L1 cache), so the library keeps NCHW here; use --layout nchw.");
    Environment.Exit(2);
}
var spec = ResNetSpec.Parse(arch) with { NumClasses = 10, InputChannels = channels };
using var model = new ResNet.Trainer.Models.ResNetModel(spec, seed: 0);
model.train();
model.AllowBlockedLayout = layout == "blocked";
// The step in the trainer's bf16 mode: bfloat16 convolutions on casts of the float32 weights (TrainingOptions.Precision).
model.ComputeType = precision == TrainingOptions.Bf16 ? ScalarType.BFloat16 : null;
bool torchSgd = arg.GetValueOrDefault("optimizer", "ours") == "torchsharp";
var optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum: 0.9, weight_decay: 1e-4);
using var sgd = new Sgd(model.parameters(), 0.9, 1e-4, nesterov: false);

var rng = new Random(0);
var pixels = new byte[batch * 4 * size * size * channels]; // four batches' worth of random images
rng.NextBytes(pixels);
var data = new InMemoryImages(pixels, Enumerable.Range(0, batch * 4).Select(i => i % 10).ToArray(), size, size, channels, Enumerable.Range(0, 10).Select(i => $"c{i}").ToArray());

// Bare step: one fixed batch already in a tensor.
using var x = randn(batch, channels, size, size, generator: new Generator(1));
using var y = randint(0, 10, [batch], generator: new Generator(2));
void Step(Tensor input, Tensor target)
{
    using var scope = NewDisposeScope();
    if (torchSgd) optimizer.zero_grad(); else sgd.ZeroGrad();
    var loss = nn.functional.cross_entropy(model.forward(input), target);
    loss.backward();
    if (torchSgd) optimizer.step(); else sgd.Step(0.01);
}
for (int i = 0; i < warm; i++) Step(x, y);
var clock = Stopwatch.StartNew();
var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
long faults0 = MinorFaults();
for (int i = 0; i < steps; i++) Step(x, y);
double bare = steps * batch / clock.Elapsed.TotalSeconds;
Report("step", bare, steps * batch / (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds, (MinorFaults() - faults0) / steps);

if (epoch)
{
    // End to end: the trainer's own loop (loader with pad-4 crop + flip and per-pixel normalization on a worker thread).
    var options = new TrainingOptions
    {
        Length = TrainingLength.Iterations(steps), BatchSize = batch, Augmentation = Augmentation.Cifar, Normalization = NormalizationKind.PerPixel,
        Threads = threads, Precision = precision, Workers = int.Parse(arg.GetValueOrDefault("workers", "1"), CultureInfo.InvariantCulture), Prefetch = 4, KeepBest = false, ProgressEvery = 1_000_000,
    };
    var big = new InMemoryImages(Repeat(pixels, (steps + 3) / 4 + 1), Enumerable.Range(0, batch * 4 * ((steps + 3) / 4 + 1)).Select(i => i % 10).ToArray(), size, size, channels, data.ClassNames);
    var loaderOnly = new BatchLoader(big, new ImagePipeline(channels, size, size, null, Augmentation.Cifar), new LoaderOptions { BatchSize = batch, Workers = options.Workers });
    var lc = Stopwatch.StartNew();
    int nb = 0;
    foreach (var b in loaderOnly.Epoch(0)) { using var t = tensor(b.Data, b.Shape); if (++nb == steps) break; }
    Report("loader only", steps * batch / lc.Elapsed.TotalSeconds);
    var warmRun = options with { Length = TrainingLength.Iterations(warm), FixedNormalization = Normalization.Compute(big, new ImagePipeline(channels, size, size, null, Augmentation.Cifar), NormalizationKind.PerPixel) };
    ResNetTrainer.Train(model, big, null, warmRun);
    model.ComputeType = precision == TrainingOptions.Bf16 ? ScalarType.BFloat16 : null; // the trainer resets it after each step
    // The machine is shared and its speed drifts within seconds, so the end-to-end figure is taken as pairs: a bare
    // run of the same number of steps right before each epoch, and the median of the pairs' ratios.
    int rounds = int.Parse(arg.GetValueOrDefault("rounds", "3"), CultureInfo.InvariantCulture);
    var ratios = new List<double>();
    for (int r = 0; r < rounds; r++)
    {
        var pairClock = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) Step(x, y);
        double pairedBare = steps * batch / pairClock.Elapsed.TotalSeconds;
        var cpuEpoch = Process.GetCurrentProcess().TotalProcessorTime;
        var result = ResNetTrainer.Train(model, big, null, options with { FixedNormalization = warmRun.FixedNormalization });
        model.ComputeType = precision == TrainingOptions.Bf16 ? ScalarType.BFloat16 : null;
        double endToEnd = steps * batch / result.History[0].Seconds;
        ratios.Add(endToEnd / pairedBare);
        Report("epoch", endToEnd, steps * batch / (Process.GetCurrentProcess().TotalProcessorTime - cpuEpoch).TotalSeconds, pairedStep: pairedBare);
    }
    ratios.Sort();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"# {arch} batch {batch}: end to end / bare step, paired: {string.Join(", ", ratios.Select(v => v.ToString("F3", CultureInfo.InvariantCulture)))}; median {ratios[ratios.Count / 2]:F3}"));
}

double? Number(string name) => arg.TryGetValue(name, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : null;

// Time to accuracy on the full Fashion-MNIST (official 60k/10k split) with a recipe of the trainer (default fast-cpu) and
// the overrides given (--lr, --schedule, --weight-decay, --no-decay-norm-and-bias, --label-smoothing, --ema, --random-erasing,
// --padding N: the crop-and-flip augmentation with N pixels of padding instead of the recipe's). The test set is scored after every epoch
// for the curve only (with the averaged weights under --ema): KeepBest is off, so it never selects the reported model.
// --tta-flip also reports the final accuracy with flip test-time augmentation.
// --tta-shift N then adds a pass that also averages the views moved by N pixels each way (EvaluationOptions.ShiftTestTimeAugmentation).
// --save PATH writes the final model as `resnet train` does (weights + model card), for `resnet evaluate`.
// --per-class N trains on the first N images of each class (a short run, e.g. fp32 against bf16 at the same seed).
static void TimeToAccuracy(string arch, bool zeroInitResidual, TrainingOverrides overrides, bool flip, int? perClass, string? save, int shift)
{
    IImageSource train = Idx.LoadSplit("/usr/share/datasets/fashion-mnist", train: true);
    if (perClass is int n) train = DatasetSplit.Balanced(train, n);
    var test = Idx.LoadSplit("/usr/share/datasets/fashion-mnist", train: false);
    var spec = ResNetSpec.Parse(arch) with { InputChannels = 1, NumClasses = 10, ZeroInitResidual = zeroInitResidual };
    using var model = new ResNet.Trainer.Models.ResNetModel(spec, seed: 42);
    var options = overrides.Resolve(spec);
    var clock = Stopwatch.StartNew();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"time to accuracy: {arch}{(zeroInitResidual ? " (zero-init residual)" : "")}, {overrides.Recipe} recipe, {options.Precision}, {options.Length}, batch {options.BatchSize}, lr {options.LearningRate}, {options.Schedule.GetType().Name}, {options.Augmentation}, " +
        $"weight decay {options.WeightDecay}{(options.DecayNormAndBias ? "" : " (weight matrices only)")}, label smoothing {options.LabelSmoothing}, random erasing {options.RandomErasing}, EMA {(options.EmaDecay is double d ? d.ToString(CultureInfo.InvariantCulture) : "off")}, " +
        $"seed {options.Seed}, {options.Threads} threads, Fashion-MNIST {train.Count}/{test.Count}"));
    Console.WriteLine("epoch  wall_s  train_loss  test_acc");
    var progress = new Inline(p =>
    {
        if (p.Kind != ProgressKind.Epoch) return;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{p.Epoch,5}  {clock.Elapsed.TotalSeconds,6:F0}  {p.Loss,10:F4}  {1 - p.ValidationError,8:P2}"));
    });
    var result = ResNetTrainer.Train(model, train, test, options, progress);
    var final = Evaluator.Evaluate(model, test, result.Card.Pipeline);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"final test accuracy {final.Accuracy:P2} after {result.History.Sum(h => h.Seconds):F0} s (epochs incl. the per-epoch test pass), peak RSS {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576} MB"));
    if (save is not null)
        result.Card.Save(model, save);
    if (flip)
    {
        var flipClock = Stopwatch.StartNew();
        var mirrored = Evaluator.Evaluate(model, test, result.Card.Pipeline, new EvaluationOptions { FlipTestTimeAugmentation = true });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"final test accuracy with flip TTA {mirrored.Accuracy:P2} ({flipClock.Elapsed.TotalSeconds:F0} s for the test pass)"));
    }
    if (shift > 0)
    {
        var shiftClock = Stopwatch.StartNew();
        var shifted = Evaluator.Evaluate(model, test, result.Card.Pipeline, new EvaluationOptions { FlipTestTimeAugmentation = flip, ShiftTestTimeAugmentation = shift });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"final test accuracy with {(flip ? "flip and " : "")}shift TTA of {shift} px ({(flip ? 10 : 5)} views) {shifted.Accuracy:P2} ({shiftClock.Elapsed.TotalSeconds:F0} s for the test pass)"));
    }
}

// Minor page faults of this process so far (/proc/self/stat field 10): memory the allocator handed back to the
// kernel and touched again. Each costs a kernel entry, so faults per step are part of what a step costs.
static long MinorFaults() =>
    long.Parse(File.ReadAllText("/proc/self/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[7], CultureInfo.InvariantCulture);

static byte[] Repeat(byte[] b, int times) => Enumerable.Repeat(b, times).SelectMany(a => a).ToArray();

void Report(string kind, double imagesPerSecond, double? imagesPerCpuSecond = null, long? faultsPerStep = null, double? pairedStep = null)
{
    Console.WriteLine(JsonSerializer.Serialize(new
    {
        impl = "ResNet.Trainer (TorchSharp 0.107)", kind, omp_wait_policy = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "PASSIVE", optimizer = torchSgd ? "torch.optim.SGD" : "ResNet.Trainer Sgd", precision, layout, onednn = ResNet.Trainer.LibtorchSwitches.OneDnnEnabled, model = arch, batch, size, threads,
        images_per_second = Math.Round(imagesPerSecond, 1),
        images_per_cpu_second = imagesPerCpuSecond is double c ? Math.Round(c, 1) : (double?)null,
        peak_rss_mb = Math.Round(Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0, 0),
        page_faults_per_step = faultsPerStep,
        paired_step_images_per_second = pairedStep is double p ? Math.Round(p, 1) : (double?)null,
    }));
}

sealed class Inline(Action<TrainingProgress> action) : IProgress<TrainingProgress>
{
    public void Report(TrainingProgress value) => action(value);
}
