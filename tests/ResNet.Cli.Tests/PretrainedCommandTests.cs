using static ResNet.Cli.Tests.Cli;
using System.Diagnostics;
using ResNet.MLNet.Tests;
using ResNet.Trainer.Pretrained;
using ResNet.Trainer.Training;

namespace ResNet.Cli.Tests;

/// <summary>
/// <c>resnet train --pretrained resnet18</c> on torchvision's weights (random ones, written at test time by Debian's
/// torchvision): the file is placed in the cache (<c>RESNET_MLNET_CACHE</c>) under the catalog's name, as the download
/// error tells a user of an offline machine to place it, so nothing is fetched.
/// </summary>
public sealed class PretrainedCommandTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("resnet-cli-pretrained-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static float[] ReadFloats(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var floats = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, floats, 0, bytes.Length);
        return floats;
    }

    private static void WriteWithTorchvision(string folder)
    {
        string python = Environment.GetEnvironmentVariable("RESNET_PEER_PYTHON") ?? "/usr/bin/python3";
        var psi = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "Peers", "torchvision_catalog_peer.py"), "resnet18", folder, "7" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {python}.");
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        _ = stdout.Result;
        Assert.True(p.ExitCode == 0, $"{python} torchvision_catalog_peer.py failed: {stderr} (needs Debian's python3-torchvision)");
    }

    [Fact]
    public void Train_PretrainedByName_StartsFromTheCachedStateDict_TrainsAndExports()
    {
        string peer = Directory.CreateDirectory(Path.Combine(_root, "peer")).FullName;
        WriteWithTorchvision(peer);
        float[] conv1 = ReadFloats(Path.Combine(peer, "conv1.bin"));
        string cache = Directory.CreateDirectory(Path.Combine(_root, "cache")).FullName;
        string cached = Path.Combine(cache, ResNetPretrained.ResNet18.FileName);
        File.Move(Path.Combine(peer, "weights.pth"), cached);
        byte[] before = File.ReadAllBytes(cached);
        string data = Samples.SmallCopy(classes: 2, trainPerClass: 10, testPerClass: 2);
        string outDir = Path.Combine(_root, "run");

        string? oldCache = Environment.GetEnvironmentVariable(WeightsCache.FolderVariable);
        string? oldMirror = Environment.GetEnvironmentVariable(WeightsCache.MirrorVariable);
        (int Code, string Out, string Err) run;
        try
        {
            Environment.SetEnvironmentVariable(WeightsCache.FolderVariable, cache);
            // A mirror that holds nothing: had the cache not held the file, the run would fail naming it, never reach the network.
            Environment.SetEnvironmentVariable(WeightsCache.MirrorVariable, Path.Combine(_root, "empty-mirror"));
            run = Run("train", "--data", Path.Combine(data, "train"), "--test", Path.Combine(data, "test"), "--output", outDir,
                "--pretrained", "resnet18", "--iterations", "2", "--batch-size", "10", "--threads", "2");
        }
        finally
        {
            Environment.SetEnvironmentVariable(WeightsCache.FolderVariable, oldCache);
            Environment.SetEnvironmentVariable(WeightsCache.MirrorVariable, oldMirror);
            Directory.Delete(data, recursive: true);
        }

        Assert.True(run.Code == 0, run.Err);
        Assert.Contains("pretrained: resnet18:IMAGENET1K_V1 (69.758% ImageNet top-1); trunk lr x0.1", run.Out);
        Assert.Contains("recipe: fine-tune", run.Out);
        Assert.DoesNotContain(".pth:", run.Err); // no download progress
        Assert.Equal(before, File.ReadAllBytes(cached));
        Assert.Equal([cached], Directory.GetFiles(cache));
        Assert.True(File.Exists(Path.Combine(outDir, "model.onnx")));
        Assert.Contains("test accuracy:", run.Out);

        // The trunk started at the state_dict: two fine-tuning steps (the trunk at a tenth of the head's rate) moved conv1 a little.
        var (model, card) = ModelCard.Load(Path.Combine(outDir, "model.dat"));
        using (model)
        {
            Assert.Equal("resnet18", card.Spec.Name);
            Assert.Equal(224, card.ImageHeight);
            float[] after = model.state_dict()["conv1.weight"].data<float>().ToArray();
            double dot = 0, na = 0, nb = 0, moved = 0;
            for (int i = 0; i < after.Length; i++)
            {
                dot += after[i] * (double)conv1[i]; na += after[i] * (double)after[i]; nb += conv1[i] * (double)conv1[i];
                moved = Math.Max(moved, Math.Abs(after[i] - conv1[i]));
            }
            double cosine = dot / Math.Sqrt(na * nb);
            Assert.True(moved > 0, "conv1 should have been trained");
            Assert.True(cosine > 0.99, $"conv1 cosine to the state_dict {cosine}");
        }
    }
}
