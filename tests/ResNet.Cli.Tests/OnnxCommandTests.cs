using static ResNet.Cli.Tests.Cli;
using System.Text.Json;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using SkiaSharp;

namespace ResNet.Cli.Tests;

public class OnnxCommandTests
{
    private static string NewDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "resnet-cli-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string WritePng(string path, SKColor color, int w, int h)
    {
        using var bmp = new SKBitmap(w, h);
        bmp.Erase(color);
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }

    // A trained-weights file of a 3-class ResNet-20 and the class names it was trained with.
    private static (string Dir, string Weights, string Names) TrainedFiles()
    {
        string dir = NewDir();
        using var model = new Trainer.Models.ResNetModel(ResNetSpec.ResNet20() with { NumClasses = 3 }, seed: 1);
        string weights = Path.Combine(dir, "resnet20.dat");
        ResNetWeights.Save(model, weights);
        string names = Path.Combine(dir, "classes.txt");
        File.WriteAllLines(names, ["apple", "banana", "cherry"]);
        return (dir, weights, names);
    }

    [Fact]
    public void Export_ThenPredict_PrintsTopKTableAndJson()
    {
        var (dir, weights, names) = TrainedFiles();
        string onnx = Path.Combine(dir, "m.onnx");
        var (code, output, err) = Run("export", "--arch", "resnet20", "--weights", weights, "--class-names", names, "-o", onnx,
            "--mean", "0.49,0.48,0.45", "--std", "0.25,0.24,0.26");
        Assert.True(code == 0, err);
        Assert.Contains("3 classes", output);

        using (var scorer = new OnnxScorer(onnx))
        {
            Assert.Equal(["apple", "banana", "cherry"], scorer.Info.ClassNames);
            Assert.Equal(0.48f, scorer.Info.Normalization.Mean[1]);
        }

        string images = Path.Combine(dir, "images");
        Directory.CreateDirectory(Path.Combine(images, "sub"));
        WritePng(Path.Combine(images, "red.png"), SKColors.Red, 40, 30);
        WritePng(Path.Combine(images, "sub", "blue.png"), SKColors.Blue, 32, 32);

        (code, output, err) = Run("predict", "--model", onnx, images, "--top", "2");
        Assert.True(code == 0, err);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("image", lines[0]);
        Assert.Equal(1 + 2 * 2, lines.Length);
        Assert.Contains("red.png", output);
        Assert.Contains("blue.png", output);

        (code, output, err) = Run("predict", "--model", onnx, Path.Combine(images, "red.png"), "--json", "-k", "3");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        var predictions = doc.RootElement[0].GetProperty("predictions");
        Assert.Equal(3, predictions.GetArrayLength());
        float sum = predictions.EnumerateArray().Sum(p => p.GetProperty("probability").GetSingle());
        Assert.Equal(1f, sum, 3);
        Assert.Contains(predictions[0].GetProperty("label").GetString(), new[] { "apple", "banana", "cherry" });
    }

    [Fact]
    public void Export_ClassCountMismatch_ExitsWithTwoAndSaysWhy()
    {
        var (dir, weights, names) = TrainedFiles();
        var (code, _, err) = Run("export", "--arch", "resnet20", "--weights", weights, "--class-names", names, "--classes", "4", "-o", Path.Combine(dir, "x.onnx"));
        Assert.Equal(2, code);
        Assert.Contains("3 class names", err);
        // Weights of a 3-class model do not load into a 10-class one.
        (code, _, err) = Run("export", "--arch", "resnet20", "--weights", weights, "-o", Path.Combine(dir, "y.onnx"));
        Assert.Equal(2, code);
        Assert.Contains("fc.weight", err);
    }

    [Fact]
    public void Predict_BadModelOrLabels_ExitsWithTwoAndNamesTheInput()
    {
        var (dir, weights, names) = TrainedFiles();
        string onnx = Path.Combine(dir, "m.onnx");
        Assert.Equal(0, Run("export", "--arch", "resnet20", "--weights", weights, "--class-names", names, "-o", onnx).Code);
        string image = WritePng(Path.Combine(dir, "g.png"), SKColors.Green, 32, 32);

        string twoLabels = Path.Combine(dir, "two.txt");
        File.WriteAllLines(twoLabels, ["a", "b"]);
        var (code, _, err) = Run("predict", "--model", onnx, "--labels", twoLabels, image);
        Assert.Equal(2, code);
        Assert.Contains("2 class names", err);

        string notOnnx = Path.Combine(dir, "notes.onnx");
        File.WriteAllText(notOnnx, "not a model");
        (code, _, err) = Run("predict", "--model", notOnnx, image);
        Assert.Equal(2, code);
        Assert.Contains(notOnnx, err);

        (code, _, err) = Run("predict", "--model", onnx, Path.Combine(dir, "missing.png"));
        Assert.Equal(2, code);
        Assert.Contains("missing.png", err);
    }

    [Fact]
    public void PredictExplain_WritesOneHeatMapPngPerImage_AtTheImagesSize()
    {
        var (dir, weights, names) = TrainedFiles();
        string onnx = Path.Combine(dir, "m.onnx");
        Assert.Equal(0, Run("export", "--arch", "resnet20", "--weights", weights, "--class-names", names, "-o", onnx).Code);
        using (var scorer = new OnnxScorer(onnx))
            Assert.Equal(new ActivationShape(64, 8, 8), scorer.ActivationShape); // on by default; 32 -> 32 -> 16 -> 8

        // Two images of the same name in different folders, and one that is not square.
        string images = Path.Combine(dir, "images");
        Directory.CreateDirectory(Path.Combine(images, "a"));
        Directory.CreateDirectory(Path.Combine(images, "b"));
        using (var bmp = new SKBitmap(40, 30))
        {
            for (int y = 0; y < 30; y++)
                for (int x = 0; x < 40; x++)
                    bmp.SetPixel(x, y, x < 20 ? SKColors.White : new SKColor((byte)(x * 6), (byte)(y * 8), 40));
            using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Path.Combine(images, "a", "x.png"), data.ToArray());
        }
        WritePng(Path.Combine(images, "b", "x.png"), SKColors.Blue, 32, 32);

        string explain = Path.Combine(dir, "explain");
        var (code, output, err) = Run("predict", "--model", onnx, images, "--explain", explain, "--json");
        Assert.True(code == 0, err);
        using var doc = JsonDocument.Parse(output);
        var written = doc.RootElement.EnumerateArray().Select(r => r.GetProperty("heat_map").GetString()!).ToArray();
        Assert.Equal(["x.cam.png", "x-2.cam.png"], written.Select(Path.GetFileName));
        Assert.Equal(written.Order(), Directory.GetFiles(explain).Order());
        foreach (var (file, size) in written.Zip(new[] { (40, 30), (32, 32) }))
        {
            var back = ImageDecoder.Decode(file, 3);
            Assert.Equal(size, (back.Width, back.Height));
            // Half the pixels are the heat map's colour over the image: none of them is left as the image's pure white or blue.
            int untouched = Enumerable.Range(0, back.Width * back.Height).Count(i =>
                back.Pixels[3 * i] == 255 && back.Pixels[3 * i + 1] == 255 && back.Pixels[3 * i + 2] == 255 ||
                back.Pixels[3 * i] == 0 && back.Pixels[3 * i + 1] == 0 && back.Pixels[3 * i + 2] == 255);
            Assert.Equal(0, untouched);
        }

        (code, output, err) = Run("predict", "--model", onnx, images, "--explain", explain);
        Assert.True(code == 0, err);
        Assert.Contains("2 PNG file(s)", output);
    }

    [Fact]
    public void PredictExplain_OnAModelWithoutActivations_ExitsWithTwoNamingTheFix_AndWritesNothing()
    {
        var (dir, weights, names) = TrainedFiles();
        string onnx = Path.Combine(dir, "m.onnx");
        Assert.Equal(0, Run("export", "--arch", "resnet20", "--weights", weights, "--class-names", names, "-o", onnx, "--no-activations").Code);
        using (var scorer = new OnnxScorer(onnx)) Assert.False(scorer.HasActivations);
        string image = WritePng(Path.Combine(dir, "g.png"), SKColors.Green, 32, 32);
        string explain = Path.Combine(dir, "explain");

        var (code, output, err) = Run("predict", "--model", onnx, image, "--explain", explain);
        Assert.Equal(2, code);
        Assert.Contains("'activations' output", err);
        Assert.Contains("resnet export", err);
        Assert.Contains("--no-activations", err);
        Assert.Equal("", output);
        Assert.False(Directory.Exists(explain));

        // Heat maps inside an image folder would be scored next time.
        Directory.CreateDirectory(Path.Combine(dir, "images"));
        WritePng(Path.Combine(dir, "images", "r.png"), SKColors.Red, 32, 32);
        (code, _, err) = Run("predict", "--model", onnx, Path.Combine(dir, "images"), "--explain", Path.Combine(dir, "images", "cam"));
        Assert.Equal(2, code);
        Assert.Contains("--explain", err);
        Assert.Contains("inside the data folder", err);
    }
}
