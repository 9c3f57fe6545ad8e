using System.Globalization;
using System.Text;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;

namespace ResNet.Trainer.Training;

/// <summary>
/// Settings of <see cref="DegradationExperiment"/>. The paper's CIFAR recipe (section 4.2) on a budget that fits 2 CPU cores:
/// the defaults are the setting in which both of the paper's findings showed on this project's machine for two seeds, in
/// C# and in the PyTorch peer (bench/degradation), each seed's whole experiment within an hour.
/// </summary>
public sealed record DegradationOptions
{
    /// <summary>CIFAR-family depths (6n+2); each is trained as a plain net and as a residual net (paper Fig. 6: 20, 32, 44, 56).</summary>
    public IReadOnlyList<int> Depths { get; init; } = [20, 56];

    /// <summary>Training images, the same number from each class (the first of each class in the source's order); 0: all of them.</summary>
    public int TrainingImages { get; init; } = 6400;

    /// <summary>Passes over the training images, the same for every net.</summary>
    public int Epochs { get; init; } = 16;

    /// <summary>Images per mini-batch (paper: 128; 64 here gives a 56-layer net twice the updates on the same images).</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Base learning rate (paper: 0.1), divided by 10 at 50% and 75% of training (the paper's 32k and 48k of 64k iterations).</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>
    /// Warm-up of every net (the same for all, so only depth and shortcuts differ); null: the paper-cifar recipe's (none below
    /// 110 layers). The paper warms up its
    /// 110-layer net (section 4.2); on a budget of a few thousand iterations a 56-layer net needs it too.
    /// </summary>
    public Warmup? Warmup { get; init; } = new LinearWarmup(200);

    /// <summary>
    /// Training augmentation (paper: pad 4, random crop, flip). None by default: training error then measures how well the
    /// optimizer fits the training set, which is the paper's question; with the paper's augmentation both residual nets
    /// reach the same floor on this budget (bench/degradation/README.md, attempt B).
    /// </summary>
    public Augmentation Augmentation { get; init; } = Augmentation.None;

    /// <summary>Seed of every net's weights and of the shuffle: all nets see the same batches in the same order.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>CPU threads for TorchSharp; null: one per core.</summary>
    public int? Threads { get; init; }

    /// <summary><c>cpu</c>, <c>cuda</c>, <c>cuda:N</c> or <c>auto</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>The training options every net gets: the paper's CIFAR recipe with these settings and no validation split.</summary>
    /// <param name="spec">The net (the recipe warms up nets of 110 layers or more); null: none.</param>
    /// <exception cref="InvalidTrainingOptionException">A setting is out of range.</exception>
    public TrainingOptions Recipe(ResNetSpec? spec = null)
    {
        if (TrainingImages < 0)
            throw new InvalidTrainingOptionException(nameof(TrainingImages), TrainingImages.ToString(CultureInfo.InvariantCulture), "give a number of training images, or 0 for all of them");
        return new TrainingOverrides
        {
            Recipe = "paper-cifar",
            Epochs = Epochs,
            Schedule = new StepsAtProgress([0.5, 0.75]),
            BatchSize = BatchSize,
            LearningRate = LearningRate,
            Warmup = Warmup,
            Augmentation = Augmentation,
            ValidationFraction = 0,
            Seed = Seed,
            Threads = Threads,
            Device = Device,
        }.Resolve(spec);
    }

    /// <summary>
    /// The experiment's training images: <see cref="TrainingImages"/> of <paramref name="source"/>, the same number from
    /// each class (the first ones of each class), held in memory; all of it when <see cref="TrainingImages"/> is 0 or
    /// not below its size.
    /// </summary>
    public IImageSource SelectTrainingImages(IImageSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (TrainingImages == 0 || TrainingImages >= source.Count) return source;
        return InMemoryImages.From(DatasetSplit.Balanced(source, Math.Max(1, TrainingImages / source.ClassNames.Count)));
    }
}

/// <summary>One net of the experiment and its per-epoch training figures.</summary>
/// <param name="Name">Architecture name (<c>plain20</c>, <c>resnet56</c>, ...).</param>
/// <param name="Depth">Weighted layers.</param>
/// <param name="Residual">True for the residual net, false for its plain counterpart.</param>
/// <param name="Parameters">Trainable parameters.</param>
/// <param name="History">One entry per epoch.</param>
/// <param name="Elapsed">Wall time of its training.</param>
public sealed record DegradationRun(string Name, int Depth, bool Residual, long Parameters, IReadOnlyList<EpochStats> History, TimeSpan Elapsed)
{
    /// <summary>Training error of the last epoch.</summary>
    public double FinalTrainError => History.Count == 0 ? double.NaN : History[^1].TrainError;
}

/// <summary>The curves of every net, with the comparison the paper predicts.</summary>
/// <param name="Runs">Plain and residual nets, in the order trained (per depth: plain, then residual).</param>
/// <param name="TrainingImages">Images in the training subset.</param>
public sealed record DegradationResult(IReadOnlyList<DegradationRun> Runs, int TrainingImages)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The CSV header of <see cref="ToCsv"/>.</summary>
    public const string CsvHeader = "net,depth,residual,parameters,epoch,iteration,train_loss,train_error,learning_rate,seconds";

    /// <summary>One row per net and epoch: <see cref="CsvHeader"/>.</summary>
    public string ToCsv()
    {
        var sb = new StringBuilder(CsvHeader).Append('\n');
        foreach (var r in Runs)
            foreach (var h in r.History)
                sb.Append(string.Create(Inv, $"{r.Name},{r.Depth},{(r.Residual ? "true" : "false")},{r.Parameters},{h.Epoch},{h.Iteration},{h.TrainLoss:G6},{h.TrainError:G6},{h.LearningRate:G6},{h.Seconds:F2}")).Append('\n');
        return sb.ToString();
    }

    /// <summary>
    /// What the paper predicts, checked on the last epoch's training error: the deepest plain net trains worse than the
    /// shallowest plain net (degradation), and the deepest residual net trains better than the shallowest residual net.
    /// Null when fewer than two depths were run.
    /// </summary>
    public (bool PlainDegrades, bool ResidualImproves)? Verdict()
    {
        var depths = Runs.Select(r => r.Depth).Distinct().Order().ToArray();
        if (depths.Length < 2) return null;
        double Final(int depth, bool residual) => Runs.First(r => r.Depth == depth && r.Residual == residual).FinalTrainError;
        return (Final(depths[^1], false) > Final(depths[0], false), Final(depths[^1], true) < Final(depths[0], true));
    }

    /// <summary>A few lines: each net's final training error and the verdict, for a console or a notebook.</summary>
    public string Summary()
    {
        var sb = new StringBuilder();
        sb.AppendLine(string.Create(Inv, $"{TrainingImages} training images, {Runs.FirstOrDefault()?.History.Count ?? 0} epochs each"));
        foreach (var r in Runs)
            sb.AppendLine(string.Create(Inv, $"  {r.Name,-10} {r.Parameters,10:N0} params  final training error {r.FinalTrainError,7:P2}  ({r.Elapsed.TotalSeconds:F0} s)"));
        if (Verdict() is var (plain, residual))
        {
            sb.AppendLine($"  plain nets: the deeper one trains {(plain ? "worse (degradation, as the paper reports)" : "no worse (no degradation at this budget)")}");
            sb.AppendLine($"  residual nets: the deeper one trains {(residual ? "better (as the paper reports)" : "no better (not the paper's result at this budget)")}");
        }
        return sb.ToString();
    }

    /// <summary>
    /// Reads what <see cref="ToCsv"/> wrote (or the PyTorch peer's file, which has the same columns) back into runs, in the
    /// order of the rows; a run's wall time is the sum of its epochs' seconds.
    /// </summary>
    /// <param name="csv">The file's text: <see cref="CsvHeader"/>, then one row per net and epoch.</param>
    /// <param name="trainingImages">Images in the training subset the runs used (the CSV does not record it).</param>
    /// <exception cref="FormatException">The header or a row is not in that format; the message names the line.</exception>
    public static DegradationResult FromCsv(string csv, int trainingImages)
    {
        ArgumentNullException.ThrowIfNull(csv);
        var lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (lines.Length == 0 || lines[0] != CsvHeader)
            throw new FormatException($"A degradation CSV starts with the header '{CsvHeader}'; this text starts with '{(lines.Length == 0 ? "" : lines[0])}'.");
        var runs = new List<(string Name, int Depth, bool Residual, long Parameters, List<EpochStats> History)>();
        for (int i = 1; i < lines.Length; i++)
        {
            var f = lines[i].Split(',');
            try
            {
                if (f.Length != 10) throw new FormatException($"{f.Length} fields instead of 10");
                var stats = new EpochStats(int.Parse(f[4], Inv), long.Parse(f[5], Inv), double.Parse(f[6], Inv), double.Parse(f[7], Inv),
                    null, null, double.Parse(f[8], Inv), double.Parse(f[9], Inv));
                if (runs.Count == 0 || runs[^1].Name != f[0])
                    runs.Add((f[0], int.Parse(f[1], Inv), bool.Parse(f[2]), long.Parse(f[3], Inv), []));
                runs[^1].History.Add(stats);
            }
            catch (FormatException e)
            {
                throw new FormatException($"Line {i + 1} of the degradation CSV ('{lines[i]}') is not a row of '{CsvHeader}': {e.Message}", e);
            }
        }
        return new DegradationResult(
            runs.Select(r => new DegradationRun(r.Name, r.Depth, r.Residual, r.Parameters, r.History, TimeSpan.FromSeconds(r.History.Sum(h => h.Seconds)))).ToList(),
            trainingImages);
    }

    /// <summary>
    /// Training error against iterations as an SVG in the layout of the paper's Fig. 6: plain nets on the left, residual
    /// nets on the right, one colour per depth, the same axes on both sides.
    /// </summary>
    /// <param name="title">A line above the two panels (e.g. which implementation and seed); null: the training set's size.</param>
    public string ToSvg(string? title = null)
    {
        const int PanelW = 380, H = 400, L = 60, Gap = 50, T = 56, B = 50, Legend = 24;
        int w = L + 2 * PanelW + Gap + 20;
        string[] colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
        long iterations = Math.Max(1, Runs.SelectMany(r => r.History).Select(h => h.Iteration).DefaultIfEmpty(1).Max());
        double top = Runs.SelectMany(r => r.History).Select(h => h.TrainError).Where(double.IsFinite).DefaultIfEmpty(1).Max();
        top = Math.Min(1, Math.Ceiling(top * 10 + 1e-9) / 10); // the error axis ends at the next 10%
        var depths = Runs.Select(r => r.Depth).Distinct().Order().ToList();
        int plotBottom = H - B - Legend;
        double Y(double error) => T + (1 - error / top) * (plotBottom - T);
        var sb = new StringBuilder();
        sb.AppendLine($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">");
        sb.AppendLine($"<rect width=\"{w}\" height=\"{H}\" fill=\"white\"/>");
        string heading = title ?? string.Create(Inv, $"{TrainingImages} training images");
        sb.AppendLine($"<text x=\"{L}\" y=\"20\" font-size=\"14\">Training error: {System.Security.SecurityElement.Escape(heading)}</text>");
        foreach (bool residual in new[] { false, true })
        {
            int left = L + (residual ? PanelW + Gap : 0), right = left + PanelW;
            double X(long iteration) => left + iteration * (double)PanelW / iterations;
            sb.AppendLine($"<text x=\"{left + PanelW / 2}\" y=\"{T - 10}\" text-anchor=\"middle\" font-weight=\"bold\">{(residual ? "residual" : "plain")}</text>");
            for (int i = 0; i <= 10; i++)
            {
                double e = top * i / 10, y = Y(e);
                sb.AppendLine(string.Create(Inv, $"<line x1=\"{left}\" x2=\"{right}\" y1=\"{y:F1}\" y2=\"{y:F1}\" stroke=\"#e0e0e0\"/><text x=\"{left - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">{e * 100:0.#}%</text>"));
            }
            sb.AppendLine(string.Create(Inv, $"<text x=\"{left}\" y=\"{plotBottom + 16}\">0</text><text x=\"{right}\" y=\"{plotBottom + 16}\" text-anchor=\"end\">{iterations}</text><text x=\"{left + PanelW / 2}\" y=\"{plotBottom + 16}\" text-anchor=\"middle\">iterations</text>"));
            int row = 0;
            foreach (var r in Runs.Where(r => r.Residual == residual))
            {
                string colour = colours[depths.IndexOf(r.Depth) % colours.Length];
                var points = r.History.Where(h => double.IsFinite(h.TrainError)).Select(h => string.Create(Inv, $"{X(h.Iteration):F1},{Y(h.TrainError):F1}"));
                sb.AppendLine($"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{string.Join(' ', points)}\"/>");
                int lx = left + 190 * (row % 2), ly = H - B + 4 + 18 * (row / 2); // two legend entries per line
                row++;
                sb.AppendLine(string.Create(Inv, $"<line x1=\"{lx}\" x2=\"{lx + 24}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"/><text x=\"{lx + 30}\" y=\"{ly + 4}\">{r.Name} ({r.FinalTrainError * 100:F1}%)</text>"));
            }
        }
        sb.AppendLine("</svg>");
        return sb.ToString();
    }
}

/// <summary>
/// The degradation experiment of the paper (section 4.1, Fig. 1 and Fig. 4; CIFAR: section 4.2, Fig. 6): plain and residual
/// networks of the same depths, trained with the same recipe on the same data, compared by their training error.
/// </summary>
public static class DegradationExperiment
{
    /// <summary>Trains, for each depth, the plain net and then the residual net on <paramref name="train"/>.</summary>
    /// <param name="train">Training images (all nets see the same ones in the same order).</param>
    /// <param name="options">Depths, epochs and recipe; null takes the defaults.</param>
    /// <param name="progress">Receives each net's training events; a message announces each net before it starts.</param>
    /// <param name="cancellationToken">Stops the current net after its current iteration; the nets finished so far are returned.</param>
    /// <exception cref="UnknownArchitectureException">A depth is not of the form 6n+2.</exception>
    public static DegradationResult Run(IImageSource train, DegradationOptions? options = null, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        var o = options ?? new DegradationOptions();
        if (o.Depths.Count == 0) throw new ArgumentException("Give at least one depth, e.g. 20 and 56.", nameof(options));
        var specs = new List<ResNetSpec>();
        foreach (int depth in o.Depths)
        {
            if (depth < 8 || (depth - 2) % 6 != 0)
                throw new UnknownArchitectureException($"Depth {depth} is not a CIFAR-family depth; use 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110).");
            foreach (bool residual in new[] { false, true })
                specs.Add(ResNetSpec.Cifar((depth - 2) / 6, residual) with { InputChannels = train.Channels, NumClasses = train.ClassNames.Count });
        }

        var recipes = specs.Select(o.Recipe).ToList(); // every net's settings are checked before the first one trains
        var runs = new List<DegradationRun>();
        foreach (var (spec, recipe) in specs.Zip(recipes))
        {
            if (cancellationToken.IsCancellationRequested) break;
            long parameters = ModelStats.Parameters(spec);
            progress?.Report(TrainingProgress.Note(
                string.Create(CultureInfo.InvariantCulture, $"{spec.Name}: {parameters:N0} parameters, {o.Epochs} epochs on {train.Count} images")));
            using var model = new Models.ResNetModel(spec, seed: o.Seed);
            var result = ResNetTrainer.Train(model, train, null, recipe, progress, cancellationToken);
            runs.Add(new DegradationRun(spec.Name, spec.Depth, spec.Residual, parameters, result.History, result.Elapsed));
        }
        return new DegradationResult(runs, train.Count);
    }
}
