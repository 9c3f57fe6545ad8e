using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.ML;
using Microsoft.ML.Data;
using SkiaSharp;
using ResNet.MLNet.Transforms;
using ResNet.Trainer.Data;
using ResNet.Trainer.Pretrained;
using Xunit.Abstractions;

namespace ResNet.MLNet.Tests;

/// <summary>
/// A torchvision ResNet-18 state_dict (random weights, written at test time by Debian's torchvision) reached through a
/// catalog entry: the file lies in a mirror folder under its hashed name (<c>RESNET_MLNET_WEIGHTS_URL</c>), is verified and
/// copied into a fresh cache (<c>RESNET_MLNET_CACHE</c>), and the images are few
/// and small enough (256x256) that the entry's own resize leaves them as they are.
/// </summary>
public sealed class TorchvisionCatalogWeights : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("resnet-catalog-").FullName;
    private readonly string? _oldMirror = Environment.GetEnvironmentVariable(WeightsCache.MirrorVariable);
    private readonly string? _oldCache = Environment.GetEnvironmentVariable(WeightsCache.FolderVariable);

    public TorchvisionCatalogWeights()
    {
        // 2 classes x 10 images of the embedded dataset, enlarged to 256x256 RGB PNGs: the entry's
        // resize to 256 leaves them as they are, its centre crop cuts 224x224 out of them.
        Images = Path.Combine(_root, "images");
        foreach (var classDir in Directory.GetDirectories(Samples.Train).Order(StringComparer.Ordinal).Take(2))
        {
            string target = Directory.CreateDirectory(Path.Combine(Images, Path.GetFileName(classDir))).FullName;
            foreach (var file in Directory.GetFiles(classDir).Order(StringComparer.Ordinal).Take(10))
            {
                using var original = SKBitmap.Decode(file);
                using var rgb = original.Copy(SKColorType.Rgba8888);
                using var large = rgb.Resize(new SKImageInfo(Size, Size, SKColorType.Rgba8888, SKAlphaType.Opaque), SKFilterQuality.Medium);
                using var png = large.Encode(SKEncodedImageFormat.Png, 100);
                File.WriteAllBytes(Path.Combine(target, Path.GetFileNameWithoutExtension(file) + ".png"), png.ToArray());
            }
        }
        Paths = new MLContext().Data.LoadImagesFromDirectory(Images).GetColumn<string>("ImagePath").ToArray();

        string peer = Path.Combine(_root, "peer");
        Directory.CreateDirectory(peer);
        RunPython(Path.Combine(AppContext.BaseDirectory, "Peers", "torchvision_catalog_peer.py"), ["resnet18", peer, "7", .. Paths]);
        string weights = Path.Combine(peer, "weights.pth");
        Conv1 = ReadFloats(Path.Combine(peer, "conv1.bin"));
        Features = ReadFloats(Path.Combine(peer, "features.bin"));

        string hash;
        using (var stream = File.OpenRead(weights)) hash = Convert.ToHexStringLower(SHA256.HashData(stream))[..8];
        string mirror = Directory.CreateDirectory(Path.Combine(_root, "mirror")).FullName;
        string fileName = $"resnet18-{hash}.pth";
        File.Move(weights, Path.Combine(mirror, fileName));
        Cache = Path.Combine(_root, "cache");
        // The catalog's ResNet-18 (its preprocessing too) with the test file's own hashed name.
        Entry = ResNetPretrained.ResNet18 with { Tag = "TEST", Url = new Uri("https://download.pytorch.org/models/" + fileName) };
        Environment.SetEnvironmentVariable(WeightsCache.MirrorVariable, mirror);
        Environment.SetEnvironmentVariable(WeightsCache.FolderVariable, Cache);
    }

    /// <summary>The images' side: ResNet-18's resize, so only its centre crop changes them.</summary>
    public const int Size = 256;

    public string Images { get; }
    public string[] Paths { get; }
    public string Cache { get; }
    public PretrainedWeights Entry { get; }
    /// <summary>conv1.weight of the state_dict (64x3x7x7).</summary>
    public float[] Conv1 { get; }
    /// <summary>torchvision's pooled features of <see cref="Paths"/>, 512 per image.</summary>
    public float[] Features { get; }

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(WeightsCache.MirrorVariable, _oldMirror);
        Environment.SetEnvironmentVariable(WeightsCache.FolderVariable, _oldCache);
        Directory.Delete(_root, recursive: true);
    }

    private static float[] ReadFloats(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var floats = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, floats, 0, bytes.Length);
        return floats;
    }

    private static void RunPython(string script, string[] args)
    {
        string python = Environment.GetEnvironmentVariable("RESNET_PEER_PYTHON") ?? "/usr/bin/python3";
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {python}.");
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        _ = stdout.Result;
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{python} {Path.GetFileName(script)} failed (exit {p.ExitCode}): {stderr}\n" +
                "These tests need Debian's python3-torch and python3-torchvision (see README, 'Peer tests').");
    }
}

/// <summary>The catalog route end to end: the ML.NET estimator (head only and fine-tuning) and the featurizer on torchvision's weights.</summary>
public sealed class CatalogEndToEndTests(TorchvisionCatalogWeights weights, ITestOutputHelper log) : IClassFixture<TorchvisionCatalogWeights>
{
    private (MLContext Ml, IDataView Data, IEstimator<ITransformer> Keys) Data()
    {
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadImagesFromDirectory(weights.Images);
        return (ml, data, ml.Transforms.Conversion.MapValueToKey("Label"));
    }

    private static float[] Conv1Of(ResNet.Trainer.Models.ResNetModel model) => model.state_dict()["conv1.weight"].data<float>().ToArray();

    private static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += a[i] * (double)b[i]; na += a[i] * (double)a[i]; nb += b[i] * (double)b[i]; }
        return dot / Math.Sqrt(na * nb);
    }

    private void AssertScores(MLContext ml, ITransformer model, IDataView data)
    {
        var scored = model.Transform(data);
        var scores = scored.GetColumn<float[]>("Score").ToList();
        Assert.Equal(weights.Paths.Length, scores.Count);
        Assert.All(scores, s =>
        {
            Assert.Equal(2, s.Length);
            Assert.InRange(s.Sum(), 0.999f, 1.001f);
        });
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        log.WriteLine($"training-set MicroAccuracy {metrics.MicroAccuracy:F3}");
        Assert.InRange(metrics.MicroAccuracy, 0.0, 1.0);
    }

    [Fact]
    public void Estimator_HeadOnly_FromACatalogEntry_KeepsTheStateDictsTrunk_TrainsAndScores()
    {
        var (ml, data, keys) = Data();
        var estimator = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
        {
            ImageColumnName = "ImagePath",
            PretrainedModel = weights.Entry,
            FreezeBackbone = true,
            Epochs = 20,
            Seed = 1,
        });
        var model = keys.Append(estimator).Fit(data);

        var result = estimator.LastTraining!;
        Assert.Equal("resnet18", result.Card.Spec.Name);
        Assert.Equal(224, result.Card.ImageHeight);
        // The trunk is the state_dict's, bit for bit (head-only training leaves it frozen).
        Assert.Equal(weights.Conv1, Conv1Of(result.Model));
        Assert.Equal(20, result.History.Count);
        log.WriteLine($"head only: train loss {result.History[0].TrainLoss:F4} -> {result.History[^1].TrainLoss:F4}");
        Assert.True(result.History[^1].TrainLoss < result.History[0].TrainLoss, "the head's loss should fall");
        Assert.True(File.Exists(Path.Combine(weights.Cache, weights.Entry.FileName)), "the verified file should be in the cache");
        AssertScores(ml, model, data);
    }

    [Fact]
    public void Estimator_FineTune_FromACatalogEntry_StartsAtTheStateDict_TrainsEveryLayerAndScores()
    {
        var (ml, data, keys) = Data();
        var estimator = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
        {
            ImageColumnName = "ImagePath",
            PretrainedModel = weights.Entry,
            Epochs = 1,
            BatchSize = 10,
            Seed = 1,
        });
        var model = keys.Append(estimator).Fit(data);

        var result = estimator.LastTraining!;
        Assert.Single(result.History);
        Assert.True(double.IsFinite(result.History[0].TrainLoss));
        float[] after = Conv1Of(result.Model);
        // Fine-tuning moved the first conv, a little (the trunk learns at a tenth of the head's rate): it started at the
        // state_dict's weights, not at a fresh initialisation (which would be unrelated to them, cosine near 0).
        double cosine = Cosine(after, weights.Conv1);
        double moved = after.Zip(weights.Conv1, (a, b) => Math.Abs(a - b)).Max();
        log.WriteLine($"fine-tune: conv1 cosine to the state_dict {cosine:F6}, largest change {moved:E2}");
        Assert.True(moved > 0, "conv1 should have been trained");
        Assert.True(cosine > 0.99, $"conv1 cosine to the state_dict {cosine}");
        AssertScores(ml, model, data);
    }

    [Fact]
    public void Featurizer_FromACatalogEntry_GivesTorchvisionsPooledFeatures()
    {
        var (ml, data, _) = Data();
        var featurizer = ml.Transforms.ResNetFeaturizer(imageColumnName: "ImagePath", pretrained: weights.Entry);
        var features = featurizer.Fit(data).Transform(data).GetColumn<float[]>("Features").ToList();

        Assert.Equal(weights.Paths, data.GetColumn<string>("ImagePath"));
        Assert.Equal(weights.Paths.Length, features.Count);
        double worst = 0;
        for (int i = 0; i < features.Count; i++)
        {
            Assert.Equal(512, features[i].Length);
            for (int j = 0; j < 512; j++)
                worst = Math.Max(worst, Math.Abs(features[i][j] - weights.Features[i * 512 + j]));
        }
        log.WriteLine($"featurizer vs torchvision: largest difference {worst:E2} over {features.Count} x 512 features");
        Assert.True(worst <= 1e-4, $"largest difference {worst}");
        Assert.True(weights.Features.Max() > 0.1, "the reference features should not be trivial");
    }

    [Fact]
    public void Estimator_AnEntryWhosePreprocessingMLNetCannotApply_IsRefusedWhenCreated()
    {
        var ml = new MLContext(seed: 1);
        var entry = weights.Entry with { Transform = ResizeCropTransform.ImageNet(40, 32) };
        var ex = Assert.Throws<ResNet.Trainer.Training.InvalidTrainingOptionException>(() =>
            ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options { ImageColumnName = "ImagePath", PretrainedModel = entry }));
        Assert.Contains("PretrainedModel", ex.Message);
        Assert.Contains("resize 40, crop 32", ex.Message);
        Assert.Contains("resize 256, crop 224", ex.Message);
    }
}
