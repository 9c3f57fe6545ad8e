using ResNet.Trainer.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNet.Trainer.Training;

/// <summary>
/// Stochastic gradient descent with momentum (classical or Nesterov) and L2 weight decay, written out so the
/// update reads as the math and its state (one momentum buffer per parameter) is easy to checkpoint.
/// Same update as torch.optim.SGD.
/// </summary>
internal sealed class Sgd : IDisposable
{
    private readonly TorchSharp.Modules.Parameter[] _parameters;
    private readonly double[] _rateFactors;
    private readonly bool[] _decayed;
    private readonly Tensor?[] _momentum;
    private readonly double _mu, _weightDecay;
    private readonly bool _nesterov;

    public Sgd(IEnumerable<TorchSharp.Modules.Parameter> parameters, double momentum, double weightDecay, bool nesterov)
        : this(parameters.Select(p => (p, 1.0, true)), momentum, weightDecay, nesterov) { }

    /// <summary>
    /// Parameter groups as torch.optim.SGD takes them: each parameter's rate is the step's rate times its factor, and
    /// <paramref name="weightDecay"/> applies to the parameters marked <c>Decayed</c> (the others take 0).
    /// </summary>
    public Sgd(IEnumerable<(TorchSharp.Modules.Parameter Parameter, double RateFactor, bool Decayed)> groups, double momentum, double weightDecay, bool nesterov)
    {
        var trainable = groups.Where(g => g.Parameter.requires_grad).ToArray();
        _parameters = trainable.Select(g => g.Parameter).ToArray();
        _rateFactors = trainable.Select(g => g.RateFactor).ToArray();
        _decayed = trainable.Select(g => g.Decayed).ToArray();
        _momentum = new Tensor?[_parameters.Length];
        _mu = momentum; _weightDecay = weightDecay; _nesterov = nesterov;
    }

    /// <summary>
    /// The trunk at <paramref name="trunkFactor"/> times the rate and the classifier (<c>fc</c>) at the rate: fine-tuning's
    /// two groups. A factor of 1 is plain SGD over every parameter. With <paramref name="decayNormAndBias"/> false, weight
    /// decay skips the one-dimensional parameters (batch-norm scales and shifts, the classifier's bias), as
    /// <see cref="TrainingOptions.DecayNormAndBias"/> describes.
    /// </summary>
    public static Sgd ForModel(Models.ResNetModel model, double momentum, double weightDecay, bool nesterov, double trunkFactor = 1.0, bool decayNormAndBias = true)
    {
        var head = model.Classifier.parameters().ToHashSet(ReferenceEqualityComparer.Instance);
        return new Sgd(model.parameters().Select(p => (p, head.Contains(p) ? 1.0 : trunkFactor, decayNormAndBias || p.dim() > 1)), momentum, weightDecay, nesterov);
    }

    /// <summary>The rate each parameter took in the last <see cref="Step"/> (0 before the first), in parameter order.</summary>
    public IReadOnlyList<double> LastRates => _lastRates;
    private double[] _lastRates = [];

    /// <summary>p -= lr * f * d (f: the parameter's rate factor), where g = grad + wd * p (grad alone for a parameter not decayed); v = mu * v + g; d = v (or g + mu * v with Nesterov).</summary>
    /// <remarks>
    /// In place, as PyTorch's foreach SGD: g is written into the gradient (zeroed before the next backward pass) and the
    /// Nesterov direction into g, so a step makes no tensor beyond the first step's momentum buffers.
    /// </remarks>
    public void Step(double lr)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope(); // the gradients' handles
        using Scalar weightDecay = _weightDecay.ToScalar(), mu = _mu.ToScalar(); // held through the calls (HeldScalars)
        _lastRates = _rateFactors.Select(f => lr * f).ToArray();
        for (int i = 0; i < _parameters.Length; i++)
        {
            var p = _parameters[i];
            var g = p.grad;
            if (g is null) continue;
            if (_weightDecay != 0 && _decayed[i]) g.add_(p, weightDecay);
            var d = g;
            if (_mu != 0)
            {
                if (_momentum[i] is not Tensor v) { v = _momentum[i] = g.clone().DetachFromDisposeScope(); }
                else v.mul_(mu).add_(g, HeldScalars.One);
                d = _nesterov ? g.add_(v, mu) : v;
            }
            using var step = (-_lastRates[i]).ToScalar();
            p.add_(d, step);
        }
    }

    public void ZeroGrad()
    {
        foreach (var p in _parameters)
        {
            var grad = p.grad;
            if (grad is not null) { grad.zero_(); }
        }
    }

    /// <summary>The trainable parameters, in the order of <see cref="LastRates"/> and <see cref="State"/>.</summary>
    public IReadOnlyList<TorchSharp.Modules.Parameter> Parameters => _parameters;

    /// <summary>The momentum buffers (null before the first step), in parameter order.</summary>
    public IReadOnlyList<Tensor?> State => _momentum;

    public void LoadState(IReadOnlyList<Tensor?> state)
    {
        if (state.Count != _momentum.Length)
            throw new InvalidDataException($"The checkpoint has {state.Count} momentum buffers; the model has {_momentum.Length} parameters.");
        for (int i = 0; i < state.Count; i++)
        {
            _momentum[i]?.Dispose();
            _momentum[i] = state[i]?.to(_parameters[i].device).DetachFromDisposeScope();
        }
    }

    public void Dispose()
    {
        foreach (var t in _momentum) t?.Dispose();
    }
}
