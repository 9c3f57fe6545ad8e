using ResNet.Trainer.Models;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ResNet.Trainer.Tests.Peers;

/// <summary>Same weights, same outputs as torchvision 0.14 (Debian's python3-torchvision), computed at test time.</summary>
public class TorchvisionParityTests(ITestOutputHelper log)
{
    private const double Tolerance = 1e-4;

    [Theory]
    [InlineData("resnet18")]
    [InlineData("resnet50")] // v1.5 stride placement, as torchvision
    public void SameWeights_GiveTorchvisionsLogits_InEvalAndTrainMode(string arch)
    {
        string dir = PythonPeer.TempDir();
        try
        {
            PythonPeer.Run(PythonPeer.Script("torchvision_reference.py"), arch, dir, "7", "224", "2");
            using var model = new Trainer.Models.ResNetModel(ResNetSpec.Parse(arch));
            ResNetWeights.Load(model, Path.Combine(dir, "weights.pth"));
            var expected = ResNetWeights.ReadStateDict(Path.Combine(dir, "outputs.pth"));
            using var _ = no_grad();
            var x = expected["input"];

            model.eval();
            AssertClose(expected["eval"], model.forward(x), "eval");
            model.train();
            AssertClose(expected["train"], model.forward(x), "train-mode forward (batch statistics)");
            model.eval();
            AssertClose(expected["eval_after_train"], model.forward(x), "eval after the running statistics were updated");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private void AssertClose(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        double maxDiff = (expected - actual).abs().max().item<float>();
        double scale = expected.abs().max().item<float>();
        log.WriteLine($"{what}: max abs difference {maxDiff:E3}, largest logit {scale:F3}");
        Assert.True(maxDiff <= Tolerance, $"{what}: max abs difference {maxDiff:E3} > {Tolerance:E0} (largest logit {scale:F3})");
    }
}
