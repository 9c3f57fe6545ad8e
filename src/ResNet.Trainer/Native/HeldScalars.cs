using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ResNet.Trainer.Native;

/// <summary>
/// Numbers handed to libtorch, held for as long as the call that reads them.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 turns a number given to a tensor operation (<c>t.mul_(0.9)</c>, <c>t.add_(u, alpha: a)</c>, and also
/// <c>t.add_(u)</c> and <c>t + u</c>, whose alpha is 1) into a <see cref="Scalar"/> that only its finalizer frees, and passes
/// just the native pointer on. A garbage collection during the call (the data loader's threads allocate all the time) can
/// finalize it while libtorch reads it: the call then fails with "Unknown scalar type", or reads a freed value. Code on the
/// training and scoring paths therefore passes a Scalar it holds: <see cref="One"/>, or one made with
/// <c>using var s = value.ToScalar()</c>, which stays reachable until it is disposed after the call.
/// </remarks>
internal static class HeldScalars
{
    /// <summary>1: the alpha of a plain sum. Lives as long as the process.</summary>
    public static readonly Scalar One = 1.ToScalar();

    /// <summary>
    /// What <see cref="BatchNorm2d"/>'s forward pass does, with the batch count advanced by <see cref="One"/>: TorchSharp's own
    /// forward advances it with <c>num_batches_tracked.add_(1)</c>, whose 1 nothing holds (a training run died of it with
    /// "For integral input tensors, argument alpha must not be a floating point number"). Every batch norm of
    /// <see cref="Models.ResNetModel"/> runs through here.
    /// </summary>
    public static Tensor Normalize(BatchNorm2d bn, Tensor x)
    {
        double factor = bn.momentum ?? 0.0;
        if (bn.training && bn.track_running_stats && bn.num_batches_tracked is Tensor count)
        {
            count.add_(One, One);
            if (bn.momentum is null) factor = 1.0 / count.item<long>(); // the cumulative average, as PyTorch's momentum=None
        }
        bool running = !bn.training || bn.track_running_stats;
        bool batchStatistics = bn.training || (bn.running_mean is null && bn.running_var is null);
        return nn.functional.batch_norm(x, running ? bn.running_mean : null, running ? bn.running_var : null, bn.weight, bn.bias, batchStatistics, factor, bn.eps);
    }
}
