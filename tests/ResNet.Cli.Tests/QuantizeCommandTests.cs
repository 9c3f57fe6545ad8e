using static ResNet.Cli.Tests.Cli;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using SkiaSharp;

namespace ResNet.Cli.Tests;

public class QuantizeCommandTests
{
    // A 3-class ResNet-20 (random weights) as ONNX, and a labelled folder of 3 x 8 coloured 32x32 PNGs.
    private static (string Dir, string Model, string Images) Files(int perClass = 8)
    {
        string dir = Path.Combine(Path.GetTempPath(), "resnet-cli-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        using var model = new Trainer.Models.ResNetModel(ResNetSpec.ResNet20() with { NumClasses = 3 }, seed: 1);
        string onnx = Path.Combine(dir, "m.onnx");
        OnnxExporter.Export(model, onnx, new OnnxExportOptions { ClassNames = ["apple", "banana", "cherry"], Normalization = InputNormalization.ImageNet });
        string images = Path.Combine(dir, "images");
        var rng = new Random(1);
        foreach (var (name, hue) in new[] { ("apple", 0f), ("banana", 60f), ("cherry", 330f) })
        {
            Directory.CreateDirectory(Path.Combine(images, name));
            for (int i = 0; i < perClass; i++)
            {
                using var bmp = new SKBitmap(32, 32);
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++)
                        bmp.SetPixel(x, y, SKColor.FromHsv(hue, 60 + rng.Next(40), 40 + rng.Next(60)));
                using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(images, name, $"{i}.png"), data.ToArray());
            }
        }
        return (dir, onnx, images);
    }

    [Fact]
    public void Quantize_WithTest_PrintsTheComparison_AndEvaluateReadsBothFiles()
    {
        var (dir, model, images) = Files();
        string int8 = Path.Combine(dir, "m.int8.onnx");
        var (code, output, err) = Run("quantize", "--model", model, "--calibration", images, "-o", int8, "--test", images, "--method", "minmax");
        Assert.True(code == 0, err);
        Assert.Contains("calibrated on 24 images", output);
        Assert.Contains("on 24 test images: float accuracy", output);
        Assert.Contains("top-1 agreement", output);
        Assert.True(new FileInfo(int8).Length < 0.3 * new FileInfo(model).Length);

        (code, output, err) = Run("evaluate", "--model", int8, "--data", images);
        Assert.True(code == 0, err);
        Assert.Contains("m.int8.onnx (resnet20, int8) on 24 images (single): accuracy", output);
        (code, output, err) = Run("evaluate", "--model", model, "--data", images);
        Assert.True(code == 0, err);
        Assert.Contains("m.onnx (resnet20) on 24 images", output);
        (code, _, err) = Run("evaluate", "--model", model, "--data", images, "--mode", "ten-crop");
        Assert.Equal(2, code);
        Assert.Contains("needs the trained weights", err);
    }

    [Fact]
    public void Quantize_BadInputs_AreClearErrors()
    {
        var (dir, model, images) = Files(perClass: 2);
        var (code, _, err) = Run("quantize", "--model", model, "--calibration", images, "-o", Path.Combine(dir, "q.onnx"));
        Assert.Equal(2, code);
        Assert.Contains("gave 6 decodable calibration image(s)", err);
        Assert.Contains("at least 20", err);

        (code, _, err) = Run("quantize", "--model", model, "--calibration", images, "-o", Path.Combine(dir, "q.onnx"), "--method", "magic");
        Assert.Equal(2, code);
        Assert.Contains("--method must be minmax, percentile or entropy", err);

        (code, _, err) = Run("quantize", "--model", Path.Combine(dir, "none.onnx"), "--calibration", images, "-o", Path.Combine(dir, "q.onnx"));
        Assert.Equal(2, code);
        Assert.Contains("none.onnx' does not exist", err);
    }
}
