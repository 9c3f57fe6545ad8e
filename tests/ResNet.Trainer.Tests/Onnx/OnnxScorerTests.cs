using System.Diagnostics;
using Google.Protobuf;
using Onnx;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using static ResNet.Trainer.Tests.Onnx.OnnxTestModels;

namespace ResNet.Trainer.Tests.Onnx;

public class OnnxScorerTests
{
    private static readonly Lazy<(byte[] Bytes, float[] Images, float[] Expected)> Cifar = new(() =>
    {
        using var model = Trained(Spec("resnet20", classes: 3), seed: 2, imageSize: 32);
        byte[] bytes = OnnxExporter.Export(model, new OnnxExportOptions { ClassNames = ["red", "green", "blue"] });
        using var x = Images(40, 3, 32, seed: 4);
        using var _ = TorchSharp.torch.no_grad();
        using var logits = model.forward(x);
        return (bytes, Floats(x), Floats(logits));
    });

    [Fact]
    public void Score_SplitsLargeRequestsIntoBatches_AndIsSafeFromSeveralThreads()
    {
        var (bytes, images, expected) = Cifar.Value;
        using var scorer = new OnnxScorer(bytes, new OnnxScorerOptions { MaxBatchSize = 16, IntraOpThreads = 1 });
        Assert.Equal(["red", "green", "blue"], scorer.Info.ClassNames);
        Assert.Equal("resnet20", scorer.Info.Architecture);
        Assert.Equal((3, 32, 32), (scorer.Info.Channels, scorer.Info.Height, scorer.Info.Width));

        var results = new ScoreResult[8];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => results[i] = scorer.Score(images, 40));
        foreach (var r in results)
        {
            Assert.True(MaxAbsDiff(expected, r.Logits) <= 1e-4f);
            for (int i = 0; i < r.Count; i++)
                Assert.Equal(1f, r.Probabilities.AsSpan(i * 3, 3).ToArray().Sum(), 4);
        }
        var top = scorer.TopK(results[0], 0, 2);
        Assert.Equal(2, top.Count);
        Assert.True(top[0].Probability >= top[1].Probability);
        Assert.Equal(results[0].ArgMax(0), top[0].Index);
    }

    [Fact]
    public async Task ScoreAsync_OneImagePerCaller_GivesEachCallerItsOwnRows()
    {
        var (bytes, images, expected) = Cifar.Value;
        const int per = 3 * 32 * 32;
        using var scorer = new OnnxScorer(bytes, new OnnxScorerOptions { MaxBatchSize = 16 });
        var tasks = Enumerable.Range(0, 40).Select(i => scorer.ScoreAsync(images.AsMemory(i * per, per), 1, features: i % 3 == 0)).ToArray();
        var results = await Task.WhenAll(tasks);
        for (int i = 0; i < results.Length; i++)
        {
            Assert.Equal(1, results[i].Count);
            Assert.True(MaxAbsDiff(expected.AsSpan(i * 3, 3).ToArray(), results[i].Logits) <= 1e-4f, $"caller {i} got another image's scores");
            Assert.Equal(i % 3 == 0 ? scorer.FeatureCount : 0, results[i].Features?.Length ?? 0);
        }
        Assert.InRange(scorer.RunCount, 3, 40); // at most 16 images per run
        await Assert.ThrowsAsync<InputShapeException>(() => scorer.ScoreAsync(images.AsMemory(0, 10), 1));
    }

    [Fact]
    public void PredictedIndexOutput_IsTheArgMaxAsUInt32_AndSurvivesTheRoundTrip()
    {
        using var model = Trained(Spec("resnet20", classes: 5), seed: 8, imageSize: 32);
        var options = new OnnxExportOptions { IncludePredictedIndex = true };
        byte[] bytes = OnnxExporter.Export(model, options);
        float[] images = Floats(Images(9, 3, 32, seed: 3));

        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(bytes);
        using var x = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(images, [9, 3, 32, 32]);
        using var run = session.Run(new Microsoft.ML.OnnxRuntime.RunOptions(), [OnnxExporter.Input], [x],
            [OnnxExporter.ProbabilitiesOutput, OnnxExporter.PredictedIndexOutput]);
        var probabilities = run[0].GetTensorDataAsSpan<float>().ToArray();
        var predicted = run[1].GetTensorDataAsSpan<uint>().ToArray();
        Assert.Equal(9, predicted.Length);
        for (int i = 0; i < 9; i++)
        {
            var row = probabilities.AsSpan(i * 5, 5).ToArray();
            Assert.Equal((uint)Array.IndexOf(row, row.Max()), predicted[i]);
        }

        var imported = OnnxImporter.Import(bytes);
        using (imported.Model)
            Assert.True(bytes.AsSpan().SequenceEqual(OnnxExporter.Export(imported.Model, imported.ExportOptions)));
    }

    [Fact]
    public void Cuda_WhenUnavailable_FallsBackToCpuWithAReason_OrFailsWhenRequired()
    {
        var (bytes, _, _) = Cifar.Value;
        var log = new List<string>();
        using (var scorer = new OnnxScorer(bytes, new OnnxScorerOptions { ExecutionProvider = ExecutionProviderPreference.Cuda, Log = log.Add }))
        {
            if (scorer.ExecutionProvider == "CUDAExecutionProvider")
                return; // a machine with a working GPU: nothing falls back
            Assert.Equal("CPUExecutionProvider", scorer.ExecutionProvider);
            Assert.Contains("Falling back to the CPU execution provider", scorer.FallbackMessage);
            Assert.Equal([scorer.FallbackMessage!], log);
        }
        var ex = Assert.Throws<ExecutionProviderUnavailableException>(() =>
            new OnnxScorer(bytes, new OnnxScorerOptions { ExecutionProvider = ExecutionProviderPreference.CudaOnly }));
        Assert.Contains("CUDA was required", ex.Message);
    }

    [Fact]
    public void TruncatedOrNonOnnxFile_IsRefusedWithTheFileName()
    {
        var (bytes, _, _) = Cifar.Value;
        string dir = TempDir();
        string truncated = Path.Combine(dir, "truncated.onnx");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        string text = Path.Combine(dir, "notes.onnx");
        File.WriteAllText(text, "this is a text file, not a model\n");

        foreach (var path in new[] { truncated, text })
        {
            var e1 = Assert.Throws<OnnxModelFormatException>(() => new OnnxScorer(path));
            Assert.Contains(path, e1.Message);
            var e2 = Assert.Throws<OnnxModelFormatException>(() => OnnxImporter.Import(path));
            Assert.Contains(path, e2.Message);
        }
        Assert.Throws<FileNotFoundException>(() => new OnnxScorer(Path.Combine(dir, "missing.onnx")));
    }

    [Fact]
    public void NonClassifierOnnxModel_IsRefusedNamingTheExpectedInput()
    {
        // The featurizer's preprocessing graph: an image in, an image out.
        string prep = Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx");
        var ex = Assert.Throws<OnnxModelFormatException>(() => new OnnxScorer(prep));
        Assert.Contains("is not an image classifier", ex.Message);
        Assert.Contains("[N, C, H, W]", ex.Message);
        Assert.Contains("PreprocessedInput", ex.Message);
        var ex2 = Assert.Throws<OnnxModelFormatException>(() => OnnxImporter.Import(prep));
        Assert.Contains("is not a ResNet", ex2.Message);
    }

    [Fact]
    public void WrongChannelsOrSize_AreRefusedByTheTensorApi_AndResizedByTheImageLoader()
    {
        var (bytes, images, _) = Cifar.Value;
        using var scorer = new OnnxScorer(bytes);
        var ex = Assert.Throws<InputShapeException>(() => scorer.Score(images.AsMemory(0, 1 * 32 * 32 * 2), 2)); // 1-channel data
        Assert.Contains("3x32x32", ex.Message);
        Assert.Throws<InputShapeException>(() => scorer.Score([new float[3 * 28 * 28]]));

        // A gray 28x20 image file is converted to RGB and resized to 32x32 (documented behaviour of ImageTensors).
        string file = Path.Combine(TempDir(), "gray.png");
        using (var bmp = new SkiaSharp.SKBitmap(new SkiaSharp.SKImageInfo(28, 20, SkiaSharp.SKColorType.Gray8)))
        {
            bmp.Erase(new SkiaSharp.SKColor(128, 128, 128));
            using var data = bmp.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(file, data.ToArray());
        }
        float[] pixels = ImageTensors.Load(file, 3, 32, 32, scorer.Info.Normalization.Range);
        Assert.Equal(3 * 32 * 32, pixels.Length);
        Assert.All(pixels, p => Assert.Equal(128f / 255f, p, 3));
        Assert.Equal(1, scorer.Score([pixels]).Count);
    }

    [Fact]
    public void UnknownArchitectureInMetadata_IsRefused()
    {
        var (bytes, _, _) = Cifar.Value;
        var model = ModelProto.Parser.ParseFrom(bytes);
        var spec = model.MetadataProps.Single(p => p.Key == OnnxMetadataKeys.Spec);
        spec.Value = spec.Value.Replace("\"Basic\"", "\"Inception\"");
        var ex = Assert.Throws<UnknownArchitectureException>(() => OnnxImporter.Import(model.ToByteArray()));
        Assert.Contains("Inception", ex.Message);
        // Scoring does not interpret the architecture (the scoring package has no model builder): the file still scores.
        using (var scorer = new OnnxScorer(model.ToByteArray()))
            Assert.Equal(1, scorer.Score(new float[scorer.ImageLength], 1).Count);

        model.MetadataProps.Remove(spec);
        model.MetadataProps.Single(p => p.Key == OnnxMetadataKeys.Architecture).Value = "resnet21";
        var ex2 = Assert.Throws<UnknownArchitectureException>(() => OnnxImporter.Import(model.ToByteArray()));
        Assert.Contains("resnet21", ex2.Message);
    }

    [Fact]
    public void ClassCountMismatch_BetweenModelAndLabels_IsRefused()
    {
        var (bytes, _, _) = Cifar.Value;
        var ex = Assert.Throws<ClassCountMismatchException>(() => new OnnxScorer(bytes, new OnnxScorerOptions { ClassNames = ["a", "b"] }));
        Assert.Contains("2 class names", ex.Message);
        Assert.Contains("3 classes", ex.Message);

        using var model = new Trainer.Models.ResNetModel(Spec("resnet20", classes: 3));
        Assert.Throws<ClassCountMismatchException>(() => OnnxExporter.Export(model, new OnnxExportOptions { ClassNames = ["a", "b", "c", "d"] }));

        var proto = ModelProto.Parser.ParseFrom(bytes);
        proto.MetadataProps.Single(p => p.Key == OnnxMetadataKeys.ClassNames).Value = "[\"only\",\"two\"]";
        Assert.Throws<ClassCountMismatchException>(() => new OnnxScorer(proto.ToByteArray()));
        Assert.Throws<ClassCountMismatchException>(() => OnnxImporter.Import(proto.ToByteArray()));
    }

    [Fact]
    public void ExportedFiles_PassOnnxCheckerFullCheck()
    {
        string dir = TempDir();
        var files = new List<string>();
        foreach (var (arch, shortcut, fold) in new (string, ShortcutOption?, bool)[]
        {
            ("resnet20", null, false), ("resnet56", null, false), ("resnet18", ShortcutOption.B, false), ("resnet50", ShortcutOption.B, false),
            ("resnet50", ShortcutOption.C, false), ("plain34", null, false), ("resnet50-paper", null, true),
        })
        {
            using var model = new Trainer.Models.ResNetModel(Spec(arch, shortcut));
            string path = Path.Combine(dir, $"{model.Spec.Name}{(fold ? "-folded" : "")}.onnx");
            OnnxExporter.Export(model, path, new OnnxExportOptions { FoldBatchNorm = fold, IncludePredictedIndex = arch == "resnet20", Normalization = InputNormalization.ImageNet with { Mean = [0.5f, 0.5f, 0.5f] } });
            files.Add(path);
        }
        var featurizer = OnnxImporter.ImportDnnImageFeaturizer(
            Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx"),
            Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx"), numClasses: 10);
        using (featurizer.Model)
        {
            files.Add(Path.Combine(dir, "resnet18-cntk.onnx"));
            OnnxExporter.Export(featurizer.Model, files[^1], featurizer.ExportOptions);
        }

        OnnxChecker.AssertFullCheckPasses(files);
    }
}
