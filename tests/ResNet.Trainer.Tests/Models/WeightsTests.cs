using ResNet.Trainer.Models;
using static TorchSharp.torch;

namespace ResNet.Trainer.Tests.Models;

public sealed class WeightsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("resnet-weights-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("w.dat")]
    [InlineData("w.pth")]
    [InlineData("w.safetensors")]
    public void SaveThenLoad_GivesTheSameOutputs(string file)
    {
        var spec = ResNetSpec.ResNet20();
        using var a = new Trainer.Models.ResNetModel(spec, seed: 1);
        using var b = new Trainer.Models.ResNetModel(spec, seed: 2);
        a.eval(); b.eval();
        using var x = randn(2, 3, 32, 32);
        using var _ = no_grad();
        Assert.False(a.forward(x).allclose(b.forward(x)));

        string path = Path.Combine(_dir, file);
        ResNetWeights.Save(a, path);
        ResNetWeights.Load(b, path);
        Assert.True(a.forward(x).equal(b.forward(x)).all().item<bool>());
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp*"));
    }

    [Fact]
    public void Load_FromAnotherArchitecture_ListsTheFirstMismatches_AndLeavesTheModelUnchanged()
    {
        using var r32 = new Trainer.Models.ResNetModel(ResNetSpec.Parse("resnet32"), seed: 1);
        string path = Path.Combine(_dir, "r32.pth");
        ResNetWeights.Save(r32, path);

        using var r20 = new Trainer.Models.ResNetModel(ResNetSpec.ResNet20() with { NumClasses = 7 }, seed: 2);
        var before = r20.state_dict()["conv1.weight"].clone();
        var ex = Assert.Throws<WeightsMismatchException>(() => ResNetWeights.Load(r20, path));
        Assert.Contains("'fc.weight': file has shape [10, 64], model expects [7, 64]", ex.Message);
        Assert.Contains("unexpected key 'layer1.3.bn1.bias'", ex.Message);
        // resnet32 has 2 more blocks per stage: 6 blocks x 12 keys; fc weight and bias differ in shape.
        Assert.Contains("2 shape mismatch(es), 0 missing key(s), 72 unexpected key(s)", ex.Message);
        Assert.Contains("Check the architecture name", ex.Message);
        Assert.True(before.equal(r20.state_dict()["conv1.weight"]).all().item<bool>());
    }

    [Fact]
    public void Load_NonStrict_TakesTheMatchingKeysOnly()
    {
        using var source = new Trainer.Models.ResNetModel(ResNetSpec.ResNet20(), seed: 1);
        string path = Path.Combine(_dir, "src.safetensors");
        ResNetWeights.Save(source, path);
        using var target = new Trainer.Models.ResNetModel(ResNetSpec.ResNet20(), seed: 5);
        ResNetWeights.Load(target, path, strict: false);
        Assert.True(source.state_dict()["layer3.2.conv2.weight"].equal(target.state_dict()["layer3.2.conv2.weight"]).all().item<bool>());
    }

    [Fact]
    public void Load_MissingFile_SaysSo()
    {
        using var model = new Trainer.Models.ResNetModel(ResNetSpec.ResNet20());
        var ex = Assert.Throws<FileNotFoundException>(() => ResNetWeights.Load(model, Path.Combine(_dir, "nope.pth")));
        Assert.Contains("nope.pth", ex.Message);
    }

    [Theory]
    [InlineData("garbage.pth")]
    [InlineData("garbage.safetensors")]
    [InlineData("garbage.dat")]
    public void Load_CorruptFile_IsAClearError(string file)
    {
        string path = Path.Combine(_dir, file);
        File.WriteAllBytes(path, "this is not a weights file"u8.ToArray());
        using var model = new Trainer.Models.ResNetModel(ResNetSpec.ResNet20());
        var ex = Assert.Throws<InvalidDataException>(() => ResNetWeights.Load(model, path));
        Assert.Contains(file, ex.Message);
    }
}
