using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using ResNet.Trainer.Pretrained;
using ResNet.Trainer.Tests.Pretrained;
using SkiaSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace ResNet.Trainer.Tests.Peers;

/// <summary>
/// The catalog path (download from a loopback server, cache, build, load) against torchvision 0.14 with the same
/// random weights: the same logits on the same tensor, and on the same image files with the catalog's resize and crop
/// on our side and torchvision's <c>weights.transforms()</c> on PIL images on theirs; and the exported ONNX model, whose
/// metadata records that resize and crop, scoring the raw files through <see cref="OnnxScorer.ScoreFiles"/>.
/// </summary>
public class PretrainedParityTests(ITestOutputHelper log)
{
    [Theory]
    [InlineData("resnet18", "IMAGENET1K_V1")] // resize 256
    [InlineData("resnet50", "IMAGENET1K_V2")] // resize 232, v1.5 stride placement
    public void CatalogPath_GivesTorchvisionsLogits_OnTheSameTensorAndOnTheSameImageFiles_InTorchSharpAndThroughItsOnnxScorer(string arch, string tag)
    {
        string dir = TestWeights.WriteWithTorchvision(arch);
        try
        {
            CompareWithTorchvision(dir, arch, tag);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private void CompareWithTorchvision(string dir, string arch, string tag)
    {
        string weights = Path.Combine(dir, "weights.pth");
        string served = Path.Combine(dir, "served");
        using var server = LoopbackServer.ServingFolder(served);
        var published = ResNetPretrained.Parse($"{arch}:{tag}");
        var entry = TestWeights.Entry(arch, weights, served, server.BaseUrl, transform: published.Transform);

        var net = PretrainedLoader.Load(entry, cache: new WeightsCache(Path.Combine(dir, "cache")));
        using var model = net.Model;
        model.eval();
        using var _ = no_grad();

        var reference = ResNetWeights.ReadStateDict(Path.Combine(dir, "outputs.pth"));
        double tensorDiff = MaxDiff(reference["eval"], model.forward(reference["input"]));
        log.WriteLine($"{arch}: same tensor, max abs logit difference {tensorDiff:E3}");
        Assert.True(tensorDiff <= 1e-4, $"same tensor: max abs logit difference {tensorDiff:E3} > 1e-4");

        string[] images = Images(dir);
        string output = Path.Combine(dir, "images.pth");
        log.WriteLine(PythonPeer.Run(PythonPeer.Script("torchvision_pretrained_images.py"), [arch, tag, weights, output, .. images]).Trim());
        var theirs = ResNetWeights.ReadStateDict(output);

        var transform = published.Transform!;
        var planes = images.Select(p => transform.Apply(ImageDecoder.Decode(p, 3))).ToArray();
        int size = transform.CropSize;
        using var ours = tensor(planes.SelectMany(p => p).ToArray(), [images.Length, 3, size, size]);
        double inputDiff = MaxDiff(theirs["input"], ours);
        log.WriteLine($"{arch}: preprocessed images ({string.Join(", ", images.Select(Path.GetFileName))}), max abs difference {inputDiff:E3}");
        Assert.True(inputDiff <= 1e-6, $"preprocessing differs from torchvision's weights.transforms() on PIL images by {inputDiff:E3}");

        var logits = model.forward(ours);
        double logitDiff = MaxDiff(theirs["logits"], logits);
        log.WriteLine($"{arch}: same image files, max abs logit difference {logitDiff:E3}");
        Assert.True(logitDiff <= 1e-2, $"same image files: max abs logit difference {logitDiff:E3} > 1e-2");
        var (_, theirTop) = theirs["logits"].topk(5, dim: 1);
        var (_, ourTop) = logits.topk(5, dim: 1);
        for (int i = 0; i < images.Length; i++)
            Assert.Equal(theirTop[i].data<long>().ToArray(), ourTop[i].data<long>().ToArray());

        // The exported model records the resize and crop; the scorer applies it to the raw files (normalization is in the graph).
        string onnx = Path.Combine(dir, "model.onnx");
        OnnxExporter.Export(model, onnx, new OnnxExportOptions
        {
            Normalization = net.Normalization.ToInputNormalization(), Preprocessing = transform.Geometry, ImageHeight = size, ImageWidth = size,
        });
        using var scorer = new OnnxScorer(onnx);
        Assert.Equal(new ResizeCrop(transform.ResizeSize, 224), scorer.Info.Preprocessing);
        // torchvision's tensor is (p/255 - mean)/std: undone, it is the 0..1 pixels the scorer feeds the graph.
        using var mean = tensor(transform.Mean, [1, 3, 1, 1]);
        using var std = tensor(transform.Std, [1, 3, 1, 1]);
        using var theirPixels = theirs["input"] * std + mean;
        using var scorerPixels = tensor(images.SelectMany(p => ImageTensors.Load(p, scorer.Info)).ToArray(), [images.Length, 3, size, size]);
        double pixelDiff = MaxDiff(theirPixels, scorerPixels);
        log.WriteLine($"{arch}: OnnxScorer's input on the raw files vs torchvision's weights.transforms(), max abs difference {pixelDiff:E3} (0..1 scale)");
        Assert.True(pixelDiff <= 1e-6, $"the scorer's preprocessing differs from torchvision's by {pixelDiff:E3} > 1e-6 on the 0..1 scale (half an 8-bit step is 2e-3)");

        var scored = scorer.ScoreFiles(images);
        using var onnxLogits = tensor(scored.Logits, [images.Length, scored.ClassCount]);
        double onnxDiff = MaxDiff(theirs["logits"], onnxLogits);
        log.WriteLine($"{arch}: OnnxScorer.ScoreFiles on the raw files, max abs logit difference {onnxDiff:E3}");
        Assert.True(onnxDiff <= 1e-2, $"OnnxScorer on the raw files: max abs logit difference {onnxDiff:E3} > 1e-2");
        var (_, onnxTop) = onnxLogits.topk(5, dim: 1);
        for (int i = 0; i < images.Length; i++)
            Assert.Equal(theirTop[i].data<long>().ToArray(), onnxTop[i].data<long>().ToArray());
    }

    private static double MaxDiff(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        return (expected - actual).abs().max().item<float>();
    }

    // Small grayscale PNGs from samples/data (enlarged by the resize), larger colour ones of odd sizes (shrunk, so the
    // antialiasing matters), landscape and portrait, and a JPEG (SkiaSharp's and PIL's decoders must agree too).
    private static string[] Images(string dir)
    {
        string samples = Path.Combine(AppContext.BaseDirectory, "../../../../../samples/data/fashion-mnist-small/test");
        var small = new[] { "Trouser", "Bag", "Sneaker" }.Select(c => Directory.GetFiles(Path.Combine(samples, c), "*.png").Order(StringComparer.Ordinal).First());
        var random = new Random(5);
        SKColor Pattern(int x, int y, int w, int h) => new(
            (byte)Math.Clamp(128 + 100 * Math.Sin(x * 0.05) + random.Next(-20, 21), 0, 255),
            (byte)Math.Clamp(255.0 * y / h + random.Next(-20, 21), 0, 255),
            (byte)Math.Clamp(128 + 120 * Math.Cos((x + 2 * y) * 0.013) * Math.Sin(y * 0.021), 0, 255));
        string landscape = TestData.WriteImage(Path.Combine(dir, "images", "landscape-517x389.png"), 517, 389, SKColorType.Rgba8888, (x, y) => Pattern(x, y, 517, 389));
        string portrait = TestData.WriteImage(Path.Combine(dir, "images", "portrait-301x643.png"), 301, 643, SKColorType.Rgba8888, (x, y) => Pattern(x, y, 301, 643));
        string photo = TestData.WriteImage(Path.Combine(dir, "images", "photo-641x479.jpg"), 641, 479, SKColorType.Rgba8888, (x, y) => Pattern(x, y, 641, 479), SKEncodedImageFormat.Jpeg);
        return [.. small, landscape, portrait, photo];
    }
}
