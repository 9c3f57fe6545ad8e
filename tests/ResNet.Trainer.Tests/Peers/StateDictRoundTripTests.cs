using System.Globalization;
using ResNet.Trainer.Models;
using static TorchSharp.torch;

namespace ResNet.Trainer.Tests.Peers;

/// <summary>
/// The README's route to multi-machine training: our weights out as a torchvision state_dict, a PyTorch training
/// step (what torchrun/DDP would run), and the result back through ResNetWeights.Load.
/// </summary>
public sealed class StateDictRoundTripTests
{
    [Fact]
    public void StateDict_TrainedInPyTorch_LoadsBackWithTheSameOutputs()
    {
        string dir = PythonPeer.TempDir();
        string ours = Path.Combine(dir, "ours.pth"), trained = Path.Combine(dir, "trained.pth"), x = Path.Combine(dir, "x.pth");
        using var model = new ResNetModel(ResNetSpec.Parse("resnet18") with { NumClasses = 10 }, seed: 3);
        ResNetWeights.Save(model, ours);
        string script = Path.Combine(dir, "step.py");
        // Loads into torchvision's own ResNet-18 (strict keys), takes one SGD step, saves, prints the output sum in eval mode.
        File.WriteAllText(script, """
            import sys, torch, torchvision
            torch.manual_seed(0)
            m = torchvision.models.resnet18(num_classes=10)
            m.load_state_dict(torch.load(sys.argv[1]), strict=True)
            opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
            m.train()
            loss = torch.nn.functional.cross_entropy(m(torch.randn(4, 3, 64, 64)), torch.tensor([0, 1, 2, 3]))
            loss.backward(); opt.step()
            torch.save(m.state_dict(), sys.argv[2])
            m.eval()
            x = torch.randn(2, 3, 64, 64)
            torch.save({"x": x}, sys.argv[3])
            with torch.no_grad(): print(repr(m(x).double().sum().item()))
            """);
        double expected = double.Parse(PythonPeer.Run(script, ours, trained, x).Trim(), CultureInfo.InvariantCulture);

        using var back = new ResNetModel(ResNetSpec.Parse("resnet18") with { NumClasses = 10 }, seed: 4);
        ResNetWeights.Load(back, trained);
        back.eval();
        var input = ResNetWeights.ReadStateDict(x)["x"];
        using var _ = no_grad();
        double got = back.forward(input).to_type(ScalarType.Float64).sum().item<double>();
        Assert.Equal(expected, got, 3);
        Assert.NotEqual(0, expected);
    }
}
