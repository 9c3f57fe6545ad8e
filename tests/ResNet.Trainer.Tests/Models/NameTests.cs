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
