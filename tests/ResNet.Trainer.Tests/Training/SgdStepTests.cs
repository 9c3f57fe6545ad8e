using ResNet.Trainer.Models;
using static TorchSharp.torch;

namespace ResNet.Trainer.Tests.Training;

public class SgdStepTests
{
    private static (Tensor X, Tensor Y) FixedBatch(int n, int classes, int channels, int size, int seed)
    {
        var g = new TorchSharp.torch.Generator((ulong)seed);
        var x = randn([n, channels, size, size], generator: g);
        var y = arange(n, dtype: ScalarType.Int64) % classes;
        return (x, y);
    }

    [Fact]
    public void OneSgdStep_OnAFixedBatch_LowersTheLoss()
    {
        using var model = new Trainer.Models.ResNetModel(ResNetSpec.ResNet20() with { InputChannels = 1 }, seed: 1);
        var (x, y) = FixedBatch(16, 10, 1, 32, 2);
        using var opt = optim.SGD(model.parameters(), 0.05, momentum: 0.9, weight_decay: 1e-4);
        model.train();
        float before;
        using (var loss = nn.functional.cross_entropy(model.forward(x), y))
        {
            before = loss.item<float>();
            opt.zero_grad();
            loss.backward();
            opt.step();
        }
        float after;
        using (var loss = nn.functional.cross_entropy(model.forward(x), y))
            after = loss.item<float>();
        Assert.True(after < before, $"loss went from {before} to {after}");
    }

    [Theory]
    [InlineData("resnet20")]
    [InlineData("plain20")]
    public void TinyBatch_IsMemorisedTo100PercentTrainAccuracy(string arch)
    {
        using var model = new Trainer.Models.ResNetModel(ResNetSpec.Parse(arch) with { InputChannels = 3, NumClasses = 4 }, seed: 3);
        var (x, y) = FixedBatch(8, 4, 3, 16, 4);
        using var opt = optim.SGD(model.parameters(), 0.05, momentum: 0.9);
        model.train();
        for (int step = 0; step < 60; step++)
        {
            using var scope = NewDisposeScope();
            var loss = nn.functional.cross_entropy(model.forward(x), y);
            opt.zero_grad();
            loss.backward();
            opt.step();
        }
        model.eval();
        using var _ = no_grad();
        using var predicted = model.forward(x).argmax(1);
        long correct = predicted.eq(y).sum().item<long>();
        Assert.Equal(8, correct);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void DecayNormAndBias_ChoosesWhetherOneDimensionalParametersAreDecayed(bool decayNormAndBias)
    {
        using var model = new Trainer.Models.ResNetModel(ResNetSpec.Parse("resnet8") with { InputChannels = 1, NumClasses = 3 }, seed: 2);
        // Batch-norm scales start at 1 and shifts at 0; move them so that decay would show on both.
        using (no_grad())
            foreach (var p in model.parameters().Where(p => p.dim() == 1)) p.add_(rand(p.shape, generator: manual_seed(7)));
        using var sgd = Trainer.Training.Sgd.ForModel(model, momentum: 0, weightDecay: 0.5, nesterov: false, decayNormAndBias: decayNormAndBias);
        var (x, y) = FixedBatch(6, 3, 1, 16, 5);
        model.train();
        using var loss = nn.functional.cross_entropy(model.forward(x), y);
        loss.backward();
        var ps = sgd.Parameters;
        var before = ps.Select(p => p.detach().clone()).ToArray();
        var grads = ps.Select(p => p.grad!.clone()).ToArray();
        sgd.Step(0.1);
        int decayed = 0, oneDimensional = 0;
        for (int i = 0; i < ps.Count; i++)
        {
            bool decays = decayNormAndBias || ps[i].dim() > 1;
            using var expected = before[i] - 0.1 * (decays ? grads[i] + 0.5 * before[i] : grads[i]);
            Assert.True(ps[i].allclose(expected, rtol: 1e-5, atol: 1e-7), $"parameter {i} ({ps[i].dim()}-d) took the wrong step");
            if (decays) decayed++;
            if (ps[i].dim() == 1) oneDimensional++;
        }
        // ResNet-8 (option A shortcuts): 7 convolutions and the classifier's weight are matrices; 7 batch norms (2 each) and the classifier's bias are 1-d.
        Assert.Equal(15, oneDimensional);
        Assert.Equal(decayNormAndBias ? ps.Count : ps.Count - 15, decayed);
    }
}
