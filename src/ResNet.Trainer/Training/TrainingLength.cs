using System.Globalization;

namespace ResNet.Trainer.Training;

/// <summary>What <see cref="TrainingLength.Count"/> counts.</summary>
public enum TrainingUnit
{
    /// <summary>Passes over the training set.</summary>
    Epochs,
    /// <summary>SGD steps (mini-batches), as the paper counts its 64k on CIFAR.</summary>
    Iterations,
}

/// <summary>
/// How long a run trains: a number of epochs or a number of iterations, never both. One value, so that overriding
/// a recipe's length (epochs over the paper's iterations, or the reverse) replaces it whole.
/// </summary>
public sealed record TrainingLength
{
    private TrainingLength(long count, TrainingUnit unit) => (Count, Unit) = (count, unit);

    /// <summary>How many epochs or iterations.</summary>
    public long Count { get; }

    /// <summary>Whether <see cref="Count"/> counts epochs or iterations.</summary>
    public TrainingUnit Unit { get; }

    /// <summary>Train for <paramref name="count"/> passes over the training set.</summary>
    public static TrainingLength Epochs(int count) => new(count, TrainingUnit.Epochs);

    /// <summary>Train for <paramref name="count"/> SGD steps (the paper: 64,000 on CIFAR, 600,000 on ImageNet).</summary>
    public static TrainingLength Iterations(long count) => new(count, TrainingUnit.Iterations);

    /// <summary>The run's iterations when an epoch has <paramref name="batchesPerEpoch"/> mini-batches.</summary>
    public long TotalIterations(int batchesPerEpoch) => Unit == TrainingUnit.Epochs ? Count * batchesPerEpoch : Count;

    /// <summary><c>15 epochs</c> or <c>64000 iterations</c>.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{Count} {(Unit == TrainingUnit.Epochs ? "epoch" : "iteration")}{(Count == 1 ? "" : "s")}");
}
