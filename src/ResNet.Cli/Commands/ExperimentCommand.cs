using System.CommandLine;
using System.Globalization;
using ResNet.Cli.Hosting;
using ResNet.Cli.Reporting;
using ResNet.Scoring;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Training;

namespace ResNet.Cli.Commands;

/// <summary><c>resnet experiment degradation</c>: the paper's plain-versus-residual comparison (Fig. 1, Fig. 6); writes the curves as CSV and SVG.</summary>
internal static class ExperimentCommand
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package puts the IDX files.</summary>
    internal const string FashionMnist = "/usr/share/datasets/fashion-mnist";

    public static Command Create(TextWriter output)
    {
        var experiment = new Command("experiment", "Reproduce an experiment of the paper.");
        experiment.Subcommands.Add(Degradation(output));
        return experiment;
    }

    private static Command Degradation(TextWriter output)
    {
        var defaults = new DegradationOptions(); // the one source of the experiment's defaults
        var data = new Option<string>("--data") { Description = "Training data: a folder of IDX files, CIFAR .bin batches or an image folder.", DefaultValueFactory = _ => FashionMnist };
        var depths = new Option<string>("--depths") { Description = "Comma-separated depths 6n+2; each is trained plain and residual (the paper's Fig. 6: 20,32,44,56).", DefaultValueFactory = _ => string.Join(",", defaults.Depths) };
        var epochs = new Option<int>("--epochs") { Description = "Epochs per net (learning rate /10 at 50% and 75%).", DefaultValueFactory = _ => defaults.Epochs };
        var subset = new Option<int>("--subset") { Description = "Training images, the same number from each class; 0 uses the whole training set.", DefaultValueFactory = _ => defaults.TrainingImages };
        var batch = new Option<int>("--batch-size") { Description = "Images per mini-batch (paper: 128).", DefaultValueFactory = _ => defaults.BatchSize };
        var lr = new Option<double>("--lr") { Description = "Base learning rate (paper: 0.1).", DefaultValueFactory = _ => defaults.LearningRate };
        var warmup = new Option<int>("--warmup")
        {
            Description = "Linear warm-up of every net over this many iterations, from a tenth of --lr; 0: none.",
            DefaultValueFactory = _ => defaults.Warmup is LinearWarmup w ? checked((int)w.Iterations) : 0,
        };
        var augment = new Option<string>("--augment") { Description = "none or cifar (pad 4, crop, flip: the paper's).", DefaultValueFactory = _ => Augmentation.NameOf(defaults.Augmentation) ?? "cifar" };
        var seed = new Option<int>("--seed") { Description = "Seed of the weights, the shuffle and the augmentation (the same for every net).", DefaultValueFactory = _ => defaults.Seed };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for TorchSharp (default: all cores)." };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:N or auto.", DefaultValueFactory = _ => "cpu" };
        var showSettings = new Option<bool>("--show-settings") { Description = "Check the settings, print them as JSON (DegradationOptions) and exit without training; bench/degradation's PyTorch peer reads them." };
        var outDir = new Option<string>("--output") { Description = "Folder for degradation.csv and degradation.svg.", DefaultValueFactory = _ => "resnet-degradation" };
        var cmd = new Command("degradation",
            "Train plain and residual nets of the same depths with the same recipe and compare their training error (the paper's Fig. 6). " +
            "Writes degradation.csv (one row per net and epoch) and degradation.svg to --output.")
        { data, depths, epochs, subset, batch, lr, warmup, augment, seed, threads, device, showSettings, outDir };
        cmd.SetAction((parse, ct) => Task.FromResult(UserErrors.Run(parse, () =>
        {
            var error = parse.InvocationConfiguration.Error;
            var options = new DegradationOptions
            {
                Depths = ParseDepths(parse.GetValue(depths)!),
                Epochs = parse.GetValue(epochs),
                TrainingImages = parse.GetValue(subset),
                BatchSize = parse.GetValue(batch),
                LearningRate = parse.GetValue(lr),
                Warmup = new LinearWarmup(parse.GetValue(warmup)),
                Augmentation = Augmentation.Parse(parse.GetValue(augment)!),
                Seed = parse.GetValue(seed),
                Threads = parse.GetValue(threads),
                Device = parse.GetValue(device)!,
            };
            var recipe = options.Recipe(); // every setting is checked before the data is read
            if (parse.GetValue(showSettings))
            {
                output.WriteLine(System.Text.Json.JsonSerializer.Serialize(options));
                return 0;
            }
            string dir = parse.GetValue(outDir)!;
            OutputFolder.Prepare(dir, "--output", parse.GetValue(data));
            var opened = DataLocator.Open(parse.GetValue(data)!, null, null, BadImagePolicy.Skip, w => error.WriteLine("warning: " + w));
            IImageSource train = options.SelectTrainingImages(opened.Train);

            output.WriteLine($"data: {opened.Description}");
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"experiment: plain and residual nets of depths {string.Join(", ", options.Depths)}; {options.Epochs} epochs each on {train.Count} images; batch {recipe.BatchSize}, lr {recipe.LearningRate} (/10 at 50% and 75%){(recipe.Warmup is LinearWarmup { Iterations: > 0 } w ? $" after a linear warm-up over {w.Iterations} iterations" : "")}, momentum {recipe.Momentum}, weight decay {recipe.WeightDecay}"));
            var printer = new ProgressPrinter(output, ProgressPrinter.IsTerminal(output));
            var result = DegradationExperiment.Run(train, options, printer, ct);
            printer.EndLine();

            Directory.CreateDirectory(dir);
            AtomicFile.WriteAllText(Path.Combine(dir, "degradation.csv"), result.ToCsv());
            if (result.Runs.Count > 0) AtomicFile.WriteAllText(Path.Combine(dir, "degradation.svg"), result.ToSvg());
            output.WriteLine();
            output.Write(result.Summary());
            output.WriteLine($"files in {Path.GetFullPath(dir)}: degradation.csv (one row per net and epoch){(result.Runs.Count > 0 ? ", degradation.svg" : "")}");
            if (ct.IsCancellationRequested) output.WriteLine("Interrupted: the files above hold the nets and epochs finished so far.");
            return ct.IsCancellationRequested ? UserErrors.Interrupted : 0;
        })));
        return cmd;
    }

    private static int[] ParseDepths(string text)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var depths = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out depths[i]))
                throw new ArgumentException($"--depths '{text}': '{parts[i]}' is not a whole number. Give depths 6n+2 separated by commas, e.g. 20,56.");
        if (depths.Length == 0) throw new ArgumentException("--depths is empty. Give depths 6n+2 separated by commas, e.g. 20,56.");
        return depths;
    }
}
