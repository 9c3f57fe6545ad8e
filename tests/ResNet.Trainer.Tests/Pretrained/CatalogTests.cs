using ResNet.Trainer.Models;
using ResNet.Trainer.Pretrained;

namespace ResNet.Trainer.Tests.Pretrained;

public class CatalogTests
{
    [Fact]
    public void TorchvisionEntries_CarryTheirHashPrefixResizeAndTheArchitecturesParameterCount()
    {
        var torchvision = ResNetPretrained.All.Where(e => e.Format == WeightsFormat.TorchvisionStateDict).ToList();
        Assert.Equal(8, torchvision.Count);
        foreach (var e in torchvision)
        {
            Assert.Matches("^[0-9a-f]{8}$", e.Sha256Prefix!);
            Assert.Equal($"https://download.pytorch.org/models/{e.FileName}", e.Url!.AbsoluteUri);
            Assert.StartsWith(e.Architecture + "-", e.FileName);
            Assert.Equal(224, e.Transform!.CropSize);
            Assert.Equal(e.Tag == "IMAGENET1K_V2" ? 232 : 256, e.Transform.ResizeSize);
            // The published count is the one our builder gives the same architecture.
            Assert.Equal(ModelStats.Parameters(ResNetSpec.Parse(e.Architecture)), e.Parameters);
            Assert.Contains("BSD-3-Clause", e.License);
            Assert.InRange(e.Top1!.Value, 69.0, 83.0);
        }
        Assert.Equal(["f37072fd", "b627a593", "0676ba61", "11ad3fa6", "63fe2227", "cd907fc2", "394f9c45", "f82ba261"],
            torchvision.Select(e => e.Sha256Prefix));
        Assert.Equal([69.758, 73.314, 76.130, 80.858, 77.374, 81.886, 78.312, 82.284], torchvision.Select(e => e.Top1!.Value));
    }

    [Theory]
    [InlineData("resnet18", "resnet18:IMAGENET1K_V1")]
    [InlineData("ResNet-34", "resnet34:IMAGENET1K_V1")]
    [InlineData("resnet50", "resnet50:IMAGENET1K_V2")] // torchvision's DEFAULT
    [InlineData("resnet50:imagenet1k_v1", "resnet50:IMAGENET1K_V1")]
    [InlineData("resnet_101", "resnet101:IMAGENET1K_V2")]
    [InlineData("resnet152:IMAGENET1K_V1", "resnet152:IMAGENET1K_V1")]
    [InlineData("cntk-resnet18", "cntk-resnet18:IMAGENET")]
    public void Parse_FindsTheEntry(string name, string expected) => Assert.Equal(expected, ResNetPretrained.Parse(name).Name);

    [Theory]
    [InlineData("resnet20")]
    [InlineData("resnet50:IMAGENET1K_V3")]
    public void Parse_UnknownName_ListsTheKnownOnes(string name)
    {
        var ex = Assert.Throws<ArgumentException>(() => ResNetPretrained.Parse(name));
        Assert.Contains($"'{name}'", ex.Message);
        Assert.Contains("resnet50:IMAGENET1K_V2", ex.Message);
        Assert.Contains("cntk-resnet18", ex.Message);
    }

    [Fact]
    public void CntkEntry_LoadsTheNuGetTrunkThroughTheCatalog()
    {
        var net = PretrainedLoader.Load("cntk-resnet18", numClasses: 5, seed: 1, dnnModelsDirectory: Path.Combine(AppContext.BaseDirectory, "DnnImageModels"));
        using var model = net.Model;
        Assert.Same(ResNetPretrained.CntkResNet18, net.Weights);
        Assert.Equal(224, net.ImageSize);
        Assert.Equal(5, model.Spec.NumClasses);
        // A trunk without a head: its count is the network's less its 5-class classifier.
        long head = model.Spec.FeatureCount * 5L + 5;
        Assert.Equal(ModelStats.Parameters(model.Spec) - head, ResNetPretrained.CntkResNet18.Parameters);
        Assert.Null(ResNetPretrained.CntkResNet18.Url);
        Assert.Throws<ArgumentException>(() => new WeightsCache(TestData.TempDir()).SourceOf(ResNetPretrained.CntkResNet18));
    }
}
