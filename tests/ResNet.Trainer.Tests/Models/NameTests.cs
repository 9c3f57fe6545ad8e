using ResNet.Trainer.Models;

namespace ResNet.Trainer.Tests.Models;

public class NameTests
{
    [Theory]
    [InlineData("resnet20", "resnet20", true, StemKind.Cifar)]
    [InlineData("ResNet-56", "resnet56", true, StemKind.Cifar)]
    [InlineData("plain-34", "plain34", false, StemKind.ImageNet)]
    [InlineData("resnet50", "resnet50", true, StemKind.ImageNet)]
    [InlineData("RESNET_1202", "resnet1202", true, StemKind.Cifar)]
    [InlineData("plain-110", "plain110", false, StemKind.Cifar)]
    [InlineData("resnet-14", "resnet14", true, StemKind.Cifar)]
    public void Parse_AcceptsTheFormsUsersType(string input, string name, bool residual, StemKind stem)
    {
        var spec = ResNetSpec.Parse(input);
        Assert.Equal(name, spec.Name);
        Assert.Equal(residual, spec.Residual);
        Assert.Equal(stem, spec.Stem);
    }

    [Fact]
    public void Parse_BottleneckStridePlacement_DefaultsToV15_AndPaperOnRequest()
    {
        Assert.Equal(BottleneckStride.V15, ResNetSpec.Parse("resnet50").StridePlacement);
        Assert.Equal(BottleneckStride.Paper, ResNetSpec.Parse("resnet50-paper").StridePlacement);
        Assert.Equal(BottleneckStride.Paper, ResNetSpec.Parse("resnet101-v1").StridePlacement);
    }

    [Fact]
    public void Parse_CifarDepth_IsSixNPlusTwo()
    {
        var spec = ResNetSpec.Parse("resnet110");
        Assert.Equal(new[] { 18, 18, 18 }, spec.StageDepths);
        Assert.Equal(110, spec.Depth);
        Assert.Equal(ShortcutOption.A, spec.Shortcut);
        Assert.Equal(34, ResNetSpec.Parse("plain34").Depth);
        Assert.Equal(152, ResNetSpec.Parse("resnet152").Depth);
    }

    [Theory]
    [InlineData("resnet21")]
    [InlineData("resnet-0")]
    [InlineData("resnet2")]
    [InlineData("vgg16")]
    [InlineData("")]
    [InlineData("plain50")]
    [InlineData("resnet18-paper")]
    public void Parse_RejectsInvalidNames_ListingTheValidForms(string input)
    {
        var ex = Assert.Throws<UnknownArchitectureException>(() => ResNetSpec.Parse(input));
        Assert.Contains($"'{input}'", ex.Message);
        Assert.Contains("resnet56", ex.Message);
        Assert.Contains("plain-34", ex.Message);
    }

    [Theory]
    [InlineData("resnet8-w28", "resnet8-w28", true, 28)]
    [InlineData("ResNet-14_W20", "resnet14-w20", true, 20)]
    [InlineData("plain-20-w32", "plain20-w32", false, 32)]
    [InlineData("resnet20-w16", "resnet20", true, 16)]
    public void Parse_WidthSuffix_ScalesTheStemAndEveryStage_AndTheNameParsesBack(string input, string name, bool residual, int width)
    {
        var spec = ResNetSpec.Parse(input);
        Assert.Equal(name, spec.Name);
        Assert.Equal(residual, spec.Residual);
        Assert.Equal(width, spec.StemWidth);
        Assert.Equal(new[] { width, 2 * width, 4 * width }, spec.StageWidths);
        Assert.Equal(4 * width, spec.FeatureCount);

        var again = ResNetSpec.Parse(spec.Name);
        Assert.Equal(spec.Name, again.Name);
        Assert.Equal(spec.StageWidths, again.StageWidths);
        Assert.Equal(spec.StageDepths, again.StageDepths);
    }

    [Fact]
    public void WidthSuffix_BuildsANetworkOfThatWidth()
    {
        var spec = ResNetSpec.Parse("resnet8-w24") with { InputChannels = 1 };
        using var model = new ResNetModel(spec, seed: 0);
        model.eval();
        using var x = TorchSharp.torch.zeros(2, 1, 28, 28);
        using var logits = model.call(x);
        Assert.Equal(new long[] { 2, 10 }, logits.shape);
        // The stem's 3x3 convolution maps 1 channel to 24, the classifier reads 96 features.
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Contains(shapes.Values, s => s.SequenceEqual(new long[] { 24, 1, 3, 3 }));
        Assert.Contains(shapes.Values, s => s.SequenceEqual(new long[] { 10, 96 }));
    }

    [Theory]
    [InlineData("resnet20-s2", "resnet20-s2", true, 16)]
    [InlineData("ResNet-20-W30-S2", "resnet20-w30-s2", true, 30)]
    [InlineData("plain-8-w24-s2", "plain8-w24-s2", false, 24)]
    public void Parse_StemStrideSuffix_GivesTheStridedCifarStem_AndTheNameParsesBack(string input, string name, bool residual, int width)
    {
        var spec = ResNetSpec.Parse(input);
        Assert.Equal(name, spec.Name);
        Assert.Equal(StemKind.CifarStrided, spec.Stem);
        Assert.Equal(residual, spec.Residual);
        Assert.Equal(width, spec.StemWidth);
        Assert.Equal(2, ResNetPlan.Stem(spec).Stride);
        var again = ResNetSpec.Parse(spec.Name);
        Assert.Equal((spec.Name, spec.Stem, spec.StemWidth), (again.Name, again.Stem, again.StemWidth));
    }

    [Theory]
    [InlineData("resnet18-s2", "stem-stride suffix '-s2' applies only to CIFAR models")]
    [InlineData("plain34-s2", "stem-stride suffix '-s2' applies only to CIFAR models")]
    [InlineData("resnet20-s2-w32", "Valid forms")]
    [InlineData("resnet20-s3", "Valid forms")]
    [InlineData("resnet18-w32", "only to CIFAR models")]
    [InlineData("resnet50-w8", "only to CIFAR models")]
    [InlineData("resnet20-w0", "whole number from 1 to 1024")]
    [InlineData("resnet20-w5000", "whole number from 1 to 1024")]
    [InlineData("resnet20-w", "Valid forms")]
    [InlineData("resnet20-x2", "Valid forms")]
    public void Parse_RejectsBadWidths_NamingTheRule(string input, string rule)
    {
        var ex = Assert.Throws<UnknownArchitectureException>(() => ResNetSpec.Parse(input));
        Assert.Contains($"'{input}'", ex.Message);
        Assert.Contains(rule, ex.Message);
        Assert.Contains("resnet8-w28", ex.Message);
    }

    [Fact]
    public void Cifar_RejectsNonPositiveN()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => ResNetSpec.Cifar(0));
        Assert.Contains("6n+2", ex.Message);
    }

    [Fact]
    public void EveryNamedModel_Parses()
    {
        Assert.Equal(18, ResNetNames.Named.Count);
        foreach (var name in ResNetNames.Named)
            Assert.Equal(name, ResNetSpec.Parse(name).Name);
    }
}
