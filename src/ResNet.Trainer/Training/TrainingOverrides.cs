using ResNet.Trainer.Data;
using ResNet.Trainer.Models;

namespace ResNet.Trainer.Training;

/// <summary>
/// A user's changes to a named recipe: every field left null keeps the recipe's value. The command line, the demo, the
/// degradation experiment and the ML.NET estimator all describe a run this way and turn it into
/// <see cref="TrainingOptions"/> with <see cref="Resolve"/>, so each field means the same everywhere. The names are
/// those of <see cref="TrainingOptions"/>, except that the length is given as <see cref="Epochs"/> or
/// <see cref="Iterations"/>.
/// </summary>
public record TrainingOverrides
{
    /// <summary>
    /// The base settings: <c>fast-cpu</c>, <c>paper-cifar</c>, <c>paper-imagenet</c> or <c>fine-tune</c> (see <see cref="Recipes"/>).
    /// Default null: <c>fast-cpu</c>, or <c>fine-tune</c> where a pretrained network is given (<see cref="Recipes.DefaultFor"/>).
    /// </summary>
    public string? Recipe { get; set; }

    /// <summary>Passes over the training set; replaces the recipe's length (the paper recipes count iterations). Default: the recipe's.</summary>
    public int? Epochs { get; set; }

    /// <summary>SGD steps; replaces the recipe's length. Give this or <see cref="Epochs"/>, not both. Default: the recipe's.</summary>
    public long? Iterations { get; set; }

    /// <summary>Images per mini-batch. Default: the recipe's.</summary>
    public int? BatchSize { get; set; }

    /// <summary>Base (peak) learning rate. Default: the recipe's.</summary>
    public double? LearningRate { get; set; }

    /// <summary>The trunk's learning rate as a share of the head's (<see cref="TrainingOptions.TrunkLearningRateFactor"/>). Default: the recipe's.</summary>
    public double? TrunkLearningRateFactor { get; set; }

    /// <summary>Learning-rate schedule. Default: the recipe's.</summary>
    public LearningRateSchedule? Schedule { get; set; }

    /// <summary>SGD momentum, from 0 up to 1. Default: the recipe's.</summary>
    public double? Momentum { get; set; }

    /// <summary>Nesterov momentum. Default: the recipe's.</summary>
    public bool? Nesterov { get; set; }

    /// <summary>L2 weight decay. Default: the recipe's.</summary>
    public double? WeightDecay { get; set; }

    /// <summary>Whether weight decay also applies to batch-norm parameters and biases (<see cref="TrainingOptions.DecayNormAndBias"/>). Default: the recipe's (true).</summary>
    public bool? DecayNormAndBias { get; set; }

    /// <summary>Label smoothing, from 0 up to 1. Default: the recipe's.</summary>
    public double? LabelSmoothing { get; set; }

    /// <summary>Decay of the moving average of the weights (<see cref="TrainingOptions.EmaDecay"/>), above 0 and below 1. Default: the recipe's (none).</summary>
    public double? EmaDecay { get; set; }

    /// <summary>Warm-up (e.g. <c>new LinearWarmup(200)</c>). Default: the recipe's.</summary>
    public Warmup? Warmup { get; set; }

    /// <summary>Training augmentation (<see cref="Data.Augmentation.Cifar"/>, <see cref="Data.Augmentation.ImageNet"/>, <see cref="Data.Augmentation.None"/>). Default: the recipe's.</summary>
    public Augmentation? Augmentation { get; set; }

    /// <summary>Probability of erasing a random box of each training image (<see cref="TrainingOptions.RandomErasing"/>), from 0 to 1. Default: the recipe's (0).</summary>
    public double? RandomErasing { get; set; }

    /// <summary>Normalization computed from the training set. Default: the recipe's.</summary>
    public NormalizationKind? Normalization { get; set; }

    /// <summary>Normalization to train with instead of computed statistics (pretrained weights). Default: computed.</summary>
    public Normalization? FixedNormalization { get; set; }

    /// <summary>Input height and width in pixels. Default: the recipe's, else the images' own size.</summary>
    public int? ImageSize { get; set; }

    /// <summary>Accept an image size above <see cref="TrainingOptions.MaxImageSize"/>. Default false.</summary>
    public bool? AllowLargeImages { get; set; }

    /// <summary>Share of the training set held out for validation, from 0 up to 1. Default: the recipe's.</summary>
    public double? ValidationFraction { get; set; }

    /// <summary>Seed of the weights, the shuffle, the augmentation and the split. Default: the recipe's (42).</summary>
    public int? Seed { get; set; }

    /// <summary><c>cpu</c>, <c>cuda</c>, <c>cuda:N</c> or <c>auto</c>. Default: the recipe's (<c>cpu</c>).</summary>
    public string? Device { get; set; }

    /// <summary>Arithmetic of the training step: <c>fp32</c> or <c>bf16</c> (see <see cref="TrainingOptions.Precision"/>). Default: the recipe's (<c>fp32</c>).</summary>
    public string? Precision { get; set; }

    /// <summary>Threads for TorchSharp's CPU kernels, at least 1. Default: one per core.</summary>
    public int? Threads { get; set; }

    /// <summary>Loader threads that decode and augment ahead of the model (0: on the training thread). Default: the recipe's.</summary>
    public int? Workers { get; set; }

    /// <summary>Batches prepared ahead. Default: the recipe's.</summary>
    public int? Prefetch { get; set; }

    /// <summary>Folder for checkpoints (<c>last.ckpt</c>, <c>best.dat</c>). Default: none.</summary>
    public string? CheckpointDirectory { get; set; }

    /// <summary>Write a checkpoint every this many epochs. Default: the recipe's (1).</summary>
    public int? CheckpointEvery { get; set; }

    /// <summary>Continue from the checkpoint in <see cref="CheckpointDirectory"/>. Default: the recipe's (false).</summary>
    public bool? Resume { get; set; }

    /// <summary>Stop when the validation error has not improved for this many epochs. Default: the recipe's (never).</summary>
    public int? EarlyStoppingPatience { get; set; }

    /// <summary>An epoch counts as better only when the watched metric drops by more than this (ImageClassificationTrainer's MinDelta). Default: the recipe's (0).</summary>
    public double? EarlyStoppingMinDelta { get; set; }

    /// <summary>What early stopping and keep-best watch (validation error or loss). Default: the recipe's (validation error).</summary>
    public EarlyStoppingMetric? EarlyStoppingMetric { get; set; }

    /// <summary>Put back the best-on-validation weights at the end. Default: the recipe's (true).</summary>
    public bool? KeepBest { get; set; }

    /// <summary>Report progress every this many iterations. Default: the recipe's.</summary>
    public int? ProgressEvery { get; set; }

    /// <summary>Batch size of validation passes. Default: the recipe's.</summary>
    public int? EvaluationBatchSize { get; set; }

    /// <summary>
    /// The recipe named by <see cref="Recipe"/> with every set field put over it, checked: the one place where a user's
    /// settings meet a recipe.
    /// </summary>
    /// <param name="spec">The architecture (the paper's CIFAR recipe warms up networks of 110 layers or more; the image size is checked against it).</param>
    /// <exception cref="UnknownRecipeException"><see cref="Recipe"/> is not a recipe.</exception>
    /// <exception cref="InvalidTrainingOptionException">A value is out of range, or both <see cref="Epochs"/> and <see cref="Iterations"/> are set.</exception>
    public TrainingOptions Resolve(ResNetSpec? spec = null)
    {
        if (Epochs is not null && Iterations is not null)
            throw new InvalidTrainingOptionException(nameof(Iterations), Iterations.Value.ToString(System.Globalization.CultureInfo.InvariantCulture),
                $"give the length once, as {nameof(Epochs)} ({Epochs}) or as {nameof(Iterations)}, not both");
        var r = Recipes.Get(Recipe ?? Recipes.DefaultFor(pretrained: false), spec);
        var options = r with
        {
            Length = Epochs is int e ? TrainingLength.Epochs(e) : Iterations is long i ? TrainingLength.Iterations(i) : r.Length,
            BatchSize = BatchSize ?? r.BatchSize,
            LearningRate = LearningRate ?? r.LearningRate,
            TrunkLearningRateFactor = TrunkLearningRateFactor ?? r.TrunkLearningRateFactor,
            Schedule = Schedule ?? r.Schedule,
            Momentum = Momentum ?? r.Momentum,
            Nesterov = Nesterov ?? r.Nesterov,
            WeightDecay = WeightDecay ?? r.WeightDecay,
            DecayNormAndBias = DecayNormAndBias ?? r.DecayNormAndBias,
            LabelSmoothing = LabelSmoothing ?? r.LabelSmoothing,
            EmaDecay = EmaDecay ?? r.EmaDecay,
            Warmup = Warmup ?? r.Warmup,
            Augmentation = Augmentation ?? r.Augmentation,
            RandomErasing = RandomErasing ?? r.RandomErasing,
            Normalization = Normalization ?? r.Normalization,
            FixedNormalization = FixedNormalization ?? r.FixedNormalization,
            ImageSize = ImageSize ?? r.ImageSize,
            AllowLargeImages = AllowLargeImages ?? r.AllowLargeImages,
            ValidationFraction = ValidationFraction ?? r.ValidationFraction,
            Seed = Seed ?? r.Seed,
            Device = Device ?? r.Device,
            Precision = Precision ?? r.Precision,
            Threads = Threads ?? r.Threads,
            Workers = Workers ?? r.Workers,
            Prefetch = Prefetch ?? r.Prefetch,
            CheckpointDirectory = CheckpointDirectory ?? r.CheckpointDirectory,
            CheckpointEvery = CheckpointEvery ?? r.CheckpointEvery,
            Resume = Resume ?? r.Resume,
            EarlyStoppingPatience = EarlyStoppingPatience ?? r.EarlyStoppingPatience,
            EarlyStoppingMinDelta = EarlyStoppingMinDelta ?? r.EarlyStoppingMinDelta,
            EarlyStoppingMetric = EarlyStoppingMetric ?? r.EarlyStoppingMetric,
            KeepBest = KeepBest ?? r.KeepBest,
            ProgressEvery = ProgressEvery ?? r.ProgressEvery,
            EvaluationBatchSize = EvaluationBatchSize ?? r.EvaluationBatchSize,
        };
        options.Validate(spec);
        return options;
    }
}
