using static ResNet.Cli.Tests.Cli;
namespace ResNet.Cli.Tests;

public class InfoCommandTests
{
    [Fact]
    public void Info_ResNet20_PrintsParametersMacsAndOneRowPerBlock()
    {
        var (code, output, _) = Run("info", "resnet20");
        Assert.Equal(0, code);
        Assert.Contains("parameters: 269,722", output);
        Assert.Contains("MACs per image: 40.6M", output);
        Assert.Equal(9, output.Split('\n').Count(l => l.StartsWith("layer")  && l.Contains("shortcut")));
    }

    [Fact]
    public void Info_Bottleneck_SaysWhichStridePlacementTheNameGives()
    {
        Assert.Contains("v1.5", Run("info", "resnet50").Out);
        Assert.Contains("MACs per image: 4.089G", Run("info", "resnet50").Out);
        Assert.Contains("the paper's placement", Run("info", "resnet50-paper").Out);
    }

    [Fact]
    public void Info_HonoursImageSizeClassesAndChannels()
    {
        var (code, output, _) = Run("info", "resnet18", "--image-size", "64", "--classes", "10", "--channels", "1");
        Assert.Equal(0, code);
        Assert.Contains("input: 1x64x64, classes: 10", output);
        Assert.Contains("512x2x2", output);
    }

    [Fact]
    public void Info_UnknownArchitecture_ExitsWithTwoAndListsTheValidForms()
    {
        var (code, _, err) = Run("info", "resnet21");
        Assert.Equal(2, code);
        Assert.Contains("Unknown architecture 'resnet21'", err);
        Assert.Contains("resnet110", err);
    }
}
