using Microsoft.ML.OnnxRuntime;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using SkiaSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static ResNet.Trainer.Tests.Onnx.OnnxTestModels;

namespace ResNet.Trainer.Tests.Onnx;

public class OnnxImportTests(ITestOutputHelper output)
{
    private static readonly string FeaturizerDir = Path.Combine(AppContext.BaseDirectory, "DnnImageModels");
    private static string ResNet18Onnx => Path.Combine(FeaturizerDir, "ResNet18Onnx", "ResNet18.onnx");
    private static string PreprocessOnnx => Path.Combine(FeaturizerDir, "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    [Theory]
    [InlineData("resnet20", null, false)]
    [InlineData("resnet18", ShortcutOption.C, false)]
    [InlineData("resnet50-paper", null, false)]
    [InlineData("plain20", null, false)]
    [InlineData("resnet20", null, true)]
    [InlineData("resnet8-w24-s2", null, false)]
    public void ExportImportExport_GivesIdenticalBytes(string arch, ShortcutOption? shortcut, bool meanImage)
    {
        var spec = Spec(arch, shortcut, classes: 5) with { ZeroInitResidual = arch == "plain20" };
        int size = spec.Stem == StemKind.ImageNet ? 64 : 32;
        using var model = Trained(spec, seed: 11, imageSize: size);
        var norm = meanImage
            ? new InputNormalization(PixelRange.ZeroTo255, [0f, 0f, 0f], [50f, 51f, 52f], ChannelOrder.Bgr, Floats(rand([3, size, size]) * 200))
            : InputNormalization.ImageNet;
        var options = new OnnxExportOptions { ClassNames = ["cat", "dog", "ship", "truck", "frog"], ImageHeight = size, Normalization = norm };
        byte[] first = OnnxExporter.Export(model, options);

        var imported = OnnxImporter.Import(first);
        using var reimported = imported.Model;
        Assert.Equal(spec.Name, reimported.Spec.Name);
        Assert.Equal(["cat", "dog", "ship", "truck", "frog"], imported.Info.ClassNames);
        Assert.Equal(norm.Range, imported.Info.Normalization.Range);
        byte[] second = OnnxExporter.Export(reimported, imported.ExportOptions);

        Assert.Equal(first.Length, second.Length);
        Assert.True(first.AsSpan().SequenceEqual(second), "re-exported bytes differ");
        // Determinism: exporting the same weights again gives the same bytes.
        Assert.True(first.AsSpan().SequenceEqual(OnnxExporter.Export(model, options)));
    }

    [Fact]
    public void ImportedModel_ComputesWhatTheOriginalComputes_AlsoFromBatchNormFoldedFiles()
    {
        var spec = Spec("resnet18", classes: 4);
        using var model = Trained(spec, seed: 12, imageSize: 64);
        using var x = Images(3, 3, 64, seed: 1);
        using var expected = model.forward(x);
        foreach (bool fold in new[] { false, true })
        {
            var imported = OnnxImporter.Import(OnnxExporter.Export(model, new OnnxExportOptions { ImageHeight = 64, FoldBatchNorm = fold }));
            using var m = imported.Model;
            using var actual = m.forward(x);
            float diff = MaxAbsDiff(Floats(expected), Floats(actual));
            output.WriteLine($"fold {fold}: max |diff| = {diff:E2}");
            Assert.True(diff <= 1e-4f, $"fold {fold}: {diff}");
        }
    }

    // A foreign file: torchvision's resnet18 exported by PyTorch 1.13 (BN folded into biased convolutions).
    [Fact]
    public void TorchvisionResNet18ExportedByPyTorch_ImportsAndMatchesPyTorchsLogits()
    {
        string dir = TempDir();
        string onnx = Path.Combine(dir, "tv.onnx"), xFile = Path.Combine(dir, "x.bin"), yFile = Path.Combine(dir, "y.bin");
        const string script = @"import sys, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet18(num_classes=10)
with torch.no_grad():
    m.train()
    for _ in range(2): m(torch.rand(4, 3, 64, 64) * 2)
m.eval()
x = torch.rand(3, 3, 64, 64)
with torch.no_grad(): y = m(x)
torch.onnx.export(m, x, sys.argv[1], opset_version=13, input_names=['input'], output_names=['logits'], dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}})
x.numpy().astype('<f4').tofile(sys.argv[2]); y.numpy().astype('<f4').tofile(sys.argv[3])
";
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-c", script, onnx, xFile, yFile }) psi.ArgumentList.Add(a);
        using (var p = System.Diagnostics.Process.Start(psi)!)
        {
            p.StandardOutput.ReadToEnd();
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"PyTorch export failed (needs Debian's python3-torch and python3-torchvision): {err}");
        }
        float[] x = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(xFile)).ToArray();
        float[] expected = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(yFile)).ToArray();

        var imported = OnnxImporter.Import(onnx);
        using var model = imported.Model;
        Assert.Equal([2, 2, 2, 2], model.Spec.StageDepths);
        Assert.Equal(ShortcutOption.B, model.Spec.Shortcut);
        Assert.Equal(10, model.Spec.NumClasses);
        using var input = tensor(x, [3, 3, 64, 64]);
        using var logits = model.forward(input);
        float diff = MaxAbsDiff(expected, Floats(logits));
        output.WriteLine($"torchvision resnet18 via PyTorch 1.13 ONNX export: max |logits diff| = {diff:E2}");
        Assert.True(diff <= 1e-4f, $"max abs diff {diff}");
    }

    [Fact]
    public void DnnImageFeaturizerResNet18_ImportsAsTheCntkSpec()
    {
        var imported = OnnxImporter.ImportDnnImageFeaturizer(ResNet18Onnx, PreprocessOnnx, numClasses: 10);
        using var model = imported.Model;
        var spec = model.Spec;
        Assert.Equal([2, 2, 2, 3], spec.StageDepths);
        Assert.Equal([64, 128, 256, 512], spec.StageWidths);
        Assert.Equal(ShortcutOption.B, spec.Shortcut);
        Assert.Equal(PaddingStyle.CntkAsymmetric, spec.Padding);
        Assert.Equal(StemKind.ImageNet, spec.Stem);
        Assert.False(imported.HasClassifier);
        Assert.Equal(10, spec.NumClasses);
        Assert.Equal(ChannelOrder.Bgr, imported.Info.Normalization.NetworkOrder);
        Assert.Equal(PixelRange.ZeroTo255, imported.Info.Normalization.Range);
        Assert.Equal(3 * 224 * 224, imported.Info.Normalization.MeanImage!.Count);
        Assert.Equal((224, 224), (imported.Info.Height, imported.Info.Width));
    }

    [Fact]
    public void DnnImageFeaturizerResNet18_FeaturesEqualOnnxRuntimesRunOfTheOriginalFiles()
    {
        var imported = OnnxImporter.ImportDnnImageFeaturizer(ResNet18Onnx, PreprocessOnnx);
        using var model = imported.Model;
        string dir = TempDir();
        var files = Enumerable.Range(0, 4).Select(i => DrawImage(Path.Combine(dir, $"scene{i}.png"), i)).ToList();

        using var prep = new InferenceSession(PreprocessOnnx);
        using var trunk = new InferenceSession(ResNet18Onnx);
        foreach (var file in files)
        {
            float[] pixels = ImageTensors.Load(file, 3, 224, 224, PixelRange.ZeroTo255);
            using var input = OrtValue.CreateTensorValueFromMemory(pixels, [1, 3, 224, 224]);
            using var prepared = prep.Run(new RunOptions(), ["OriginalInput"], [input], ["PreprocessedInput"]);
            using var features = trunk.Run(new RunOptions(), [trunk.InputNames[0]], [prepared[0]], [trunk.OutputNames[0]]);
            float[] reference = features[0].GetTensorDataAsSpan<float>().ToArray();

            float[] ours;
            using (no_grad())
            using (var x = tensor(pixels, [1, 3, 224, 224]))
            using (var normalized = imported.Info.Normalization.Apply(x))
            using (var f = model.Features(normalized))
                ours = Floats(f);

            float largest = reference.Max(MathF.Abs);
            float diff = MaxAbsDiff(reference, ours);
            output.WriteLine($"{Path.GetFileName(file)}: max |feature| = {largest:F3}, max |diff| = {diff:E2} ({diff / largest:E2} of the largest)");
            Assert.True(largest > 0.1f, "features are all near zero");
            Assert.True(diff <= 1e-3f * largest, $"{file}: max abs diff {diff} > 1e-3 x {largest}");
        }
    }

    // Deterministic colour scenes: gradients, discs and bars, so channel order and the mean image matter.
    private static string DrawImage(string path, int seed)
    {
        var rng = new Random(seed);
        int w = 180 + 40 * seed, h = 240 - 20 * seed;
        using var bitmap = new SKBitmap(w, h);
        using (var canvas = new SKCanvas(bitmap))
        {
            using var shader = SKShader.CreateLinearGradient(new SKPoint(0, 0), new SKPoint(w, h),
                [new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)), new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256))],
                SKShaderTileMode.Clamp);
            using var background = new SKPaint { Shader = shader };
            canvas.DrawRect(0, 0, w, h, background);
            for (int i = 0; i < 12; i++)
            {
                using var paint = new SKPaint { Color = new SKColor((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256)), IsAntialias = true };
                if (i % 2 == 0) canvas.DrawCircle(rng.Next(w), rng.Next(h), 5 + rng.Next(40), paint);
                else canvas.DrawRect(rng.Next(w), rng.Next(h), 4 + rng.Next(60), 4 + rng.Next(20), paint);
            }
        }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }
}
