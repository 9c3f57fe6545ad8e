using TorchSharp;
using static TorchSharp.torch;

namespace ResNet.Trainer.Training;

/// <summary>One SGD iteration (paper section 3.4), shared by the full training loop and the head-only one.</summary>
internal static class TrainingStep
{
    /// <summary>
    /// Forward, cross-entropy, backward, update at <paramref name="learningRate"/>. The caller holds the dispose scope.
    /// A loss that is not finite returns before the update, so the weights stay those of the last good step.
    /// </summary>
    /// <returns>The batch's mean loss and its count of wrong top-1 predictions.</returns>
    public static (double Loss, long Wrong) Run(nn.Module<Tensor, Tensor> network, Sgd sgd, Tensor x, Tensor y, double learningRate, double labelSmoothing)
    {
        var logits = network.forward(x);
        var objective = nn.functional.cross_entropy(logits, y, label_smoothing: labelSmoothing);
        double loss = objective.ToDouble(); // in the objective's own dtype: float64 keeps every digit (the PyTorch parity test)
        if (!double.IsFinite(loss)) return (loss, 0);
        sgd.ZeroGrad();
        objective.backward();
        sgd.Step(learningRate);
        return (loss, logits.argmax(1).ne(y).sum().item<long>());
    }
}
