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
}
