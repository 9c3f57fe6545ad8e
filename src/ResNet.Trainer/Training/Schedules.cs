using System.Text.Json.Serialization;

namespace ResNet.Trainer.Training;

/// <summary>Where training is, for a learning-rate schedule.</summary>
/// <param name="Iteration">Iterations done so far (0-based index of the current one).</param>
/// <param name="TotalIterations">Iterations the run will do.</param>
/// <param name="Epoch">Epochs done, fractional.</param>
public readonly record struct ScheduleClock(long Iteration, long TotalIterations, double Epoch)
{
    /// <summary>Share of training done, 0..1.</summary>
    public double Progress => TotalIterations <= 0 ? 0 : Math.Clamp((double)Iteration / TotalIterations, 0, 1);
}

/// <summary>The learning rate over training, as a factor of the base rate.</summary>
[JsonDerivedType(typeof(ConstantSchedule), "constant")]
[JsonDerivedType(typeof(StepsAtIterations), "steps-at-iterations")]
[JsonDerivedType(typeof(StepsAtEpochs), "steps-at-epochs")]
[JsonDerivedType(typeof(StepsAtProgress), "steps-at-progress")]
[JsonDerivedType(typeof(DivideOnPlateau), "plateau")]
[JsonDerivedType(typeof(CosineSchedule), "cosine")]
[JsonDerivedType(typeof(OneCycleSchedule), "one-cycle")]
public abstract record LearningRateSchedule
{
    /// <summary>The factor applied to the base learning rate at <paramref name="clock"/>.</summary>
    public abstract double Factor(ScheduleClock clock);

    /// <summary>Parses a schedule as typed on the command line: <c>constant</c>, <c>cosine</c>, <c>one-cycle</c>, <c>plateau</c>, <c>steps:32000,48000</c> (iterations) or <c>epochs:30,60</c>.</summary>
    /// <exception cref="UnknownRecipeException">Not a schedule.</exception>
    public static LearningRateSchedule Parse(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        string[] parts = t.Split(':', 2);
        try
        {
            return parts[0] switch
            {
                "constant" => new ConstantSchedule(),
                "cosine" => new CosineSchedule(),
                "one-cycle" or "onecycle" => new OneCycleSchedule(),
                "plateau" => new DivideOnPlateau(),
                "steps" when parts.Length == 2 => new StepsAtIterations(parts[1].Split(',').Select(long.Parse).ToArray()),
                "epochs" when parts.Length == 2 => new StepsAtEpochs(parts[1].Split(',').Select(s => double.Parse(s, System.Globalization.CultureInfo.InvariantCulture)).ToArray()),
                _ => throw new FormatException(),
            };
        }
        catch (FormatException)
        {
            throw new UnknownRecipeException($"Unknown schedule '{text}'. Use constant, cosine, one-cycle, plateau, steps:32000,48000 (iterations) or epochs:30,60.");
        }
    }
}

/// <summary>The base rate throughout.</summary>
public sealed record ConstantSchedule : LearningRateSchedule
{
    /// <inheritdoc />
    public override double Factor(ScheduleClock clock) => 1;
}

/// <summary>Multiply by <paramref name="Gamma"/> at each milestone iteration (paper section 4.2: /10 at 32k and 48k).</summary>
/// <param name="Milestones">Iterations at which the rate drops.</param>
/// <param name="Gamma">Factor per drop.</param>
public sealed record StepsAtIterations(long[] Milestones, double Gamma = 0.1) : LearningRateSchedule
{
    /// <inheritdoc />
    public override double Factor(ScheduleClock clock) => Math.Pow(Gamma, Milestones.Count(m => clock.Iteration >= m));
}

/// <summary>Multiply by <paramref name="Gamma"/> at each share of training (0.5 and 0.75 are the paper's 32k and 48k of 64k iterations).</summary>
/// <param name="At">Shares of training (0..1) at which the rate drops.</param>
/// <param name="Gamma">Factor per drop.</param>
public sealed record StepsAtProgress(double[] At, double Gamma = 0.1) : LearningRateSchedule
{
    /// <inheritdoc />
    public override double Factor(ScheduleClock clock) => Math.Pow(Gamma, At.Count(a => clock.Iteration >= Math.Round(a * clock.TotalIterations)));
}

/// <summary>Multiply by <paramref name="Gamma"/> at each milestone epoch.</summary>
/// <param name="Epochs">Epochs (fractional allowed) at which the rate drops.</param>
/// <param name="Gamma">Factor per drop.</param>
public sealed record StepsAtEpochs(double[] Epochs, double Gamma = 0.1) : LearningRateSchedule
{
    /// <inheritdoc />
    public override double Factor(ScheduleClock clock) => Math.Pow(Gamma, Epochs.Count(e => clock.Epoch >= e - 1e-9));
}

/// <summary>
/// Divide by 10 when the validation error stops improving (paper section 3.4, ImageNet). The trainer keeps the
/// state: after <paramref name="Patience"/> epochs without an improvement of <paramref name="MinImprovement"/>, the factor is multiplied by <paramref name="Gamma"/>.
/// </summary>
/// <param name="Patience">Epochs without improvement before a drop.</param>
/// <param name="Gamma">Factor per drop.</param>
/// <param name="MinImprovement">Smallest decrease of the validation error that counts as an improvement.</param>
public sealed record DivideOnPlateau(int Patience = 3, double Gamma = 0.1, double MinImprovement = 1e-3) : LearningRateSchedule
{
    /// <inheritdoc />
    public override double Factor(ScheduleClock clock) => 1; // the trainer multiplies in the plateau factor
}

/// <summary>Half a cosine from 1 down to <paramref name="FinalFactor"/> over the run (Loshchilov and Hutter 2017).</summary>
/// <param name="FinalFactor">Factor at the last iteration.</param>
public sealed record CosineSchedule(double FinalFactor = 0) : LearningRateSchedule
{
    /// <inheritdoc />
    public override double Factor(ScheduleClock clock) => FinalFactor + (1 - FinalFactor) * 0.5 * (1 + Math.Cos(Math.PI * clock.Progress));
}

/// <summary>One cycle (Smith 2018): linear rise from <paramref name="StartFactor"/> to 1 over <paramref name="PeakAt"/> of training, then cosine down to <paramref name="FinalFactor"/>.</summary>
/// <param name="PeakAt">Share of training at which the peak is reached.</param>
/// <param name="StartFactor">Factor at the first iteration.</param>
/// <param name="FinalFactor">Factor at the last iteration.</param>
public sealed record OneCycleSchedule(double PeakAt = 0.25, double StartFactor = 0.04, double FinalFactor = 1e-3) : LearningRateSchedule
{
    /// <inheritdoc />
    public override double Factor(ScheduleClock clock)
    {
        double p = clock.Progress;
        if (p < PeakAt) return StartFactor + (1 - StartFactor) * p / PeakAt;
        double q = (p - PeakAt) / (1 - PeakAt);
        return FinalFactor + (1 - FinalFactor) * 0.5 * (1 + Math.Cos(Math.PI * q));
    }
}

/// <summary>A warm-up phase at the start of training.</summary>
[JsonDerivedType(typeof(LinearWarmup), "linear")]
[JsonDerivedType(typeof(WarmupUntilTrainError), "until-train-error")]
public abstract record Warmup;

/// <summary>The factor rises linearly from <paramref name="StartFactor"/> to 1 over the first <paramref name="Iterations"/> iterations.</summary>
/// <param name="Iterations">Length of the warm-up.</param>
/// <param name="StartFactor">Factor at iteration 0.</param>
public sealed record LinearWarmup(long Iterations, double StartFactor = 0.1) : Warmup
{
    /// <summary>The warm-up factor at <paramref name="iteration"/>.</summary>
    public double Factor(long iteration) =>
        iteration >= Iterations ? 1 : StartFactor + (1 - StartFactor) * iteration / Math.Max(1, Iterations);
}

/// <summary>
/// Paper section 4.2 (ResNet-110): train at <paramref name="LearningRate"/> until the training error falls below
/// <paramref name="ErrorBelow"/> (about 400 iterations), then go back to the schedule.
/// </summary>
/// <param name="LearningRate">The warm-up rate (0.01 in the paper).</param>
/// <param name="ErrorBelow">Training error (averaged over the last <paramref name="Window"/> iterations) that ends the warm-up (0.8 in the paper).</param>
/// <param name="Window">Iterations averaged.</param>
/// <param name="MaxIterations">Upper bound on the warm-up's length.</param>
public sealed record WarmupUntilTrainError(double LearningRate = 0.01, double ErrorBelow = 0.8, int Window = 10, long MaxIterations = 2000) : Warmup;
