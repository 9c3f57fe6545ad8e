using System.Security.Cryptography;
using ResNet.Trainer.Data;
using ResNet.Trainer.Pretrained;
using ResNet.Trainer.Tests.Peers;

namespace ResNet.Trainer.Tests.Pretrained;

/// <summary>State_dicts written by Debian's torchvision at test time, and test-only catalog entries for them.</summary>
internal static class TestWeights
{
    /// <summary>
    /// Runs torchvision_reference.py for <paramref name="arch"/> (random weights with non-trivial BN statistics, and their
    /// logits on a random batch) in a new folder; returns the folder (weights.pth, outputs.pth).
    /// </summary>
    public static string WriteWithTorchvision(string arch, int seed = 7, int batch = 2)
    {
        string dir = TestData.TempDir();
        PythonPeer.Run(PythonPeer.Script("torchvision_reference.py"), arch, dir, seed.ToString(), "224", batch.ToString());
        return dir;
    }

    /// <summary>The first 8 hex digits of the file's SHA-256, as torchvision puts them in its file names.</summary>
    public static string HashPrefix(string file)
    {
        using var stream = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(stream))[..8];
    }

    /// <summary>
    /// Copies <paramref name="stateDict"/> into <paramref name="servedFolder"/> as <c>arch-hash8.pth</c> and returns a
    /// catalog entry whose address is <paramref name="baseUrl"/>/models/that name. <paramref name="hashPrefix"/> overrides
    /// the name's hash (a file that does not match its name).
    /// </summary>
    public static PretrainedWeights Entry(string arch, string stateDict, string servedFolder, Uri baseUrl, string? hashPrefix = null, ResizeCropTransform? transform = null)
    {
        string name = $"{arch}-{hashPrefix ?? HashPrefix(stateDict)}.pth";
        Directory.CreateDirectory(servedFolder);
        File.Copy(stateDict, Path.Combine(servedFolder, name), overwrite: true);
        return new PretrainedWeights(arch, "TEST", WeightsFormat.TorchvisionStateDict, new Uri(baseUrl, "models/" + name),
            transform ?? ResizeCropTransform.ImageNet(256), null, null, 0, "test weights", "written at test time by Debian's torchvision");
    }
}
