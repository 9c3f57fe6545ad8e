using ResNet.Trainer.Data;

namespace ResNet.Trainer.Training;

/// <summary>
/// Everything a training run needs besides the model and the data. The defaults are the paper's CIFAR
/// settings (section 4.2) with the rate dropped at 50% and 75% of training (32k and 48k of 64k iterations).
/// </summary>
public sealed record TrainingOptions
{
    /// <summary>How long to train: <see cref="TrainingLength.Epochs"/> or <see cref="TrainingLength.Iterations"/> (the paper's 64k on CIFAR).</summary>
    public TrainingLength Length { get; init; } = TrainingLength.Epochs(30);

    /// <summary>Images per mini-batch (paper: 128 on CIFAR, 256 on ImageNet).</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Base learning rate (paper: 0.1).</summary>
    public double LearningRate { get; init; } = 0.1;

    /// <summary>
    /// The trunk's learning rate as a share of <see cref="LearningRate"/>, which the classifier (<c>fc</c>) takes: below 1 when
    /// fine-tuning pretrained weights, so a freshly initialised head learns fast without wrecking the trunk (the
    /// <c>fine-tune</c> recipe: 0.1). Default 1: one rate for every layer, as the paper trains.
    /// </summary>
    public double TrunkLearningRateFactor { get; init; } = 1.0;

    /// <summary>SGD momentum (paper: 0.9).</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>Nesterov momentum instead of the classical one.</summary>
    public bool Nesterov { get; init; }

    /// <summary>L2 weight decay added to the gradient (paper: 1e-4).</summary>
    public double WeightDecay { get; init; } = 1e-4;

    /// <summary>
    /// Whether <see cref="WeightDecay"/> also pulls the batch-norm scales and shifts and the classifier's bias toward zero, as
    /// the paper and <c>torch.optim.SGD</c> over all parameters do (true, the default). False decays only the convolution and
    /// classifier weight matrices: the "no bias decay" of fast large-batch training (Jia et al. 2018), which timm applies by
    /// default to every one-dimensional parameter.
    /// </summary>
    public bool DecayNormAndBias { get; init; } = true;

    /// <summary>The learning rate over training.</summary>
    public LearningRateSchedule Schedule { get; init; } = new StepsAtProgress([0.5, 0.75]);

    /// <summary>Optional warm-up (e.g. the paper's ResNet-110 rule, <see cref="WarmupUntilTrainError"/>).</summary>
    public Warmup? Warmup { get; init; }

    /// <summary>Label smoothing of the cross-entropy target (0: the paper's plain cross-entropy).</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>
    /// Decay of an exponential moving average of the weights (e.g. 0.999), from 0 up to, not including, 1; null (the default)
    /// keeps none. After each SGD step every parameter's average moves as <c>ema = d * ema + (1 - d) * p</c> with the warm-up
    /// <c>d = min(EmaDecay, (1 + t) / (10 + t))</c> after t earlier steps, so the initial weights fade fast; batch-norm running
    /// statistics are averaged the same way. Validation, the best weights, checkpoints' averaged copy and the returned model use
    /// the averaged weights; training steps the live ones.
    /// </summary>
    public double? EmaDecay { get; init; }

    /// <summary>Training-time augmentation (paper's CIFAR recipe by default).</summary>
    public Augmentation Augmentation { get; init; } = Augmentation.Cifar;

    /// <summary>
    /// Probability of erasing a random box of each training image (torchvision's <c>RandomErasing</c>; see
    /// <see cref="ImagePipeline.RandomErasing"/>), from 0 (the default: never) to 1, on top of <see cref="Augmentation"/>.
    /// </summary>
    public double RandomErasing { get; init; }

    /// <summary>Normalization computed from the training set (paper: per-pixel mean subtraction).</summary>
    public NormalizationKind Normalization { get; init; } = NormalizationKind.PerPixel;

    /// <summary>Input height and width; null: the size of the training images.</summary>
    public int? ImageSize { get; init; }

    /// <summary>Accept an <see cref="ImageSize"/> above <see cref="MaxImageSize"/> (memory grows with its square).</summary>
    public bool AllowLargeImages { get; init; }

    /// <summary>
    /// Normalization to train with instead of statistics computed from the training set: for pretrained weights,
    /// whose preprocessing is fixed. Default: computed as <see cref="Normalization"/> says.
    /// </summary>
    public Normalization? FixedNormalization { get; init; }

    /// <summary>
    /// Share of the training set held out (stratified, seeded) for validation when no validation set is passed;
    /// 0 for none. The paper holds out 5k of 50k (0.1) on CIFAR.
    /// </summary>
    public double ValidationFraction { get; init; }

    /// <summary>Seed of the initial weights, the shuffle, the augmentation and the split. Same seed, same run.</summary>
    public int Seed { get; init; } = 42;

    /// <summary><c>cpu</c>, <c>cuda</c>, <c>cuda:N</c> or <c>auto</c>.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>
    /// Arithmetic of the training step: <c>fp32</c> (default), or <c>bf16</c>: convolutions in bfloat16 on a bfloat16 cast of the
    /// float32 weights, which get their gradients and SGD updates in float32; batch norm keeps float32 parameters and running
    /// statistics and the loss is taken in float32. On CPUs with AVX512_BF16 (or AMX) the step is 1.3-1.6x the float32 one
    /// (ResNet-20, ResNet-56 and ResNet-18 at 224 pixels, bench/train run 13) at the same accuracy per image; without it
    /// oneDNN emulates bfloat16, the step is about half as fast as float32, and training warns. Validation and scoring stay
    /// in float32.
    /// </summary>
    public string Precision { get; init; } = Fp32;

    /// <summary>The value of <see cref="Precision"/> for float32 training.</summary>
    public const string Fp32 = "fp32";

    /// <summary>The value of <see cref="Precision"/> for bfloat16 convolutions with float32 master weights.</summary>
    public const string Bf16 = "bf16";

    /// <summary>Threads for TorchSharp's CPU kernels; null leaves TorchSharp's default (one per core).</summary>
    public int? Threads { get; init; }

    /// <summary>Loader threads that decode and augment ahead of the model.</summary>
    public int Workers { get; init; } = 1;

    /// <summary>Batches prepared ahead.</summary>
    public int Prefetch { get; init; } = 4;

    /// <summary>Folder for checkpoints (<c>last.ckpt</c>, <c>best.dat</c>); null writes none.</summary>
    public string? CheckpointDirectory { get; init; }

    /// <summary>Write a checkpoint every this many epochs (and always at the end and on cancellation).</summary>
    public int CheckpointEvery { get; init; } = 1;

    /// <summary>Continue from <c>last.ckpt</c> in <see cref="CheckpointDirectory"/> when it exists.</summary>
    public bool Resume { get; init; }

    /// <summary>Stop when the validation error has not improved for this many epochs; null: never.</summary>
    public int? EarlyStoppingPatience { get; init; }

    /// <summary>An epoch improves only when the watched metric drops by more than this (ML.NET's MinDelta). Default 0.</summary>
    public double EarlyStoppingMinDelta { get; init; }

    /// <summary>What early stopping and <see cref="KeepBest"/> watch. Default: the validation error.</summary>
    public EarlyStoppingMetric EarlyStoppingMetric { get; init; } = EarlyStoppingMetric.ValidationError;

    /// <summary>At the end, put back the weights of the epoch with the lowest validation error.</summary>
    public bool KeepBest { get; init; } = true;

    /// <summary>Report progress every this many iterations (and at the end of each epoch).</summary>
    public int ProgressEvery { get; init; } = 10;

    /// <summary>Batch size for validation passes.</summary>
    public int EvaluationBatchSize { get; init; } = 256;

    /// <summary>The largest <see cref="ImageSize"/> taken without <see cref="AllowLargeImages"/>.</summary>
    public const int MaxImageSize = 4096;

    /// <summary>
    /// Checks every value before any work starts: a run with zero epochs, a rate that is not a positive number or a
    /// thread count libtorch aborts on is refused here, not after it has overwritten a model or crashed the process.
    /// </summary>
    /// <param name="spec">The architecture, for the smallest image size it takes; null skips that check.</param>
    /// <exception cref="InvalidTrainingOptionException">A value is out of range; the message names it and says what to give.</exception>
    public void Validate(Models.ResNetSpec? spec = null)
    {
        static void Require(bool ok, string option, object? value, string requirement)
        {
            if (!ok) throw new InvalidTrainingOptionException(option, Text(value), requirement);
        }
        static string Text(object? value) => value switch
        {
            null => "null",
            double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
            IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
            _ => value.ToString() ?? "null",
        };

        Require(Length is not null, nameof(Length), Length, "give a number of epochs or of iterations");
        Require(Length!.Count >= 1, Length.Unit == TrainingUnit.Epochs ? "Epochs" : "Iterations", Length.Count,
            "train for at least 1 (a run of none would replace a model with untrained weights)");
        Require(BatchSize >= 1, nameof(BatchSize), BatchSize, "give at least 1 image per mini-batch (the paper: 128 on CIFAR)");
        Require(double.IsFinite(LearningRate) && LearningRate > 0, nameof(LearningRate), LearningRate, "give a finite number above 0 (the paper: 0.1)");
        Require(double.IsFinite(TrunkLearningRateFactor) && TrunkLearningRateFactor >= 0 && TrunkLearningRateFactor <= 1, nameof(TrunkLearningRateFactor), TrunkLearningRateFactor,
            "give a share of the learning rate from 0 (trunk frozen) to 1 (one rate for every layer); fine-tuning uses 0.1");
        Require(Momentum is >= 0 and < 1, nameof(Momentum), Momentum, "give a number from 0 up to, not including, 1 (the paper: 0.9)");
        Require(double.IsFinite(WeightDecay) && WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "give a finite number of 0 or more (the paper: 0.0001)");
        Require(LabelSmoothing is >= 0 and < 1, nameof(LabelSmoothing), LabelSmoothing, "give a number from 0 up to, not including, 1 (0: plain cross-entropy)");
        Require(EmaDecay is null || EmaDecay is > 0 and < 1, nameof(EmaDecay), EmaDecay,
            "give a decay above 0 and below 1 (e.g. 0.999: an average over about the last 1,000 steps), or leave it unset for no average");
        Require(Schedule is not null, nameof(Schedule), Schedule, "give a learning-rate schedule (e.g. the constant one)");
        Require(Augmentation is not null, nameof(Augmentation), Augmentation, "give an augmentation (none, cifar or imagenet)");
        Require(RandomErasing is >= 0 and <= 1, nameof(RandomErasing), RandomErasing, "give a probability from 0 (never erase) to 1 (erase a box of every image; 0.5 is torchvision's)");
        switch (Warmup)
        {
            case LinearWarmup linear:
                Require(linear.Iterations >= 0, nameof(Warmup), linear.Iterations, "give a warm-up of 0 or more iterations");
                Require(double.IsFinite(linear.StartFactor) && linear.StartFactor > 0, nameof(Warmup), linear.StartFactor, "give a start factor above 0");
                break;
            case WarmupUntilTrainError rule:
                Require(double.IsFinite(rule.LearningRate) && rule.LearningRate > 0, nameof(Warmup), rule.LearningRate, "give a warm-up learning rate above 0 (the paper: 0.01)");
                Require(rule.Window >= 1, nameof(Warmup), rule.Window, "average the training error over at least 1 iteration");
                break;
        }
        if (ImageSize is int size)
        {
            int smallest = spec is null ? 1 : Models.ResNetPlan.MinimumImageSize(spec);
            Require(size >= smallest, nameof(ImageSize), size,
                $"give at least {smallest} pixels{(spec is null ? "" : $" (the {smallest}x downsampling of {spec.Name})")}, or leave it unset to use the images' own size");
            Require(size <= MaxImageSize || AllowLargeImages, nameof(ImageSize), size,
                $"give at most {MaxImageSize} pixels, or set {nameof(AllowLargeImages)} when such large inputs are really meant");
        }
        Require(ValidationFraction is >= 0 and < 1, nameof(ValidationFraction), ValidationFraction, "give a share from 0 (none) up to, not including, 1 (the paper: 0.1 on CIFAR)");
        Require(!string.IsNullOrWhiteSpace(Device), nameof(Device), Device, "give cpu, cuda, cuda:N or auto");
        Require(Precision is Fp32 or Bf16, nameof(Precision), Precision, $"give {Fp32} (float32, the default) or {Bf16} (bfloat16 convolutions, float32 weights and batch norm)");
        Require(Threads is null or >= 1, nameof(Threads), Threads, "give at least 1 thread, or leave it unset for one per core");
        Require(Workers >= 0, nameof(Workers), Workers, "give 0 (decode on the training thread) or more loader threads");
        Require(Prefetch >= 1, nameof(Prefetch), Prefetch, "prepare at least 1 batch ahead");
        Require(CheckpointEvery >= 1, nameof(CheckpointEvery), CheckpointEvery, "give a number of epochs of at least 1");
        Require(EarlyStoppingPatience is null or >= 1, nameof(EarlyStoppingPatience), EarlyStoppingPatience, "give at least 1 epoch, or leave it unset to never stop early");
        Require(ProgressEvery >= 1, nameof(ProgressEvery), ProgressEvery, "give a number of iterations of at least 1");
        Require(EvaluationBatchSize >= 1, nameof(EvaluationBatchSize), EvaluationBatchSize, "give at least 1 image per validation batch");
    }
}

/// <summary>What a progress event reports.</summary>
public enum ProgressKind
{
    /// <summary>Some iterations done.</summary>
    Iteration,
    /// <summary>An epoch done, with validation figures when there is a validation set.</summary>
    Epoch,
    /// <summary>A note (fallbacks, resumption, checkpoints).</summary>
    Message,
    /// <summary>A problem worked around that the user should know of (a damaged cache computed again).</summary>
    Warning,
}

/// <summary>A progress event.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Epoch">Current epoch, 1-based.</param>
/// <param name="Epochs">Epochs in the run.</param>
/// <param name="Iteration">Iterations done.</param>
/// <param name="TotalIterations">Iterations in the run.</param>
/// <param name="Loss">Mean training loss since the start of the epoch.</param>
/// <param name="TrainError">Training top-1 error since the start of the epoch (on augmented images).</param>
/// <param name="ValidationError">Validation top-1 error (epoch events with a validation set).</param>
/// <param name="ValidationLoss">Validation loss (same).</param>
/// <param name="LearningRate">Current learning rate.</param>
/// <param name="ImagesPerSecond">Training throughput over this run so far.</param>
/// <param name="Eta">Estimated time to the end.</param>
/// <param name="Message">Text of a message event.</param>
public sealed record TrainingProgress(
    ProgressKind Kind, int Epoch, int Epochs, long Iteration, long TotalIterations, double Loss, double TrainError,
    double? ValidationError, double? ValidationLoss, double LearningRate, double ImagesPerSecond, TimeSpan Eta, string? Message = null)
{
    /// <summary>A message event (fallbacks, resumption, checkpoints, the start of a net).</summary>
    public static TrainingProgress Note(string message) =>
        new(ProgressKind.Message, 0, 0, 0, 0, 0, 0, null, null, 0, 0, TimeSpan.Zero, message);

    /// <summary>A warning event: a problem worked around (ML.NET logs it as a warning, the command line prints <c>warning:</c>).</summary>
    public static TrainingProgress Warning(string message) => Note(message) with { Kind = ProgressKind.Warning };

    /// <summary>The event of a finished epoch, from its figures.</summary>
    /// <param name="stats">The epoch's figures.</param>
    /// <param name="epochs">Epochs in the run.</param>
    /// <param name="totalIterations">Iterations in the run.</param>
    /// <param name="imagesPerSecond">Training throughput.</param>
    /// <param name="eta">Estimated time to the end.</param>
    public static TrainingProgress EpochDone(EpochStats stats, int epochs, long totalIterations, double imagesPerSecond, TimeSpan eta) =>
        new(ProgressKind.Epoch, stats.Epoch, epochs, stats.Iteration, totalIterations, stats.TrainLoss, stats.TrainError,
            stats.ValidationError, stats.ValidationLoss, stats.LearningRate, imagesPerSecond, eta);
}

/// <summary>Figures of one finished epoch.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Iteration">Iterations done at its end.</param>
/// <param name="TrainLoss">Mean training loss.</param>
/// <param name="TrainError">Training top-1 error.</param>
/// <param name="ValidationLoss">Validation loss, when validated.</param>
/// <param name="ValidationError">Validation top-1 error, when validated.</param>
/// <param name="LearningRate">Learning rate at its last iteration.</param>
/// <param name="Seconds">Wall time of the epoch, validation included.</param>
public sealed record EpochStats(int Epoch, long Iteration, double TrainLoss, double TrainError, double? ValidationLoss, double? ValidationError, double LearningRate, double Seconds);

/// <summary>Why a run ended.</summary>
public enum StopReason
{
    /// <summary>All epochs or iterations done.</summary>
    Completed,
    /// <summary>Validation error stopped improving.</summary>
    EarlyStopped,
    /// <summary>The cancellation token fired; a checkpoint was written when a folder was given.</summary>
    Cancelled,
}

/// <summary>The outcome of <see cref="ResNetTrainer.Train"/>.</summary>
/// <param name="Model">The trained model: the moving average of the weights when <see cref="TrainingOptions.EmaDecay"/> is set; the best-on-validation weights (of the average, when kept) with <see cref="TrainingOptions.KeepBest"/>.</param>
/// <param name="Card">What scoring needs besides the weights: spec, class names, input size, normalization.</param>
/// <param name="History">One entry per finished epoch (including those before a resume).</param>
/// <param name="BestEpoch">Epoch with the lowest validation error (0 without validation).</param>
/// <param name="Stop">Why training ended.</param>
/// <param name="CheckpointPath">The last checkpoint written, or null.</param>
/// <param name="Elapsed">Wall time of this call.</param>
public sealed record TrainingResult(Models.ResNetModel Model, ModelCard Card, IReadOnlyList<EpochStats> History, int BestEpoch, StopReason Stop, string? CheckpointPath, TimeSpan Elapsed);
