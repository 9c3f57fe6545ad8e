using ResNet.Trainer.Models;
using ResNet.Trainer.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNet.Trainer.Training;

/// <summary>
/// An exponential moving average of a model's weights (<see cref="TrainingOptions.EmaDecay"/>), kept as a second model of the
/// same architecture so that validation and saving take it as they take the live one.
/// </summary>
/// <remarks>
/// Batch-norm running statistics are averaged with the same decay as the weights rather than copied from the live model: the
/// averaged weights mix the last ~1/(1 - d) steps, and the statistics of their activations are closer to the average of those
/// steps' statistics than to the live model's last ~10 batches (BN momentum 0.1). timm's ModelEmaV2 does the same. Integer
/// buffers (<c>num_batches_tracked</c>) are copied.
/// </remarks>
internal sealed class WeightAverage : IDisposable
{
    private readonly (Tensor Live, Tensor Average, bool Floating)[] _pairs;

    /// <summary>Starts the average at <paramref name="live"/>'s current weights.</summary>
    public WeightAverage(ResNetModel live, double decay, Device device)
    {
        Decay = decay;
        Model = new ResNetModel(live.Spec, seed: 0); // seeded: the global generator is left as it was
        Model.to(live.parameters().First().dtype).to(device);
        foreach (var p in Model.parameters()) p.requires_grad = false;
        var averaged = Model.state_dict();
        _pairs = [.. live.state_dict().Select(kv => (kv.Value, averaged[kv.Key], kv.Value.is_floating_point()))];
        Reset();
    }

    /// <summary>Starts the average over at the live weights.</summary>
    public void Reset()
    {
        using var _ = no_grad();
        foreach (var (live, average, _) in _pairs) average.copy_(live);
    }

    /// <summary>The averaged model (evaluate, copy or save it; never train it).</summary>
    public ResNetModel Model { get; }

    /// <summary>The decay at full strength.</summary>
    public double Decay { get; }

    /// <summary>The decay of the update after <paramref name="updates"/> earlier ones: <c>min(d, (1 + t) / (10 + t))</c> (TensorFlow's and PyTorch users' warm-up).</summary>
    public static double DecayAt(double decay, long updates) => Math.Min(decay, (1.0 + updates) / (10.0 + updates));

    /// <summary><c>ema = d * ema + (1 - d) * live</c> for every floating tensor, in place; integer buffers are copied.</summary>
    /// <param name="updates">Updates done before this one (the warm-up's t).</param>
    public void Update(long updates)
    {
        double d = DecayAt(Decay, updates);
        using var _ = no_grad();
        using Scalar keep = d.ToScalar(), take = (1 - d).ToScalar(); // held through the calls (HeldScalars)
        foreach (var (live, average, floating) in _pairs)
        {
            if (floating) average.mul_(keep).add_(live, take);
            else average.copy_(live);
        }
    }

    /// <summary>Writes the averaged weights into <paramref name="target"/> (the model the run returns).</summary>
    public void CopyTo(ResNetModel target)
    {
        using var _ = no_grad();
        var into = target.state_dict();
        foreach (var (key, t) in Model.state_dict()) into[key].copy_(t);
    }

    public void Dispose() => Model.Dispose();
}
