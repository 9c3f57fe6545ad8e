using Onnx;
using ResNet.Scoring.Quantization;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using ResNet.Trainer.Training;

namespace ResNet.Trainer.Tests.Onnx;

/// <summary>
/// A synthetic image folder of three shapes (a Gaussian blob, a hollow square, a cross) drawn bright on 32x32 noise,
/// each training image holding one shape somewhere in a random quadrant, and a fourth class of noise alone; a ResNet-8 trained on it briefly with the real
/// trainer (no flips or crops), exported with the activations output, and that export quantized to INT8 twice: at the
/// default settings, and with the classifier quantized too. Each test image holds two different shapes in two different
/// quadrants, so a class's heat map has to find its own shape, not just the brightest thing.
/// </summary>
/// <remarks>
/// Classes told apart by position alone (one blob top-left, another bottom-right) do not work for this: global average
/// pooling discards position, so such a network can only tell them apart from border effects, and its maps follow those.
/// </remarks>
public sealed class ShapesFixture : IDisposable
{
    public const int Size = 32;
    public static readonly string[] Shapes = ["blob", "cross", "square"];

    public string Folder { get; } = TestData.TempDir();
    public byte[] FloatModel { get; }
    public byte[] QuantizedModel { get; }
    public byte[] QuantizedClassifierModel { get; }
    /// <summary>Test images; each holds shape A in quadrant QA and shape B in quadrant QB (quadrant: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right).</summary>
    public List<(string File, int ShapeA, int QuadrantA, int ShapeB, int QuadrantB)> TestImages { get; } = [];
    public float[][] TestPixels { get; }

    public ShapesFixture()
    {
        var random = new Random(7);
        string train = Path.Combine(Folder, "train");
        // A noise-only class too: without it one shape's class can be learned as "neither of the others", and its map
        // then marks where the others are not instead of where it is.
        for (int shape = 0; shape <= Shapes.Length; shape++)
            for (int i = 0; i < 48; i++)
            {
                var pixels = Noise(random);
                if (shape < Shapes.Length) Draw(pixels, shape, random.Next(4), random);
                Save(pixels, Path.Combine(train, shape < Shapes.Length ? Shapes[shape] : "noise", $"{i:D3}.png"));
            }
        for (int i = 0; i < 24; i++)
        {
            int a = i % Shapes.Length, b = (a + 1 + random.Next(Shapes.Length - 1)) % Shapes.Length;
            int qa = random.Next(4), qb = (qa + 1 + random.Next(3)) % 4;
            var pixels = Noise(random);
            Draw(pixels, a, qa, random);
            Draw(pixels, b, qb, random);
            string file = Path.Combine(Folder, "test", $"{i:D3}.png");
            Save(pixels, file);
            TestImages.Add((file, a, qa, b, qb));
        }

        var data = InMemoryImages.From(ImageFolderSource.Scan(train, new ImageFolderOptions { Channels = 3 }));
        var spec = ResNetSpec.Parse("resnet8") with { InputChannels = 3, NumClasses = data.ClassNames.Count };
        var options = Recipes.FastCpu() with
        {
            Length = TrainingLength.Epochs(16), BatchSize = 32, ImageSize = Size, Seed = 1, Threads = 2,
            Augmentation = Augmentation.None,
        };
        using var model = new ResNetModel(spec, seed: options.Seed);
        var result = ResNetTrainer.Train(model, data, options: options);
        FloatModel = OnnxExporter.Export(model, new OnnxExportOptions
        {
            ClassNames = result.Card.ClassNames,
            ImageHeight = Size,
            Normalization = result.Card.Normalization.ToInputNormalization(),
            IncludeActivations = true,
        });
        var calibration = Directory.GetFiles(train, "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Where((_, i) => i % 4 == 0).Select(f => ImageTensors.Load(f, 3, Size, Size, PixelRange.ZeroToOne)).ToList();
        QuantizedModel = OnnxQuantizer.Quantize(FloatModel, calibration).Model;
        QuantizedClassifierModel = OnnxQuantizer.Quantize(FloatModel, calibration, new QuantizationOptions { KeepClassifierFloat = false }).Model;
        TestPixels = TestImages.Select(t => ImageTensors.Load(t.File, 3, Size, Size, PixelRange.ZeroToOne)).ToArray();
    }

    private static byte[] Noise(Random random)
    {
        var pixels = new byte[Size * Size * 3];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)random.Next(0, 120);
        return pixels;
    }

    // The shape's centre lies at least 5 px inside its quadrant, so the whole 9x9 shape stays in it.
    private static void Draw(byte[] pixels, int shape, int quadrant, Random random)
    {
        int half = Size / 2;
        int cx = (quadrant % 2) * half + 5 + random.Next(half - 9), cy = (quadrant / 2) * half + 5 + random.Next(half - 9);
        for (int dy = -4; dy <= 4; dy++)
            for (int dx = -4; dx <= 4; dx++)
            {
                double v = shape switch
                {
                    0 => Math.Exp(-(dx * dx + dy * dy) / (2 * 2.0 * 2.0)),       // blob
                    1 => Math.Abs(dx) <= 1 || Math.Abs(dy) <= 1 ? 1 : 0,         // cross
                    _ => Math.Max(Math.Abs(dx), Math.Abs(dy)) >= 3 ? 1 : 0,      // hollow square
                };
                int p = ((cy + dy) * Size + cx + dx) * 3;
                for (int c = 0; c < 3; c++) pixels[p + c] = (byte)Math.Max(pixels[p + c], v * 255);
            }
    }

    private static void Save(byte[] pixels, string file)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        ImageDecoder.SavePng(new RawImage(pixels, Size, Size, 3), file);
    }

    /// <summary>The quadrant (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) of a map's largest value.</summary>
    public static int PeakQuadrant(ReadOnlySpan<float> map, int height, int width)
    {
        int best = 0;
        for (int i = 1; i < map.Length; i++) if (map[i] > map[best]) best = i;
        int y = best / width, x = best % width;
        return (y >= height / 2 ? 2 : 0) + (x >= width / 2 ? 1 : 0);
    }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

public class ClassActivationMapTests(ShapesFixture shapes) : IClassFixture<ShapesFixture>
{
    private static int ClassOf(OnnxScorer scorer, int shape) => scorer.Info.ClassNames.ToList().IndexOf(ShapesFixture.Shapes[shape]);

    // For each test image, where the heat maps of its two shapes' classes peak.
    private (int A, int B)[] Peaks(byte[] model, out OnnxScorer scorer)
    {
        scorer = new OnnxScorer(model);
        var result = scorer.Score(shapes.TestPixels, activations: true);
        var (h, w) = (scorer.ActivationShape.Height, scorer.ActivationShape.Width);
        var peaks = new (int, int)[shapes.TestImages.Count];
        for (int i = 0; i < peaks.Length; i++)
        {
            var t = shapes.TestImages[i];
            peaks[i] = (ShapesFixture.PeakQuadrant(scorer.ClassActivationMap(result, i, ClassOf(scorer, t.ShapeA)), h, w),
                        ShapesFixture.PeakQuadrant(scorer.ClassActivationMap(result, i, ClassOf(scorer, t.ShapeB)), h, w));
        }
        return peaks;
    }

    [Fact]
    public void HeatMapOfAClass_PeaksInTheQuadrantWhereTheImagePutsThatClassesShape()
    {
        var peaks = Peaks(shapes.FloatModel, out var scorer);
        using (scorer)
        {
            // ResNet-8 at 32x32: 32 -> 16 -> 8, so an 8x8 map of 64 channels.
            Assert.Equal(new ActivationShape(64, 8, 8), scorer.ActivationShape);
            int right = Enumerable.Range(0, peaks.Length).Sum(i =>
                (peaks[i].A == shapes.TestImages[i].QuadrantA ? 1 : 0) + (peaks[i].B == shapes.TestImages[i].QuadrantB ? 1 : 0));
            // 24 images x 2 shapes; chance puts a quarter of the peaks in the right quadrant (12). Require 42 of 48 (87.5%).
            Assert.True(right >= 42, $"a class's heat map peaked in the quadrant of that class's shape for {right} of {2 * peaks.Length} shapes");
        }
    }

    [Fact]
    public void HeatMapMean_IsTheLogitLessTheBias()
    {
        // The identity that pins the weights' orientation: mean over the map of sum_c W[k,c] A[c] = W[k] . GAP(A) = logit_k - b_k.
        using var scorer = new OnnxScorer(shapes.FloatModel);
        var bias = ModelProto.Parser.ParseFrom(shapes.FloatModel).Graph.Initializer.Single(t => t.Name == "fc.bias");
        float[] b = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bias.RawData.Span).ToArray();
        var result = scorer.Score(shapes.TestPixels.Take(4).ToList(), activations: true);
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < scorer.Info.ClassCount; k++)
            {
                float mean = scorer.ClassActivationMap(result, i, k).Average();
                Assert.Equal(result.LogitsOf(i)[k] - b[k], mean, 3e-4f);
            }
    }

    [Fact]
    public void QuantizedModels_KeepEveryOutput_AndTheirHeatMapsPeakWhereTheFloatModelsDo()
    {
        var floatPeaks = Peaks(shapes.FloatModel, out var floatScorer);
        using (floatScorer)
        {
            var floatOutputs = ModelProto.Parser.ParseFrom(shapes.FloatModel).Graph.Output.Select(o => o.Name).ToArray();
            Assert.Contains(OnnxNames.ActivationsOutput, floatOutputs);
            foreach (var model in new[] { shapes.QuantizedModel, shapes.QuantizedClassifierModel })
            {
                Assert.Equal(floatOutputs, ModelProto.Parser.ParseFrom(model).Graph.Output.Select(o => o.Name));
                var peaks = Peaks(model, out var scorer);
                using (scorer)
                {
                    Assert.Equal(floatScorer.ActivationShape, scorer.ActivationShape);
                    int same = Enumerable.Range(0, peaks.Length).Sum(i => (peaks[i].A == floatPeaks[i].A ? 1 : 0) + (peaks[i].B == floatPeaks[i].B ? 1 : 0));
                    // 48 maps (24 images x 2 classes): at most three may peak in another quadrant than the float model's.
                    Assert.True(same >= 45, $"INT8 heat maps peaked in the float model's quadrant for {same} of {2 * peaks.Length} maps");
                }
            }
        }
    }

    [Fact]
    public void Overlay_WrittenAsPng_IsTheImageSize_AndReddestWhereTheMapPeaks()
    {
        using var scorer = new OnnxScorer(shapes.FloatModel);
        var result = scorer.Score(shapes.TestPixels, activations: true);
        var shape = scorer.ActivationShape;
        int agree = 0;
        for (int i = 0; i < shapes.TestImages.Count; i++)
        {
            var map = scorer.ClassActivationMap(result, i, result.ArgMax(i));
            string png = Path.Combine(shapes.Folder, $"overlay-{i}.png");
            ImageDecoder.SavePng(HeatMap.Overlay(ImageDecoder.Decode(shapes.TestImages[i].File, 3), map, shape.Height, shape.Width), png);
            var back = ImageDecoder.Decode(png, 3);
            Assert.Equal((ShapesFixture.Size, ShapesFixture.Size), (back.Width, back.Height));
            // Red minus blue per pixel: the overlay's ramp runs from blue (map minimum) to red (map maximum).
            var redness = new float[back.Width * back.Height];
            for (int p = 0; p < redness.Length; p++) redness[p] = back.Pixels[3 * p] - back.Pixels[3 * p + 2];
            Assert.True(redness.Max() - redness.Min() > 100, $"overlay {i} shows no heat map (red-blue spread {redness.Max() - redness.Min()})");
            if (ShapesFixture.PeakQuadrant(redness, back.Height, back.Width) == ShapesFixture.PeakQuadrant(map, shape.Height, shape.Width)) agree++;
        }
        // Upsampling smooths the peak, and the noise under the tint shifts the reddest pixel a little: allow 2 of 24.
        Assert.True(agree >= 22, $"the PNG's reddest pixel was in the map's peak quadrant for {agree} of {shapes.TestImages.Count} images");
    }

    [Fact]
    public void ModelWithoutActivations_RefusesHeatMaps_NamingTheExportOption()
    {
        using var model = new ResNetModel(ResNetSpec.ResNet20() with { NumClasses = 3 }, seed: 1);
        using var scorer = new OnnxScorer(OnnxExporter.Export(model));
        Assert.False(scorer.HasActivations);
        var ex = Assert.Throws<InvalidOperationException>(() => scorer.Score(new float[3 * 32 * 32], 1, activations: true));
        Assert.Contains("IncludeActivations", ex.Message, StringComparison.Ordinal);
        var plain = scorer.Score(new float[3 * 32 * 32], 1);
        Assert.Throws<InvalidOperationException>(() => scorer.ClassActivationMap(plain, 0, 0));
    }
}

public class ActivationsExportTests
{
    // Symmetric padding (CIFAR, ImageNet) and CNTK's asymmetric padding, at sizes that do and do not divide evenly.
    [Theory]
    [InlineData("resnet20", 32, 32)]
    [InlineData("resnet18", 64, 80)]
    [InlineData("resnet18-cntk", 96, 64)]
    [InlineData("resnet18-cntk", 70, 71)]
    public void Activations_HaveThePlannedShape_AndAverageToTheFeatures(string arch, int height, int width)
    {
        var spec = arch == "resnet18-cntk" ? ResNetSpec.ResNet18() with { Padding = PaddingStyle.CntkAsymmetric, NumClasses = 5 } : ResNetSpec.Parse(arch) with { NumClasses = 5 };
        using var model = new ResNetModel(spec, seed: 3);
        model.eval();
        var bytes = OnnxExporter.Export(model, new OnnxExportOptions { ImageHeight = height, ImageWidth = width, IncludeActivations = true });
        using var scorer = new OnnxScorer(bytes);
        var (h, w) = ResNetPlan.OutputSize(spec, height, width);
        Assert.Equal(new ActivationShape(spec.FeatureCount, h, w), scorer.ActivationShape);
        var random = new Random(5);
        var images = Enumerable.Range(0, 2).Select(_ => Enumerable.Range(0, scorer.ImageLength).Select(_ => random.NextSingle()).ToArray()).ToList();
        var r = scorer.Score(images, features: true, activations: true);
        for (int i = 0; i < 2; i++)
        {
            var a = r.ActivationsOf(i);
            for (int c = 0; c < spec.FeatureCount; c++)
            {
                float mean = 0;
                foreach (float v in a.Slice(c * h * w, h * w)) mean += v;
                float expected = r.Features![i * spec.FeatureCount + c];
                Assert.Equal(expected, mean / (h * w), 1e-4f * Math.Max(1f, Math.Abs(expected)));
            }
        }
    }

    [Fact]
    public void ExportWithActivations_PassesOnnxChecker_AndRoundTripsThroughTheImporter()
    {
        using var model = new ResNetModel(ResNetSpec.ResNet20() with { NumClasses = 4 }, seed: 2);
        model.eval();
        var options = new OnnxExportOptions { IncludeActivations = true, ClassNames = ["a", "b", "c", "d"] };
        var bytes = OnnxExporter.Export(model, options);
        string dir = TestData.TempDir();
        try
        {
            string file = Path.Combine(dir, "m.onnx");
            File.WriteAllBytes(file, bytes);
            OnnxChecker.AssertFullCheckPasses([file]);
            var imported = OnnxImporter.Import(file);
            using (imported.Model)
            {
                Assert.True(imported.HasActivationsOutput);
                Assert.Equal(bytes, OnnxExporter.Export(imported.Model, imported.ExportOptions));
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
