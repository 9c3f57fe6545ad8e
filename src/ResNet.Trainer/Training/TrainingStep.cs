using TorchSharp;
using static TorchSharp.torch;

namespace ResNet.Trainer.Training;

/// <summary>
/// One SGD iteration on one batch, as the trainer runs it: forward, cross-entropy (optionally label-smoothed),
/// backward, update. Its own entry point so the PyTorch parity test drives the trainer's real step.
/// Works in the model's dtype (float32 in training; float64 in the parity test).
/// </summary>
internal static class TrainingStep
{
    /// <summary>The batch's mean loss (computed before the update) and how many images the logits got wrong.</summary>
    internal readonly record struct Outcome(double Loss, long Errors);

    /// <summary>
    /// Runs the step. When the loss is NaN or infinite, nothing is updated and the outcome carries that loss,
    /// so the caller can stop with the weights as they were.
    /// </summary>
    internal static Outcome Run(nn.Module<Tensor, Tensor> model, Sgd sgd, Tensor input, Tensor target, double learningRate, double labelSmoothing)
    {
        using var scope = NewDisposeScope();
        var logits = model.forward(input);
        var objective = nn.functional.cross_entropy(logits, target, label_smoothing: labelSmoothing);
        double loss = objective.ToDouble(); // in the objective's own dtype: float64 keeps every digit
        if (!double.IsFinite(loss)) return new Outcome(loss, 0);
        sgd.ZeroGrad();
        objective.backward();
        sgd.Step(learningRate);
        long errors = logits.argmax(1).ne(target).sum().item<long>();
        return new Outcome(loss, errors);
    }
}
