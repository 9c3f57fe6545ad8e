using ResNet.Trainer.Data;
using ResNet.Trainer.Models;

namespace ResNet.Trainer.Training;

/// <summary>Named training recipes: the paper's two, a fast one for CPUs, and fine-tuning pretrained weights.</summary>
public static class Recipes
{
    /// <summary>The recipe names <see cref="Get"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["paper-cifar", "paper-imagenet", "fast-cpu", "fine-tune"];

    /// <summary>The recipe used when none is named: <c>fine-tune</c> when training starts from pretrained weights, else <c>fast-cpu</c>.</summary>
    public static string DefaultFor(bool pretrained) => pretrained ? "fine-tune" : "fast-cpu";

    /// <summary>
    /// Paper section 4.2: batch 128, lr 0.1, momentum 0.9, weight decay 1e-4, /10 at 32k and 48k iterations,
    /// stop at 64k, 45k/5k split, pad-4 crop and flip, per-pixel mean. Networks of 110 layers or more warm up
    /// at 0.01 until the training error is below 80%.
    /// </summary>
    public static TrainingOptions PaperCifar(ResNetSpec? spec = null) => new()
    {
        BatchSize = 128,
        LearningRate = 0.1,
        Momentum = 0.9,
        WeightDecay = 1e-4,
        Schedule = new StepsAtIterations([32_000, 48_000]),
        Length = TrainingLength.Iterations(64_000),
        ValidationFraction = 0.1,
        Augmentation = Augmentation.Cifar,
        Normalization = NormalizationKind.PerPixel,
        Warmup = spec is { Depth: >= 110 } ? new WarmupUntilTrainError() : null,
    };

    /// <summary>
    /// Paper section 3.4: batch 256, lr 0.1 divided by 10 on plateau, up to 600k iterations, momentum 0.9,
    /// weight decay 1e-4, scale augmentation [256, 480] + 224 crop + flip + colour, per-pixel mean, no dropout.
    /// </summary>
    public static TrainingOptions PaperImageNet() => new()
    {
        BatchSize = 256,
        LearningRate = 0.1,
        Momentum = 0.9,
        WeightDecay = 1e-4,
        Schedule = new DivideOnPlateau(),
        Length = TrainingLength.Iterations(600_000),
        ValidationFraction = 0.02,
        Augmentation = Augmentation.ImageNet,
        ImageSize = 224,
        Normalization = NormalizationKind.PerPixel,
    };

    /// <summary>
    /// Ours, for small images on a few CPU cores: one-cycle schedule (warm rise then cosine), Nesterov,
    /// label smoothing 0.1, weight decay 5e-4, pad-2 crop and flip, per-channel normalization, 15 epochs.
    /// Short schedules need the higher rate early and the long annealing tail more than the paper's steps do.
    /// </summary>
    public static TrainingOptions FastCpu() => new()
    {
        Length = TrainingLength.Epochs(15),
        BatchSize = 128,
        LearningRate = 0.2,
        Momentum = 0.9,
        Nesterov = true,
        WeightDecay = 5e-4,
        LabelSmoothing = 0.1,
        Schedule = new OneCycleSchedule(PeakAt: 0.2),
        Augmentation = new CifarAugmentation(Padding: 2),
        Normalization = NormalizationKind.PerChannel,
    };

    /// <summary>
    /// Fine-tuning pretrained weights as users of torchvision do it: the new head at lr 0.01 and the trunk at a tenth of that
    /// (<see cref="TrainingOptions.TrunkLearningRateFactor"/> 0.1), a short cosine schedule (10 epochs), batch 32, momentum 0.9,
    /// weight decay 1e-4, torchvision's <c>RandomResizedCrop</c> + flip on the original images, and the weights' own fixed
    /// normalization (given by the pretrained network).
    /// </summary>
    public static TrainingOptions FineTune() => new()
    {
        Length = TrainingLength.Epochs(10),
        BatchSize = 32,
        LearningRate = 0.01,
        TrunkLearningRateFactor = 0.1,
        Momentum = 0.9,
        WeightDecay = 1e-4,
        Schedule = new CosineSchedule(),
        Augmentation = Augmentation.RandomResizedCrop,
        Normalization = NormalizationKind.PerChannel,
        ValidationFraction = 0.1,
    };

    /// <summary>A recipe by name (<c>paper-cifar</c>, <c>paper-imagenet</c>, <c>fast-cpu</c>, <c>fine-tune</c>).</summary>
    /// <exception cref="UnknownRecipeException">Another name.</exception>
    public static TrainingOptions Get(string name, ResNetSpec? spec = null) => name.Trim().ToLowerInvariant() switch
    {
        "paper-cifar" => PaperCifar(spec),
        "paper-imagenet" => PaperImageNet(),
        "fast-cpu" or "fast" => FastCpu(),
        "fine-tune" or "finetune" => FineTune(),
        _ => throw new UnknownRecipeException($"Unknown recipe '{name}'. Use one of: {string.Join(", ", Names)}."),
    };
}
