using System.Diagnostics;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using ResNet.Scoring.Quantization;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using ResNet.Trainer.Tests.Onnx;

namespace ResNet.Trainer.Tests.Quantization;

public class TrainedModelQuantizationTests(QuantizationFixture trained) : IClassFixture<QuantizationFixture>
{
    [Fact]
    public void TrainedResNet20_LosesAtMostOnePointAndAgreesOn97Percent()
    {
        var c = QuantizedModelComparison.Compare(trained.FloatModel, trained.QuantizedModel, QuantizationFixture.Test);
        Assert.Equal(300, c.Count);
        Assert.InRange(c.FloatAccuracy, 0.6, 1.0); // a trained model, not chance (0.1)
        Assert.True(c.AccuracyDeltaPoints >= -1.0, $"fp32 {c.FloatAccuracy:P2}, int8 {c.QuantizedAccuracy:P2}");
        Assert.True(c.Agreement >= 0.97, $"top-1 agreement {c.Agreement:P2}");
    }

    [Fact]
    public void TrainedResNet20_QuantizedFile_KeepsOutputsAndMetadata_AndIsAQuarterOfTheSize()
    {
        var f = ModelProto.Parser.ParseFrom(File.ReadAllBytes(trained.FloatModel));
        var q = ModelProto.Parser.ParseFrom(File.ReadAllBytes(trained.QuantizedModel));
        Assert.Equal(f.Graph.Output.Select(o => o.Name), q.Graph.Output.Select(o => o.Name));
        Assert.Equal(f.Graph.Input.Select(o => o.Name), q.Graph.Input.Select(o => o.Name));
        foreach (var p in f.MetadataProps.Where(p => p.Key != OnnxMetadataKeys.BatchNormFolded))
            Assert.Equal(p.Value, q.MetadataProps.Single(x => x.Key == p.Key).Value);
        Assert.Contains("\"calibration_images\":1000", q.MetadataProps.Single(p => p.Key == OnnxQuantizer.MetadataKey).Value);
        Assert.Equal(19, trained.Summary.FoldedBatchNorms);               // every conv of ResNet-20 has its BN
        Assert.Equal(18 + 9, trained.Summary.QuantizedNodes);             // 18 of 19 convs, 9 residual adds
        Assert.Equal(["conv1", "fc"], trained.Summary.FloatNodes);        // first conv and classifier stay float by default
        Assert.DoesNotContain(q.Graph.Node, n => n.OpType is "BatchNormalization");
        Assert.Equal(18, q.Graph.Initializer.Count(t => t.DataType == (int)TensorProto.Types.DataType.Int8 && t.Dims.Count == 4));
        // The normalization prefix and the float first convolution come before the first Q.
        Assert.Equal(["Sub", "Div", "Conv", "Relu", "QuantizeLinear"], q.Graph.Node.Take(5).Select(n => n.OpType));
        double ratio = (double)new FileInfo(trained.QuantizedModel).Length / new FileInfo(trained.FloatModel).Length;
        Assert.InRange(ratio, 0.2, 0.3);

        using var scorer = new OnnxScorer(trained.QuantizedModel);
        Assert.Equal(10, scorer.Info.ClassCount);
        Assert.Equal("Ankle_boot", scorer.Info.ClassNames[0]);
        Assert.True(scorer.HasFeatures);
        Assert.Equal(64, scorer.FeatureCount);
    }

    [Fact]
    public void QuantizedModels_PassOnnxCheckerFullCheck()
    {
        string dir = TestData.TempDir();
        var files = new List<string> { trained.QuantizedModel };
        var images = QuantizerTests.RandomImages(24, 3, 32, seed: 3);
        foreach (var (arch, shortcut, options) in new (string, ShortcutOption?, QuantizationOptions)[]
        {
            ("resnet20", null, new QuantizationOptions { Method = CalibrationMethod.Percentile, KeepFirstConvFloat = false }),
            ("resnet18", ShortcutOption.B, new QuantizationOptions { Method = CalibrationMethod.Entropy, KeepClassifierFloat = false }),
            ("resnet50", ShortcutOption.B, new QuantizationOptions()),
        })
        {
            using var model = OnnxTestModels.Trained(OnnxTestModels.Spec(arch, shortcut), seed: 2, imageSize: 32);
            // ResNet-50 without normalization: the image goes straight into the first convolution.
            byte[] fp32 = OnnxExporter.Export(model, new OnnxExportOptions { ImageHeight = 32, IncludePredictedIndex = true, Normalization = arch == "resnet50" ? null : InputNormalization.ImageNet });
            var (int8, _) = OnnxQuantizer.Quantize(fp32, images, options);
            files.Add(Path.Combine(dir, $"{arch}-{options.Method}.onnx"));
            File.WriteAllBytes(files[^1], int8);
        }
        OnnxChecker.AssertFullCheckPasses(files);
    }

    [Fact]
    public void OptimizedQuantizedGraph_RunsEveryConvAndAddAsIntegerOps()
    {
        string optimized = Path.Combine(trained.Folder, "optimized.onnx");
        using (var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, OptimizedModelFilePath = optimized })
        using (new InferenceSession(trained.QuantizedModel, so)) { }
        var ops = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph.Node.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(18, ops.GetValueOrDefault("QLinearConv"));
        Assert.Equal(9, ops.GetValueOrDefault("QLinearAdd"));
        // Only the first convolution (kept float by default) runs in float; one Q after it, one DQ before pooling.
        Assert.Equal(1, ops.GetValueOrDefault("Conv") + ops.GetValueOrDefault("FusedConv"));
        Assert.Equal(1, ops.GetValueOrDefault("QuantizeLinear"));
        Assert.True(ops.GetValueOrDefault("DequantizeLinear") == 1, string.Join(", ", ops));
    }

    [Fact]
    public void AlreadyQuantizedModel_IsRefused()
    {
        var ex = Assert.Throws<OnnxModelFormatException>(() => OnnxQuantizer.Quantize(trained.QuantizedModel, [QuantizationFixture.Train], Path.Combine(TestData.TempDir(), "x.onnx")));
        Assert.Contains("already quantized", ex.Message);
        Assert.Contains("QuantizeLinear", ex.Message);
    }
}

public class QuantizerTests
{
    // A random ResNet-20 for 28x28 gray images, as a file: enough for the refusals, no training needed.
    private static readonly Lazy<string> FloatModel = new(() =>
    {
        using var model = OnnxTestModels.Trained(OnnxTestModels.Spec("resnet20") with { InputChannels = 1 }, seed: 7, imageSize: 28);
        string path = Path.Combine(TestData.TempDir(), "resnet20.onnx");
        OnnxExporter.Export(model, path, new OnnxExportOptions { ImageHeight = 28 });
        return path;
    });

    [Fact]
    public void FloatAndQuantizedScores_AreClose_OnARandomResNet18WithProjectionShortcuts()
    {
        using var model = OnnxTestModels.Trained(OnnxTestModels.Spec("resnet18", ShortcutOption.B), seed: 4, imageSize: 64);
        byte[] fp32 = OnnxExporter.Export(model, new OnnxExportOptions { ImageHeight = 64, Normalization = InputNormalization.ImageNet });
        var images = RandomImages(32, 3, 64, seed: 5);
        var (int8, summary) = OnnxQuantizer.Quantize(fp32, images);
        Assert.Equal(19 + 8, summary.QuantizedNodes); // 20 convs (3 projections) but the first, 8 adds
        using var a = new OnnxScorer(fp32);
        using var b = new OnnxScorer(int8);
        var fa = a.Score(images, features: true);
        var fb = b.Score(images, features: true);
        // Features: relative error of the 8-bit trunk against the float one.
        double num = 0, den = 0;
        for (int i = 0; i < fa.Features!.Length; i++) { num += Math.Pow(fa.Features[i] - fb.Features![i], 2); den += Math.Pow(fa.Features[i], 2); }
        Assert.InRange(Math.Sqrt(num / den), 0.0, 0.1);
    }

    [Fact]
    public void FlipTestTimeAugmentationGraph_Quantizes_WithTheViewsAveragedInFloat_AndScoresCloseToTheFloatOne()
    {
        using var model = OnnxTestModels.Trained(OnnxTestModels.Spec("resnet20"), seed: 6, imageSize: 32);
        byte[] fp32 = OnnxExporter.Export(model, new OnnxExportOptions { FlipTestTimeAugmentation = true, IncludeActivations = true });
        var images = RandomImages(32, 3, 32, seed: 7);
        var (int8, summary) = OnnxQuantizer.Quantize(fp32, images);
        Assert.Equal(18 + 9, summary.QuantizedNodes); // 19 convs but the first, 9 adds: the mirroring and averaging stay float
        using var a = new OnnxScorer(fp32);
        using var b = new OnnxScorer(int8);
        var fa = a.Score(images, features: true, activations: true);
        var fb = b.Score(images, features: true, activations: true);
        Assert.Equal(fa.Activations!.Length, fb.Activations!.Length);
        double num = 0, den = 0;
        for (int i = 0; i < fa.Features!.Length; i++) { num += Math.Pow(fa.Features[i] - fb.Features![i], 2); den += Math.Pow(fa.Features[i], 2); }
        Assert.InRange(Math.Sqrt(num / den), 0.0, 0.1);
    }

    [Fact]
    public void FloatStem_PoolsBeforeTheQuantization_AndOnnxRuntimeKeepsThePoolInFloat()
    {
        using var model = OnnxTestModels.Trained(OnnxTestModels.Spec("resnet18"), seed: 6, imageSize: 64);
        byte[] fp32 = OnnxExporter.Export(model, new OnnxExportOptions { ImageHeight = 64, Normalization = InputNormalization.ImageNet });
        var images = RandomImages(24, 3, 64, seed: 8);
        var (int8, _) = OnnxQuantizer.Quantize(fp32, images);
        var q = ModelProto.Parser.ParseFrom(int8);
        // Relu and MaxPool commute; the Relu in front of the first Q keeps ONNX Runtime from moving the Q above the pool.
        Assert.Equal(["Sub", "Div", "Conv", "MaxPool", "Relu", "QuantizeLinear"], q.Graph.Node.Take(6).Select(n => n.OpType));

        string dir = TestData.TempDir(), optimized = Path.Combine(dir, "optimized.onnx");
        using (var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, OptimizedModelFilePath = optimized })
        using (new InferenceSession(int8, so)) { }
        var nodes = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph.Node.Select(n => n.OpType).ToList();
        Assert.True(nodes.IndexOf("MaxPool") >= 0 && nodes.IndexOf("MaxPool") < nodes.IndexOf("QuantizeLinear"), string.Join(", ", nodes.Take(8)));
        Assert.Equal(1, nodes.Count(n => n == "QuantizeLinear"));

        // With the first convolution in 8-bit the pool stays on the 8-bit tensor, where ONNX Runtime runs it in NHWC.
        var (all, _) = OnnxQuantizer.Quantize(fp32, images, new QuantizationOptions { KeepFirstConvFloat = false });
        var allNodes = ModelProto.Parser.ParseFrom(all).Graph.Node;
        var pool = allNodes.Single(n => n.OpType == "MaxPool");
        Assert.Contains(allNodes, n => n.OpType == "DequantizeLinear" && n.Output[0] == pool.Input[0]);

        // Same function as before the reordering: the features of the float model are matched as closely as before.
        using var a = new OnnxScorer(fp32);
        using var b = new OnnxScorer(int8);
        var fa = a.Score(images, features: true).Features!;
        var fb = b.Score(images, features: true).Features!;
        double num = fa.Zip(fb).Sum(p => Math.Pow(p.First - p.Second, 2)), den = fa.Sum(v => (double)v * v);
        Assert.InRange(Math.Sqrt(num / den), 0.0, 0.1);
    }

    [Fact]
    public void UnsupportedOperator_IsRefused_NamingTheFirstOne()
    {
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(FloatModel.Value));
        var relu = proto.Graph.Node.First(n => n.OpType == "Relu");
        relu.OpType = "Sigmoid";
        proto.Graph.Node.First(n => n.OpType == "Relu" && n != relu).OpType = "Tanh";
        var ex = Assert.Throws<OnnxModelFormatException>(() => OnnxQuantizer.Quantize(proto.ToByteArray(), RandomImages(20, 1, 28, 1)));
        Assert.Contains("operator Sigmoid", ex.Message);
        Assert.Contains($"'{relu.Name}'", ex.Message);
        Assert.DoesNotContain("Tanh", ex.Message);
    }

    [Fact]
    public void TinyOrEmptyCalibrationFolder_IsRefused_SayingHowManyImagesAreNeeded()
    {
        string empty = TestData.TempDir();
        var ex = Assert.Throws<CalibrationDataException>(() => OnnxQuantizer.Quantize(FloatModel.Value, [empty], Path.Combine(empty, "x.onnx")));
        Assert.Contains("gave 0 decodable", ex.Message);
        Assert.Contains($"at least {QuantizationOptions.MinimumCalibrationImages}", ex.Message);

        string tiny = TestData.FashionFolder(1); // 10 images
        ex = Assert.Throws<CalibrationDataException>(() => OnnxQuantizer.Quantize(FloatModel.Value, [tiny], Path.Combine(tiny, "x.onnx")));
        Assert.Contains("gave 10 decodable", ex.Message);
        Assert.False(File.Exists(Path.Combine(tiny, "x.onnx")));

        ex = Assert.Throws<CalibrationDataException>(() => OnnxQuantizer.Quantize(FloatModel.Value, [Path.Combine(tiny, "missing")], Path.Combine(tiny, "x.onnx")));
        Assert.Contains("does not exist", ex.Message);
    }

    [Fact]
    public void CalibrationFolder_IsPreparedWithTheModelsRecordedResizeAndCrop_AsTheScorerPreparesIt()
    {
        // A model that records "resize the shorter side to 48, crop the centre 32x32", and 96x48 calibration images whose
        // centre (the crop) is dark noise and whose sides are white: stretching them to 32x32 would bring the white in.
        using var model = OnnxTestModels.Trained(OnnxTestModels.Spec("resnet20"), seed: 3, imageSize: 32);
        string dir = TestData.TempDir();
        string fp32 = Path.Combine(dir, "crop.onnx");
        OnnxExporter.Export(model, fp32, new OnnxExportOptions { ImageHeight = 32, Normalization = InputNormalization.ImageNet, Preprocessing = new ResizeCrop(48, 32) });
        string images = Path.Combine(dir, "calibration");
        var rng = new Random(11);
        for (int i = 0; i < 20; i++)
        {
            var pixels = new byte[96 * 48 * 3];
            for (int y = 0; y < 48; y++)
                for (int x = 0; x < 96; x++)
                    for (int c = 0; c < 3; c++)
                        pixels[(y * 96 + x) * 3 + c] = x is >= 32 and < 64 ? (byte)rng.Next(0, 100) : (byte)255;
            ImageDecoder.SavePng(new RawImage(pixels, 96, 48, 3), Path.Combine(images, $"{i:D2}.png"));
        }

        string output = Path.Combine(dir, "crop.int8.onnx");
        var summary = OnnxQuantizer.Quantize(fp32, [images], output);
        Assert.Equal(20, summary.CalibrationImages);

        using var scorer = new OnnxScorer(fp32);
        Assert.Equal(new ResizeCrop(48, 32), scorer.Info.Preprocessing);
        var files = ImageTensors.FindImages([images]);
        var cropped = files.Select(f => ImageTensors.Load(f, scorer.Info)).ToList();
        var stretched = files.Select(f => ImageTensors.Load(f, 3, 32, 32, scorer.Info.Normalization.Range)).ToList();
        Assert.True(cropped[0].Max() < 100 / 255f + 1e-6f, "the crop should hold the dark centre only");
        // The folder gives exactly the ranges of the images prepared as the scorer prepares them, and not those of stretched ones.
        var (fromCropped, _) = OnnxQuantizer.Quantize(File.ReadAllBytes(fp32), cropped);
        var (fromStretched, _) = OnnxQuantizer.Quantize(File.ReadAllBytes(fp32), stretched);
        Assert.Equal(Scales(fromCropped), Scales(File.ReadAllBytes(output)));
        Assert.NotEqual(Scales(fromStretched), Scales(File.ReadAllBytes(output)));
    }

    // The scalar float initializers of a QDQ model (the activations' scales: the calibration's result), by tensor name.
    private static List<(string, float)> Scales(byte[] model) =>
        [.. ModelProto.Parser.ParseFrom(model).Graph.Initializer
            .Where(t => t.DataType == (int)TensorProto.Types.DataType.Float && t.Dims.Aggregate(1L, (a, d) => a * d) == 1)
            .Select(t => (t.Name, t.FloatData.Count == 1 ? t.FloatData[0] : BitConverter.ToSingle(t.RawData.Span)))
            .OrderBy(t => t.Name, StringComparer.Ordinal)];

    [Fact]
    public void UnreadableCalibrationImages_AreSkippedWithAWarning()
    {
        string dir = TestData.FashionFolder(2); // 20 images
        File.WriteAllText(Path.Combine(dir, "Bag", "broken.png"), "not a png");
        File.WriteAllBytes(Path.Combine(dir, "Coat", "empty.jpg"), []);
        var log = new List<string>();
        string output = Path.Combine(dir, "m.int8.onnx");
        var summary = OnnxQuantizer.Quantize(FloatModel.Value, [dir], output, new QuantizationOptions { Log = log.Add });
        Assert.Equal(20, summary.CalibrationImages);
        Assert.Equal(2, summary.SkippedImages);
        Assert.Equal(2, log.Count(l => l.StartsWith("warning: calibration image skipped")));
        Assert.Contains(log, l => l.Contains("broken.png"));
        Assert.True(File.Exists(output));
    }

    [Fact]
    public void NotAnOnnxFile_IsRefused()
    {
        string dir = TestData.TempDir();
        string path = Path.Combine(dir, "m.onnx");
        File.WriteAllText(path, "hello");
        Assert.Throws<OnnxModelFormatException>(() => OnnxQuantizer.Quantize(path, [QuantizationFixture.Train], Path.Combine(dir, "x.onnx")));
        Assert.Throws<FileNotFoundException>(() => OnnxQuantizer.Quantize(Path.Combine(dir, "none.onnx"), [QuantizationFixture.Train], Path.Combine(dir, "x.onnx")));
    }

    [Fact]
    public void PercentileAndEntropy_ClipARareFarOutlier_MinMaxWouldNot()
    {
        // A steep bulk (exponential over the first ~200 of 2048 bins) and a thin tail out to the last bin.
        var histogram = new long[2048];
        for (int i = 0; i < 2048; i++) histogram[i] = (long)(100_000 * Math.Exp(-i / 30.0)) + (i % 64 == 0 ? 1 : 0);
        long total = histogram.Sum();
        float percentile = Calibrator.PercentileThreshold(histogram, 99.99);
        Assert.Equal(1985, Calibrator.PercentileThreshold(histogram, 100));          // the last non-empty bin is 1984
        Assert.InRange(percentile, 200, 400);                                   // exp(-t/30) = 1e-4 at t = 276
        Assert.True(histogram.Take((int)percentile).Sum() >= 0.9999 * total);
        float entropy = Calibrator.EntropyThreshold(histogram, 256);
        Assert.InRange(entropy, 100, 1024); // the tail is clipped, the bulk kept at fine resolution
        Assert.Equal((1f, (byte)0), new ActivationRange(0, 0).ToUint8());
        var (scale, zeroPoint) = new ActivationRange(-1f, 3f).ToUint8();
        Assert.Equal(4f / 255, scale, 6);
        Assert.Equal(64, zeroPoint); // -1 / (4/255) = -63.75 -> 64: 0 lands exactly on a level
    }

    internal static List<float[]> RandomImages(int n, int channels, int size, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, channels * size * size).Select(_ => (float)rng.NextDouble()).ToArray()).ToList();
    }
}
