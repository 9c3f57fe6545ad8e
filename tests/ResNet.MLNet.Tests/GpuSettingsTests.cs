using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet.Transforms;

namespace ResNet.MLNet.Tests;

/// <summary>
/// MLContext.GpuDeviceId / FallbackToCpu reach the ResNet scoring components (fitted transformer, ApplyResNet, the featurizer,
/// the saved chain and LoadWithResNetScoring). These machines have no usable CUDA device, so what is pinned is the CPU
/// behaviour, the fallback (CPU scores, the scorer's notice as a warning in mlContext.Log) and the error without a fallback.
/// </summary>
public sealed class GpuSettingsTests(TrainedPipelineFixture f) : IClassFixture<TrainedPipelineFixture>
{
    private const string Cpu = "CPUExecutionProvider";

    private string ExportedModel()
    {
        string path = Path.Combine(f.Folder, "gpu-settings.onnx");
        if (!File.Exists(path)) File.WriteAllBytes(path, f.Scorer.OnnxModel.ToArray());
        return path;
    }

    private static (MLContext Ml, List<string> Log) Context(int? gpuDeviceId, bool fallbackToCpu)
    {
        var ml = new MLContext(seed: 1) { GpuDeviceId = gpuDeviceId, FallbackToCpu = fallbackToCpu };
        var log = new List<string>();
        ml.Log += (_, e) => { lock (log) log.Add(e.Message); };
        return (ml, log);
    }

    private static List<string> Warnings(List<string> log) { lock (log) return log.Where(m => m.Contains("Kind=Warning")).ToList(); }

    private List<float[]> Reference() => f.Model.Transform(f.Test).GetColumn<float[]>("Score").ToList();

    private static void AssertSameScores(List<float[]> expected, IDataView scored)
    {
        var actual = scored.GetColumn<float[]>("Score").ToList();
        Assert.Equal(expected.Count, actual.Count);
        double max = expected.Zip(actual).Max(p => p.First.Zip(p.Second).Max(q => Math.Abs(q.First - q.Second)));
        Assert.True(max <= 1e-6, $"max difference {max}");
    }

    [Fact]
    public void WithoutGpuDeviceId_ApplyResNetScoresOnTheCpu_AndItsInnerChainLogsToTheContext()
    {
        var (ml, log) = Context(null, false);
        using var scorer = ml.Transforms.ApplyResNet(ExportedModel(), imageColumnName: "ImagePath").Fit(f.Test);
        Assert.Equal(Cpu, scorer.ExecutionProvider);
        AssertSameScores(Reference(), scorer.Transform(f.Test));
        Assert.Empty(Warnings(log));
        // The saved form's ML.NET transforms (here the class-name key mapping) were built in this context, so their messages arrive in its log.
        lock (log) Assert.Contains(log, m => m.StartsWith("[Source=ValueMappingTransformer", StringComparison.Ordinal));
    }

    [Fact]
    public void GpuDeviceIdWithFallback_ApplyResNetAndTheSavedChainScoreOnTheCpu_WithTheFallbackWarningInTheLog()
    {
        var (ml, log) = Context(0, true);
        using var scorer = ml.Transforms.ApplyResNet(ExportedModel(), imageColumnName: "ImagePath").Fit(f.Test);
        Assert.Equal(Cpu, scorer.ExecutionProvider);
        AssertSameScores(Reference(), scorer.Transform(f.Test));
        var warning = Assert.Single(Warnings(log));
        Assert.Contains("CUDA was requested but cannot be used", warning);
        Assert.Contains("Falling back to the CPU execution provider", warning);

        // The saved chain (ApplyOnnxModel with the context's device) loads and scores in a context with the same settings.
        string zip = Path.Combine(f.Folder, "gpu-fallback.zip");
        ml.Model.Save(scorer, f.Test.Schema, zip);
        var (loadMl, loadLog) = Context(0, true);
        var loaded = loadMl.RegisterResNet().Model.Load(zip, out _);
        AssertSameScores(Reference(), loaded.Transform(f.Test));

        // The batched load route: the rebuilt scorer falls back too, and says so in the loading context's log.
        var batched = loadMl.Model.LoadWithResNetScoring(zip, out _);
        AssertSameScores(Reference(), batched.Transform(f.Test));
        Assert.Contains(Warnings(loadLog), m => m.Contains("CUDA was requested but cannot be used"));
    }

    [Fact]
    public void GpuDeviceIdWithoutFallback_FailsNamingTheSettingAndTheFix()
    {
        var (ml, _) = Context(0, false);
        var ex = Assert.Throws<ResNet.Scoring.ExecutionProviderUnavailableException>(() =>
            ml.Transforms.ApplyResNet(ExportedModel(), imageColumnName: "ImagePath").Fit(f.Test));
        Assert.Contains("mlContext.GpuDeviceId is 0", ex.Message);
        Assert.Contains("mlContext.FallbackToCpu = true", ex.Message);
        Assert.Contains("GpuDeviceId null", ex.Message);

        string zip = Path.Combine(f.Folder, "gpu-strict.zip");
        var (cpu, _) = Context(null, false);
        using (var t = cpu.Transforms.ApplyResNet(ExportedModel(), imageColumnName: "ImagePath").Fit(f.Test))
            cpu.Model.Save(t, f.Test.Schema, zip);
        var onLoad = Assert.Throws<ResNet.Scoring.ExecutionProviderUnavailableException>(() => ml.Model.LoadWithResNetScoring(zip, out _));
        Assert.Equal(ex.Message, onLoad.Message);
    }

    [Fact]
    public void GpuDeviceIdWithFallback_TheFeaturizerScoresOnTheCpu_WithTheWarning()
    {
        var (cpuMl, _) = Context(null, false);
        using var onCpu = cpuMl.Transforms.ResNetFeaturizer("Features", "ImagePath", modelPath: ExportedModel()).Fit(f.Test);
        var (ml, log) = Context(0, true);
        using var fellBack = ml.Transforms.ResNetFeaturizer("Features", "ImagePath", modelPath: ExportedModel()).Fit(f.Test);
        Assert.Equal(Cpu, fellBack.ExecutionProvider);
        var expected = onCpu.Transform(f.Test).GetColumn<float[]>("Features").ToList();
        var actual = fellBack.Transform(f.Test).GetColumn<float[]>("Features").ToList();
        Assert.Equal(expected.Count, actual.Count);
        Assert.All(expected.Zip(actual), p => Assert.Equal(p.First, p.Second));
        Assert.Contains(Warnings(log), m => m.Contains("CUDA was requested but cannot be used"));
    }

    [Fact]
    public void GpuDeviceIdWithFallback_TheFittedClassifierScoresOnTheCpu_WithTheWarning()
    {
        string data = Samples.SmallCopy(classes: 2, trainPerClass: 10, testPerClass: 0);
        try
        {
            var (ml, log) = Context(0, true);
            var images = ml.Data.LoadImagesFromDirectory(Path.Combine(data, "train"));
            var model = ml.Transforms.Conversion.MapValueToKey("Label")
                .Append(ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
                {
                    ImageColumnName = "ImagePath", Architecture = "resnet8", Channels = 1, ImageSize = 28, Epochs = 1, BatchSize = 10, Seed = 1,
                }))
                .Fit(images);
            var fitted = model.LastTransformer;
            Assert.Equal(Cpu, fitted.ExecutionProvider);
            Assert.Equal(20, fitted.Transform(images).GetColumn<float[]>("Score").Count(s => Math.Abs(s.Sum() - 1f) < 1e-4f));
            Assert.Contains(Warnings(log), m => m.Contains("CUDA was requested but cannot be used"));
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }
}
