using ResNet.Trainer.Native;
using ResNet.Trainer.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNet.Trainer.Tests.Native;

/// <summary>
/// The numbers the training loop hands to libtorch survive garbage collections (<see cref="HeldScalars"/>): a thread that
/// collects generation 0 and runs the finalizers without pause, as the data loader's allocations do now and then, may not
/// make a step fail or change its result. Before the numbers were held (TorchSharp's implicit conversions), the test below
/// failed in 2 runs of 2 with "Expected false to be true" from a freed Scalar; the resumed training of SignalTests failed
/// about once in ten with "Unknown scalar type". The same holding serves the moving average, the residual sums and flip TTA.
/// </summary>
public class HeldScalarsTests
{
    [Fact]
    public void SgdSteps_UnderConstantCollections_NeverFail_AndMatchAQuietRunExactly()
    {
        // 3 numbers handed over per parameter and step (momentum, the plain sum, the rate): 150,000 calls.
        var quiet = Run(collect: false, parameters: 500, steps: 100);
        var collected = Run(collect: true, parameters: 500, steps: 100);
        Assert.Equal(500, quiet.Length);
        Assert.Equal(quiet, collected);
        // p = p0 - lr * g * sum_{k=1..100} sum_{j<k} 0.9^j: the closed form, so that both runs did the steps at all.
        double moved = 0, v = 0;
        for (int k = 0; k < 100; k++) { v = 0.9 * v + 1; moved += v; }
        for (int i = 0; i < quiet.Length; i++) Assert.Equal(1.0 - 1e-3 * (1 + i % 7) * 0.01 * moved, quiet[i], 4e-5);
    }

    /// <summary>Momentum SGD on one-number parameters with fixed gradients; the parameters after the steps.</summary>
    private static float[] Run(bool collect, int parameters, int steps)
    {
        var ps = Enumerable.Range(0, parameters).Select(_ => new TorchSharp.Modules.Parameter(ones(1))).ToArray();
        for (int i = 0; i < ps.Length; i++)
            using (var g = full(1, 1e-3 * (1 + i % 7))) ps[i].grad = g;
        using var sgd = new Sgd(ps, momentum: 0.9, weightDecay: 0, nesterov: false); // leaves the gradients as they are
        WhileCollecting(collect, () => { for (int s = 0; s < steps; s++) sgd.Step(0.01); });
        var result = ps.Select(p => p.data<float>()[0]).ToArray();
        foreach (var p in ps) p.Dispose();
        return result;
    }

    private static void WhileCollecting(bool collect, Action work)
    {
        bool stop = false;
        var collector = new Thread(() => { while (!Volatile.Read(ref stop)) { GC.Collect(0); GC.WaitForPendingFinalizers(); } }) { IsBackground = true };
        if (collect) collector.Start();
        try { work(); }
        finally
        {
            Volatile.Write(ref stop, true);
            if (collect) collector.Join();
        }
    }
}
