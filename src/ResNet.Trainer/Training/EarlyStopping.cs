namespace ResNet.Trainer.Training;

/// <summary>What early stopping and "keep best" watch on the validation set (ML.NET's EarlyStoppingMetric).</summary>
public enum EarlyStoppingMetric
{
    /// <summary>Validation top-1 error (lower is better). The default.</summary>
    ValidationError,
    /// <summary>Validation cross-entropy loss (lower is better).</summary>
    ValidationLoss,
}

/// <summary>The one rule for "did this epoch improve on the best so far": early stopping and keep-best both use it.</summary>
public static class EarlyStopping
{
    /// <summary>The watched figure of a validation report.</summary>
    /// <param name="report">The epoch's validation report.</param>
    /// <param name="o">The run's options (<see cref="TrainingOptions.EarlyStoppingMetric"/>).</param>
    /// <returns>The validation error or loss.</returns>
    public static double Metric(EvaluationReport report, TrainingOptions o) =>
        o.EarlyStoppingMetric == EarlyStoppingMetric.ValidationLoss ? report.Loss : report.Top1Error;

    /// <summary>True when the report's metric is lower than <paramref name="best"/> by more than <see cref="TrainingOptions.EarlyStoppingMinDelta"/>.</summary>
    /// <param name="report">The epoch's validation report.</param>
    /// <param name="best">The best value so far (+infinity before the first).</param>
    /// <param name="o">The run's options.</param>
    /// <returns>Whether the epoch counts as an improvement.</returns>
    public static bool Improves(EvaluationReport report, double best, TrainingOptions o) =>
        double.IsPositiveInfinity(best) || Metric(report, o) < best - o.EarlyStoppingMinDelta;
}
