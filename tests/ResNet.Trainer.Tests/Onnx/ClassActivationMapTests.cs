using Onnx;
using ResNet.Scoring.Quantization;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using ResNet.Trainer.Training;

namespace ResNet.Trainer.Tests.Onnx;

/// <summary>
/// A synthetic image folder where each class is a bright blob in its own quadrant of a 32x32 noise image (the blob's
/// centre drawn at random inside the quadrant), a ResNet-8 trained on it briefly with the real trainer (no flips or
/// crops, which would move the blob to another quadrant), exported with the activations output, and that export
/// quantized to INT8 twice: at the default settings, and with the classifier quantized too.
/// </summary>
public sealed class QuadrantBlobFixture : IDisposable
{
    public const int Size = 32;
    public static readonly string[] Quadrants = ["top-left", "top-right", "bottom-left", "bottom-right"];

    public string Folder { get; } = TestData.TempDir();
    public string TestFolder => Path.Combine(Folder, "test");
    public byte[] FloatModel { get; }
    public byte[] QuantizedModel { get; }
    public byte[] QuantizedClassifierModel { get; }
    /// <summary>Test images with the quadrant (index into <see cref="Quadrants"/>) holding their blob.</summary>
    public List<(string File, int Quadrant)> TestImages { get; } = [];
    public float[][] TestPixels { get; }

    public QuadrantBlobFixture()
    {
        var random = new Random(7);
        Write(Path.Combine(Folder, "train"), 48, random, null);
        Write(TestFolder, 8, random, TestImages);

        var data = InMemoryImages.From(ImageFolderSource.Scan(Path.Combine(Folder, "train"), new ImageFolderOptions { Channels = 3 }));
        var spec = ResNetSpec.Parse("resnet8") with { InputChannels = 3, NumClasses = data.ClassNames.Count };
        var options = Recipes.FastCpu() with
        {
            Length = TrainingLength.Epochs(8), BatchSize = 32, ImageSize = Size, Seed = 1, Threads = 2,
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
        var calibration = Directory.GetFiles(Path.Combine(Folder, "train"), "*.png", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Where((_, i) => i % 4 == 0).Select(f => ImageTensors.Load(f, 3, Size, Size, PixelRange.ZeroToOne)).ToList();
        QuantizedModel = OnnxQuantizer.Quantize(FloatModel, calibration).Model;
        QuantizedClassifierModel = OnnxQuantizer.Quantize(FloatModel, calibration, new QuantizationOptions { KeepClassifierFloat = false }).Model;
        TestPixels = TestImages.Select(t => ImageTensors.Load(t.File, 3, Size, Size, PixelRange.ZeroToOne)).ToArray();
    }

    // Gray noise everywhere; a white Gaussian blob (sigma 2.5 px) centred at least 5 px inside its quadrant.
    private static void Write(string root, int perClass, Random random, List<(string, int)>? list)
    {
        for (int q = 0; q < Quadrants.Length; q++)
        {
            string dir = Path.Combine(root, Quadrants[q]);
            Directory.CreateDirectory(dir);
            for (int i = 0; i < perClass; i++)
            {
                int half = Size / 2;
                double cx = (q % 2) * half + 5 + random.NextDouble() * (half - 10);
                double cy = (q / 2) * half + 5 + random.NextDouble() * (half - 10);
                var pixels = new byte[Size * Size * 3];
                for (int y = 0; y < Size; y++)
                    for (int x = 0; x < Size; x++)
                    {
                        double blob = 255 * Math.Exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (2 * 2.5 * 2.5));
                        for (int c = 0; c < 3; c++)
                            pixels[(y * Size + x) * 3 + c] = (byte)Math.Clamp(random.Next(0, 140) + blob, 0, 255);
                    }
                string file = Path.Combine(dir, $"{i:D3}.png");
                ImageDecoder.SavePng(new RawImage(pixels, Size, Size, 3), file);
                list?.Add((file, q));
            }
        }
    }

    /// <summary>The quadrant (index into <see cref="Quadrants"/>) of a map's largest value.</summary>
    public static int PeakQuadrant(ReadOnlySpan<float> map, int height, int width)
    {
        int best = 0;
        for (int i = 1; i < map.Length; i++) if (map[i] > map[best]) best = i;
        int y = best / width, x = best % width;
        return (y >= height / 2 ? 2 : 0) + (x >= width / 2 ? 1 : 0);
    }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}

public class ClassActivationMapTests(QuadrantBlobFixture blobs) : IClassFixture<QuadrantBlobFixture>
{
    private int ClassOf(OnnxScorer scorer, int quadrant) => scorer.Info.ClassNames.ToList().IndexOf(QuadrantBlobFixture.Quadrants[quadrant]);

    // The quadrant where each test image's own class's map peaks.
    private int[] Peaks(byte[] model, out OnnxScorer scorer)
    {
        scorer = new OnnxScorer(model);
        var result = scorer.Score(blobs.TestPixels, activations: true);
        var shape = scorer.ActivationShape;
        var peaks = new int[blobs.TestImages.Count];
        for (int i = 0; i < peaks.Length; i++)
            peaks[i] = QuadrantBlobFixture.PeakQuadrant(scorer.ClassActivationMap(result, i, ClassOf(scorer, blobs.TestImages[i].Quadrant)), shape.Height, shape.Width);
        return peaks;
    }

    [Fact]
    public void HeatMapOfAClass_PeaksInTheQuadrantWhereTheImagePutsItsPattern()
    {
        var peaks = Peaks(blobs.FloatModel, out var scorer);
        using (scorer)
        {
            // ResNet-8 at 32x32: 32 -> 16 -> 8, so an 8x8 map of 64 channels.
            Assert.Equal(new ActivationShape(64, 8, 8), scorer.ActivationShape);
            int right = peaks.Where((p, i) => p == blobs.TestImages[i].Quadrant).Count();
            // 32 test images; chance would put a quarter of the peaks in the right quadrant. Require 28 (87.5%).
            Assert.True(right >= 28, $"the heat map of the image's class peaked in its pattern's quadrant for {right} of {peaks.Length} test images");
        }
    }

    [Fact]
    public void HeatMapMean_IsTheLogitLessTheBias()
    {
        // The identity that pins the weights' orientation: mean over the map of sum_c W[k,c] A[c] = W[k] . GAP(A) = logit_k - b_k.
        using var scorer = new OnnxScorer(blobs.FloatModel);
        var bias = ModelProto.Parser.ParseFrom(blobs.FloatModel).Graph.Initializer.Single(t => t.Name == "fc.bias");
        float[] b = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bias.RawData.Span).ToArray();
        var result = scorer.Score(blobs.TestPixels.Take(4).ToList(), activations: true);
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
        var floatPeaks = Peaks(blobs.FloatModel, out var floatScorer);
        using (floatScorer)
        {
            var floatOutputs = ModelProto.Parser.ParseFrom(blobs.FloatModel).Graph.Output.Select(o => o.Name).ToArray();
            Assert.Contains(OnnxNames.ActivationsOutput, floatOutputs);
            foreach (var model in new[] { blobs.QuantizedModel, blobs.QuantizedClassifierModel })
            {
                Assert.Equal(floatOutputs, ModelProto.Parser.ParseFrom(model).Graph.Output.Select(o => o.Name));
                var peaks = Peaks(model, out var scorer);
                using (scorer)
                {
                    Assert.Equal(floatScorer.ActivationShape, scorer.ActivationShape);
                    int same = peaks.Where((p, i) => p == floatPeaks[i]).Count();
                    // 32 test images: at most two may peak in another quadrant than the float model's.
                    Assert.True(same >= 30, $"INT8 heat maps peaked in the float model's quadrant for {same} of {peaks.Length} test images");
                }
            }
        }
    }

    [Fact]
    public void Overlay_WrittenAsPng_IsTheImageSize_AndReddestWhereTheMapPeaks()
    {
        using var scorer = new OnnxScorer(blobs.FloatModel);
        var result = scorer.Score(blobs.TestPixels, activations: true);
        var shape = scorer.ActivationShape;
        int agree = 0;
        for (int i = 0; i < blobs.TestImages.Count; i++)
        {
            var map = scorer.ClassActivationMap(result, i, result.ArgMax(i));
            string png = Path.Combine(blobs.Folder, $"overlay-{i}.png");
            ImageDecoder.SavePng(HeatMap.Overlay(ImageDecoder.Decode(blobs.TestImages[i].File, 3), map, shape.Height, shape.Width), png);
            var back = ImageDecoder.Decode(png, 3);
            Assert.Equal((QuadrantBlobFixture.Size, QuadrantBlobFixture.Size), (back.Width, back.Height));
            // Red minus blue per pixel: the overlay's ramp runs from blue (map minimum) to red (map maximum).
            var redness = new float[back.Width * back.Height];
            for (int p = 0; p < redness.Length; p++) redness[p] = back.Pixels[3 * p] - back.Pixels[3 * p + 2];
            Assert.True(redness.Max() - redness.Min() > 100, $"overlay {i} shows no heat map (red-blue spread {redness.Max() - redness.Min()})");
            if (QuadrantBlobFixture.PeakQuadrant(redness, back.Height, back.Width) == QuadrantBlobFixture.PeakQuadrant(map, shape.Height, shape.Width)) agree++;
        }
        // Upsampling smooths the peak, and the noise under the tint shifts the reddest pixel a little: allow 2 of 32.
        Assert.True(agree >= 30, $"the PNG's reddest pixel was in the map's peak quadrant for {agree} of {blobs.TestImages.Count} images");
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
    [InlineData("resnet18-cntk", 70, 70)]
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
