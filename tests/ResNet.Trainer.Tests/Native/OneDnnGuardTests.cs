using ResNet.Trainer.Models;
using ResNet.Trainer.Native;

namespace ResNet.Trainer.Tests.Native;

public class OneDnnGuardTests
{
    [Theory]
    [InlineData("resnet20", null)]
    [InlineData("resnet56", null)]
    [InlineData("resnet18", null)]
    [InlineData("resnet50", null)]
    [InlineData("resnet20-w32-s2", null)]
    [InlineData("resnet8-w24", "conv1")]                   // the stem's 24 output channels
    [InlineData("resnet14-w20", "conv1")]
    [InlineData("resnet20-w48", "conv1")]                  // 48: forward right, input gradients wrong on such CPUs
    [InlineData("resnet8-w8", "conv1")]
    public void FirstUnsafe_NamesTheFirstConvolutionWithChannelsOtherThan16OrMultiplesOf32(string arch, string? key)
    {
        Assert.Equal(key, OneDnnGuard.FirstUnsafe(ResNetSpec.Parse(arch))?.Key);
    }

    [Fact]
    public void SafeChannels_Are16AndMultiplesOf32()
    {
        Assert.Equal([16, 32, 64, 96, 128, 160, 256, 2048], new[] { 1, 3, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 256, 2048 }.Where(OneDnnGuard.SafeChannels));
    }

    /// <summary>
    /// On this machine: building a network with unsafe widths leaves oneDNN on where oneDNN reads the CPU's caches, and turns
    /// it off (for good, with a line in the setup log) where it does not.
    /// </summary>
    [Fact]
    public void BuildingAnUnsafeNetwork_TurnsOneDnnOff_OnlyWhereOneDnnCannotReadTheCaches()
    {
        using var model = new ResNetModel(ResNetSpec.Parse("resnet8-w24") with { NumClasses = 10 });
        Assert.Equal(CpuFeatures.OneDnnReadsCaches, LibtorchSwitches.OneDnnEnabled);
        Assert.Equal(!CpuFeatures.OneDnnReadsCaches, TorchNative.SetupLog.Any(line => line.StartsWith("oneDNN off", StringComparison.Ordinal)));
        Assert.Equal(!CpuFeatures.OneDnnReadsCaches, OneDnnGuard.Warning(onCpu: true) is not null);
        Assert.Null(OneDnnGuard.Warning(onCpu: false));
    }
}
