using System.Globalization;
using System.Text;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;

namespace ResNet.Trainer.Training;

/// <summary>Settings of <see cref="DegradationExperiment"/>. The defaults are the paper's CIFAR recipe (section 4.2) on a short epoch budget.</summary>
public sealed record DegradationOptions
{
    /// <summary>CIFAR-family depths (6n+2); each is trained as a plain net and as a residual net (paper Fig. 6: 20, 32, 44, 56).</summary>
    public IReadOnlyList<int> Depths { get; init; } = [20, 56];

    /// <summary>Passes over the training subset, the same for every net.</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Images per mini-batch (paper: 128).</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Base learning rate (paper: 0.1), divided by 10 at 50% and 75% of training (the paper's 32k and 48k of 64k iterations).</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>Training augmentation (paper: pad 4, random crop, flip).</summary>
    public Augmentation Augmentation { get; init; } = Augmentation.Cifar;

    /// <summary>Seed of every net's weights and of the shuffle: all nets see the same batches in the same order.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>CPU threads for TorchSharp; null: one per core.</summary>
    public int? Threads { get; init; }

    /// <summary><c>cpu</c>, <c>cuda</c>, <c>cuda:N</c> or <c>auto</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>The training options every net gets: the paper's CIFAR recipe with these settings and no validation split.</summary>
    /// <param name="spec">The net (the recipe warms up nets of 110 layers or more); null: none.</param>
    /// <exception cref="InvalidTrainingOptionException">A setting is out of range.</exception>
    public TrainingOptions Recipe(ResNetSpec? spec = null) => new TrainingOverrides
    {
        Recipe = "paper-cifar",
        Epochs = Epochs,
        Schedule = new StepsAtProgress([0.5, 0.75]),
        BatchSize = BatchSize,
        LearningRate = LearningRate,
        Augmentation = Augmentation,
        ValidationFraction = 0,
        Seed = Seed,
        Threads = Threads,
        Device = Device,
    }.Resolve(spec);
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

    /// <summary>Training error per epoch of every net as an SVG line chart: one colour per depth, dashed plain, solid residual (as in the paper's Fig. 6).</summary>
    public string ToSvg()
    {
        const int W = 760, H = 420, L = 60, R = 190, T = 40, B = 50;
        string[] colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
        int epochs = Math.Max(1, Runs.Max(r => r.History.Count));
        double top = Runs.SelectMany(r => r.History).Select(h => h.TrainError).Where(double.IsFinite).DefaultIfEmpty(1).Max();
        top = Math.Min(1, Math.Ceiling(top * 10 + 1e-9) / 10); // the error axis ends at the next 10%
        double X(int epoch) => L + (epochs <= 1 ? 0 : (epoch - 1) * (W - L - R) / (double)(epochs - 1));
        double Y(double error) => T + (1 - error / top) * (H - T - B);
        var sb = new StringBuilder();
        sb.AppendLine($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">");
        sb.AppendLine($"<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>");
        sb.AppendLine(string.Create(Inv, $"<text x=\"{L}\" y=\"20\" font-size=\"14\">Training error per epoch, {TrainingImages} images (dashed: plain, solid: residual)</text>"));
        for (int i = 0; i <= 10; i++)
        {
            double e = top * i / 10, y = Y(e);
            sb.AppendLine(string.Create(Inv, $"<line x1=\"{L}\" x2=\"{W - R}\" y1=\"{y:F1}\" y2=\"{y:F1}\" stroke=\"#e0e0e0\"/><text x=\"{L - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">{e * 100:0.#}%</text>"));
        }
        sb.AppendLine(string.Create(Inv, $"<text x=\"{(L + W - R) / 2}\" y=\"{H - 12}\" text-anchor=\"middle\">epoch (1 to {epochs})</text>"));
        var depths = Runs.Select(r => r.Depth).Distinct().Order().ToList();
        for (int row = 0; row < Runs.Count; row++)
        {
            var r = Runs[row];
            string colour = colours[depths.IndexOf(r.Depth) % colours.Length];
            string dash = r.Residual ? "" : " stroke-dasharray=\"7 4\"";
            var points = r.History.Where(h => double.IsFinite(h.TrainError)).Select(h => string.Create(Inv, $"{X(h.Epoch):F1},{Y(h.TrainError):F1}"));
            sb.AppendLine($"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{string.Join(' ', points)}\"/>");
            int ly = T + 20 * row;
            sb.AppendLine(string.Create(Inv, $"<line x1=\"{W - R + 10}\" x2=\"{W - R + 40}\" y1=\"{ly}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/><text x=\"{W - R + 46}\" y=\"{ly + 4}\">{r.Name} ({r.FinalTrainError * 100:F1}%)</text>"));
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
