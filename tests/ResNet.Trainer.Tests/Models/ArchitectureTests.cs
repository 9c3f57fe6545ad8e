using Net = ResNet.Trainer.Models.ResNetModel;
using ResNet.Trainer.Models;
using static TorchSharp.torch;

namespace ResNet.Trainer.Tests.Models;

public class ArchitectureTests
{
    // DESIGN.md table (torchvision and the paper, cross-checked).
    [Theory]
    [InlineData("resnet20", 269_722)]
    [InlineData("resnet32", 464_154)]
    [InlineData("resnet44", 658_586)]
    [InlineData("resnet56", 853_018)]
    [InlineData("resnet110", 1_727_962)]
    [InlineData("resnet1202", 19_421_274)]
    [InlineData("resnet18", 11_689_512)]
    [InlineData("resnet34", 21_797_672)]
    [InlineData("resnet50", 25_557_032)]
    [InlineData("resnet101", 44_549_160)]
    [InlineData("resnet152", 60_192_808)]
    public void NamedModels_HaveThePapersParameterCount(string name, long expected)
    {
        var spec = ResNetSpec.Parse(name);
        Assert.Equal(expected, ModelStats.Parameters(spec));
    }

    [Theory]
    [InlineData("resnet20")]
    [InlineData("resnet56")]
    [InlineData("resnet18")]
    [InlineData("resnet50")]
    [InlineData("resnet50-paper")]
    [InlineData("plain34")]
    [InlineData("resnet8-w28")]
    [InlineData("resnet20-w30-s2")]
    public void BuiltModule_HasTheComputedParameterCount(string name)
    {
        using var model = new Trainer.Models.ResNetModel(ResNetSpec.Parse(name));
        long built = model.parameters().Sum(p => p.numel());
        Assert.Equal(ModelStats.Parameters(model.Spec), built);
    }

    [Theory]
    [InlineData(20)]
    [InlineData(32)]
    [InlineData(44)]
    [InlineData(56)]
    [InlineData(110)]
    public void PlainCifarNet_HasTheSameCountAsResNet_OptionAAddsNoParameters(int depth)
    {
        Assert.Equal(ModelStats.Parameters(ResNetSpec.Parse($"resnet{depth}")), ModelStats.Parameters(ResNetSpec.Parse($"plain-{depth}")));
        using var plain = new Trainer.Models.ResNetModel(ResNetSpec.Parse($"plain-{depth}"));
        Assert.Equal(ModelStats.Parameters(ResNetSpec.Parse($"resnet{depth}")), plain.parameters().Sum(p => p.numel()));
    }

    [Theory]
    [InlineData("resnet20", 40.6e6)]
    [InlineData("resnet32", 68.9e6)]
    [InlineData("resnet44", 97.2e6)]
    [InlineData("resnet56", 125.5e6)]
    [InlineData("resnet110", 252.9e6)]
    public void CifarMacs_MatchTheTableToPointOneMillion(string name, double expected)
    {
        double macs = ModelStats.Macs(ResNetSpec.Parse(name), 32);
        Assert.InRange(macs, expected - 0.05e6, expected + 0.05e6);
    }

    [Fact]
    public void CntkPadding_GivesCeilOfHalf_WithTheOddPixelOnTopLeft()
    {
        // The DnnImageFeaturizer ResNet18 file at 224 pixels: 7x7/2 [3,3,2,2], max-pool and 3x3/2 [1,1,0,0], 1x1/2 none.
        Assert.Equal((3, 2), ResNetPlan.Padding(PaddingStyle.CntkAsymmetric, 7, 2, 224));
        Assert.Equal((1, 0), ResNetPlan.Padding(PaddingStyle.CntkAsymmetric, 3, 2, 112));
        Assert.Equal((0, 0), ResNetPlan.Padding(PaddingStyle.CntkAsymmetric, 1, 2, 56));
        // Where the stride does not divide the input, one more pixel: 3x3/2 over 17 pads 1 and 1; 7x7/2 over 35 pads 3 and 3.
        Assert.Equal((1, 1), ResNetPlan.Padding(PaddingStyle.CntkAsymmetric, 3, 2, 17));
        Assert.Equal((3, 3), ResNetPlan.Padding(PaddingStyle.CntkAsymmetric, 7, 2, 35));
        Assert.Equal((1, 1), ResNetPlan.Padding(PaddingStyle.CntkAsymmetric, 3, 1, 17)); // stride 1: symmetric
        Assert.Equal((1, 1), ResNetPlan.Padding(PaddingStyle.Symmetric, 3, 2, 112));
        for (int n = 1; n <= 40; n++)
            foreach (var k in new[] { 1, 3, 7 })
                Assert.Equal((n + 1) / 2, ResNetPlan.WindowOutput(PaddingStyle.CntkAsymmetric, k, 2, n));
        var spec = ResNetSpec.ResNet18() with { Padding = PaddingStyle.CntkAsymmetric };
        Assert.Equal((3, 3), ResNetPlan.OutputSize(spec, 70, 71)); // 70 -> 35 -> 18 -> 9 -> 5 -> 3; 71 -> 36 -> 18 -> ...
        Assert.Equal(ModelStats.Macs(ResNetSpec.ResNet18(), 224), ModelStats.Macs(spec, 224));
    }

    [Theory]
    [InlineData("resnet20")]
    [InlineData("resnet8-w28")]
    public void StridedCifarStem_RunsTheStagesAtHalfTheResolution(string name)
    {
        // The 3x3/2 stem on a 32x32 image has the 16x16 output of the 3x3/1 stem on a 16x16 image, and every stage after it
        // sees what it would see there: the same multiply-adds, and twice the smallest input.
        var plainStem = ResNetSpec.Parse(name);
        var strided = ResNetSpec.Parse(name + "-s2");
        Assert.Equal(StemKind.CifarStrided, strided.Stem);
        Assert.Equal(ModelStats.Macs(plainStem, 16), ModelStats.Macs(strided, 32));
        Assert.Equal(ModelStats.Parameters(plainStem), ModelStats.Parameters(strided));
        Assert.Equal(2 * ResNetPlan.MinimumImageSize(plainStem), ResNetPlan.MinimumImageSize(strided));
        Assert.Equal((4, 4), ResNetPlan.OutputSize(strided, 28, 28));

        using var model = new Net(strided with { InputChannels = 1 }, seed: 0);
        model.eval();
        using var x = rand(3, 1, 28, 28);
        using var logits = model.call(x);
        Assert.Equal(new long[] { 3, 10 }, logits.shape);
    }

    // The paper prints one decimal. ResNet-34 counts 3.664G (torchvision's figure too: basic blocks have no
    // stride choice) and ResNet-50 with the paper's placement 3.858G, both printed lower (3.6, 3.8):
    // those two are held to [printed, printed + 2%], the rest to within 1%.
    [Theory]
    [InlineData("resnet18", 1.8, true)]
    [InlineData("resnet34", 3.6, false)]
    [InlineData("resnet50-paper", 3.8, false)]
    [InlineData("resnet101-paper", 7.6, true)]
    [InlineData("resnet152-paper", 11.3, true)]
    public void ImageNetMacs_WithThePapersStridePlacement_MatchThePapersFigures(string name, double paperGiga, bool withinOnePercent)
    {
        double macs = ModelStats.Macs(ResNetSpec.Parse(name), 224);
        if (withinOnePercent)
            Assert.InRange(macs, paperGiga * 1e9 * 0.99, paperGiga * 1e9 * 1.01);
        else
            Assert.InRange(macs, paperGiga * 1e9, paperGiga * 1e9 * 1.02);
    }

    [Theory]
    [InlineData("resnet18", 1.814e9)]
    [InlineData("resnet34", 3.664e9)]
    [InlineData("resnet50", 4.089e9)]
    [InlineData("resnet101", 7.80e9)]
    [InlineData("resnet152", 11.51e9)]
    public void ImageNetMacs_V15_MatchTorchvision(string name, double expected)
    {
        double macs = ModelStats.Macs(ResNetSpec.Parse(name), 224);
        Assert.InRange(macs, expected * 0.995, expected * 1.005);
    }

    [Theory]
    [InlineData("resnet20", 1, 32, 1)]
    [InlineData("resnet20", 3, 32, 8)]
    [InlineData("plain20", 1, 32, 8)]
    [InlineData("resnet18", 3, 224, 1)]
    [InlineData("resnet18", 1, 224, 8)]
    [InlineData("resnet50", 3, 224, 1)]
    [InlineData("plain18", 3, 224, 1)]
    public void Forward_GivesOneLogitPerClass(string name, int channels, int size, int batch)
    {
        var spec = ResNetSpec.Parse(name) with { InputChannels = channels, NumClasses = 7 };
        using var model = new Trainer.Models.ResNetModel(spec);
        model.eval();
        using var x = randn(batch, channels, size, size);
        using var y = model.forward(x);
        Assert.Equal(new long[] { batch, 7 }, y.shape);
        using var f = model.Features(x);
        Assert.Equal(new long[] { batch, spec.FeatureCount }, f.shape);
        Assert.True(y.isfinite().all().item<bool>());
    }

    [Theory]
    [InlineData(BottleneckStride.V15, new[] { 1, 2, 1 })]
    [InlineData(BottleneckStride.Paper, new[] { 2, 1, 1 })]
    public void ThePlan_PlacesTheBottlenecksStride_AndTheBuiltNetworkFollowsIt(BottleneckStride placement, int[] strides)
    {
        var spec = ResNetSpec.ResNet50() with { StridePlacement = placement };
        var block = ResNetPlan.Blocks(spec).Single(b => b.Path == "layer2.0");
        Assert.Equal(["layer2.0.conv1", "layer2.0.conv2", "layer2.0.conv3"], block.Convs.Select(c => c.Key));
        Assert.Equal([1, 3, 1], block.Convs.Select(c => c.Kernel));
        Assert.Equal(strides, block.Convs.Select(c => c.Stride));
        Assert.Equal(new ConvPlan("layer2.0.downsample.0", "layer2.0.downsample.1", 256, 512, 1, 2), block.Downsample);
        using var model = new Net(spec);
        var built = model.Stages[1].children().OfType<ResidualBlock>().First();
        Assert.Equal(strides, built.named_children().Where(c => c.name.StartsWith("conv", StringComparison.Ordinal))
            .Select(c => (int)((TorchSharp.Modules.Conv2d)c.module).stride[0]));
        Assert.Equal(32, ResNetPlan.MinimumImageSize(spec));
        Assert.Equal(4, ResNetPlan.MinimumImageSize(ResNetSpec.ResNet20()));
    }

    [Fact]
    public void Forward_WithWrongChannelCount_NamesTheShapeAndTheFix()
    {
        using var model = new Trainer.Models.ResNetModel(ResNetSpec.ResNet20());
        using var x = randn(2, 1, 32, 32);
        var ex = Assert.Throws<ArgumentException>(() => model.forward(x));
        Assert.Contains("[N, 3, H, W]", ex.Message);
        Assert.Contains("InputChannels = 1", ex.Message);
    }

    [Fact]
    public void StateDictKeys_FollowTorchvision()
    {
        using var model = new Trainer.Models.ResNetModel(ResNetSpec.ResNet50());
        var keys = model.state_dict().Keys.ToHashSet();
        Assert.Contains("conv1.weight", keys);
        Assert.Contains("bn1.running_mean", keys);
        Assert.Contains("layer1.0.conv3.weight", keys);
        Assert.Contains("layer1.0.downsample.0.weight", keys);
        Assert.Contains("layer4.2.bn3.num_batches_tracked", keys);
        Assert.Contains("fc.bias", keys);
        Assert.DoesNotContain("layer1.1.downsample.0.weight", keys);
    }

    [Fact]
    public void OptionC_ProjectsEveryBlock_OptionB_OnlyWhereShapesChange()
    {
        var b = ResNetSpec.ResNet18();
        var c = b with { Shortcut = ShortcutOption.C };
        Assert.Equal(3, ResNetPlan.Blocks(b).Count(p => p.Shortcut == ShortcutKind.Projection));
        Assert.Equal(8, ResNetPlan.Blocks(c).Count(p => p.Shortcut == ShortcutKind.Projection));
        Assert.True(ModelStats.Parameters(c) > ModelStats.Parameters(b));
    }

    [Fact]
    public void ZeroInitResidual_StartsEveryBlockAsItsShortcut()
    {
        var spec = ResNetSpec.ResNet20() with { ZeroInitResidual = true };
        using var model = new Trainer.Models.ResNetModel(spec, seed: 1);
        foreach (var (name, p) in model.named_parameters().Where(kv => kv.name.EndsWith("bn2.weight") && kv.name.StartsWith("layer")))
            Assert.Equal(0f, p.abs().sum().item<float>());
    }

    [Fact]
    public void HeInit_HasFanOutVariance()
    {
        using var model = new Trainer.Models.ResNetModel(ResNetSpec.ResNet56(), seed: 3);
        // layer3 convs: 64 filters of 3x3 -> fan_out = 576, std = sqrt(2/576) = 0.0589
        var w = model.state_dict()["layer3.5.conv2.weight"];
        double std = w.std().item<float>();
        Assert.InRange(std, 0.0589 * 0.93, 0.0589 * 1.07);
    }

    [Fact]
    public void SameSeed_GivesSameWeights()
    {
        using var a = new Trainer.Models.ResNetModel(ResNetSpec.ResNet20(), seed: 42);
        using var b = new Trainer.Models.ResNetModel(ResNetSpec.ResNet20(), seed: 42);
        Assert.True(a.state_dict()["layer2.0.conv1.weight"].equal(b.state_dict()["layer2.0.conv1.weight"]).all().item<bool>());
    }
}
