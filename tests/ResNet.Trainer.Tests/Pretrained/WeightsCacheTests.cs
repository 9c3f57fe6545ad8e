using System.Security.Cryptography;
using ResNet.Trainer.Models;
using ResNet.Trainer.Pretrained;

namespace ResNet.Trainer.Tests.Pretrained;

/// <summary>One torchvision ResNet-18 state_dict, written by Debian's torchvision once for the download tests.</summary>
public sealed class TorchvisionResNet18File : IDisposable
{
    private readonly string _dir = TestWeights.WriteWithTorchvision("resnet18", batch: 1);

    public string Path => System.IO.Path.Combine(_dir, "weights.pth");

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}

public sealed class WeightsCacheTests(TorchvisionResNet18File file) : IClassFixture<TorchvisionResNet18File>, IDisposable
{
    private readonly List<string> _dirs = [];

    // Each test copies the 47 MB file a few times: its folders go when it ends.
    private string TempDir()
    {
        string dir = TestData.TempDir();
        _dirs.Add(dir);
        return dir;
    }

    public void Dispose()
    {
        foreach (var dir in _dirs) Directory.Delete(dir, recursive: true);
    }

    private sealed class Lines : IProgress<DownloadProgress>
    {
        public List<DownloadProgress> Reports { get; } = [];
        public void Report(DownloadProgress value) { lock (Reports) Reports.Add(value); }
    }

    private static void AssertNothingCached(string cacheFolder) =>
        Assert.True(!Directory.Exists(cacheFolder) || !Directory.EnumerateFileSystemEntries(cacheFolder).Any(),
            $"the cache should be empty but holds: {string.Join(", ", Directory.Exists(cacheFolder) ? Directory.EnumerateFileSystemEntries(cacheFolder) : [])}");

    [Fact]
    public async Task FirstUse_DownloadsVerifiesAndRenames_SecondUseDoesNotRequestAgain()
    {
        string served = TempDir();
        using var server = LoopbackServer.ServingFolder(served);
        var entry = TestWeights.Entry("resnet18", file.Path, served, server.BaseUrl);
        var cache = new WeightsCache(TempDir());
        var lines = new Lines();

        string path = await cache.EnsureAsync(entry, lines);

        Assert.Equal(cache.PathOf(entry), path);
        Assert.Equal(File.ReadAllBytes(file.Path), File.ReadAllBytes(path));
        Assert.StartsWith(entry.Sha256Prefix!, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))));
        Assert.Equal([path], Directory.GetFileSystemEntries(cache.Folder)); // no .partial left beside it
        long size = new FileInfo(path).Length;
        Assert.True(lines.Reports.Count >= 3, $"expected a progress line per MiB of {size:N0} bytes, got {lines.Reports.Count}");
        Assert.Equal(new DownloadProgress(entry.FileName, size, size), lines.Reports[^1]);
        Assert.Contains("(100%)", lines.Reports[^1].ToString());
        Assert.Equal(["/models/" + entry.FileName], server.Paths);

        DateTime written = File.GetLastWriteTimeUtc(path);
        Assert.Equal(path, await cache.EnsureAsync(entry));
        Assert.Single(server.Paths);
        Assert.Equal(written, File.GetLastWriteTimeUtc(path));
    }

    [Fact]
    public async Task WrongHash_FailsNamingBothHashesTheUrlAndTheCachePath_AndLeavesNothing()
    {
        string served = TempDir();
        using var server = LoopbackServer.ServingFolder(served);
        var entry = TestWeights.Entry("resnet18", file.Path, served, server.BaseUrl, hashPrefix: "00000000");
        var cache = new WeightsCache(TempDir());

        var ex = await Assert.ThrowsAsync<PretrainedDownloadException>(() => cache.EnsureAsync(entry));

        string actual = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file.Path)));
        Assert.Contains("resnet18-00000000.pth", ex.Message);
        Assert.Contains("does not start with 00000000", ex.Message);
        Assert.Contains(actual, ex.Message);
        Assert.Contains(entry.Url!.AbsoluteUri, ex.Message);
        Assert.Contains(cache.PathOf(entry), ex.Message);
        Assert.Equal(cache.PathOf(entry), ex.CachePath);
        AssertNothingCached(cache.Folder);
    }

    [Fact]
    public async Task ConnectionCutMidway_FailsSayingHowFarItGot_AndLeavesNothing()
    {
        byte[] body = File.ReadAllBytes(file.Path);
        using var server = LoopbackServer.Start(_ => new LoopbackReply(200, body, SendOnly: body.Length / 3));
        var entry = TestWeights.Entry("resnet18", file.Path, TempDir(), server.BaseUrl);
        var cache = new WeightsCache(TempDir());

        var ex = await Assert.ThrowsAsync<PretrainedDownloadException>(() => cache.EnsureAsync(entry));

        Assert.Contains($"stopped after", ex.Message);
        Assert.Contains($"of {body.Length:N0} bytes", ex.Message);
        Assert.Contains(entry.FileName, ex.Message);
        Assert.Contains(cache.PathOf(entry), ex.Message);
        AssertNothingCached(cache.Folder);
    }

    [Fact]
    public async Task NotFound_FailsWithTheStatusAndHowToPlaceTheFile_AndLeavesNothing()
    {
        using var server = LoopbackServer.ServingFolder(TempDir()); // empty: every name is a 404
        var entry = TestWeights.Entry("resnet18", file.Path, TempDir(), server.BaseUrl);
        var cache = new WeightsCache(TempDir());

        var ex = await Assert.ThrowsAsync<PretrainedDownloadException>(() => cache.EnsureAsync(entry));

        Assert.Contains("HTTP 404", ex.Message);
        Assert.Contains(entry.Url!.AbsoluteUri, ex.Message);
        Assert.Contains($"save it as '{cache.PathOf(entry)}'", ex.Message);
        Assert.Contains(WeightsCache.MirrorVariable, ex.Message);
        Assert.Equal(entry.Url.AbsoluteUri, ex.Address);
        AssertNothingCached(cache.Folder);
    }

    [Fact]
    public async Task ConnectionRefused_FailsSayingItCouldNotConnect_AndLeavesNothing()
    {
        var nobody = new Uri($"http://127.0.0.1:{LoopbackServer.FreePort()}/");
        var entry = TestWeights.Entry("resnet18", file.Path, TempDir(), nobody);
        var cache = new WeightsCache(TempDir());

        var ex = await Assert.ThrowsAsync<PretrainedDownloadException>(() => cache.EnsureAsync(entry));

        Assert.Contains($"could not connect to {entry.Url!.AbsoluteUri}", ex.Message);
        Assert.Contains("ConnectionRefused", ex.Message);
        Assert.Contains(cache.PathOf(entry), ex.Message);
        AssertNothingCached(cache.Folder);
    }

    [Fact]
    public async Task AServerThatNeverAnswers_FailsWithTheClientsTimeout_AndLeavesNothing()
    {
        // Accepts connections and never says a word.
        var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        try
        {
            var url = new Uri($"http://127.0.0.1:{((System.Net.IPEndPoint)silent.LocalEndpoint).Port}/");
            var entry = TestWeights.Entry("resnet18", file.Path, TempDir(), url);
            using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(1) };
            var cache = new WeightsCache(TempDir(), client: client);

            var ex = await Assert.ThrowsAsync<PretrainedDownloadException>(() => cache.EnsureAsync(entry));

            Assert.Contains($"{entry.Url!.AbsoluteUri} did not answer within 1 s", ex.Message);
            AssertNothingCached(cache.Folder);
        }
        finally
        {
            silent.Stop();
        }
    }

    [Fact]
    public async Task LocalMirrorFolder_ServesTheFileOffline_AndAMissingFileNamesTheFolder()
    {
        string mirror = TempDir();
        // The official address is never contacted: .invalid names resolve nowhere.
        var entry = TestWeights.Entry("resnet18", file.Path, mirror, new Uri("https://weights.invalid/"));
        var cache = new WeightsCache(TempDir(), mirror);

        string path = await cache.EnsureAsync(entry);

        Assert.Equal(File.ReadAllBytes(file.Path), File.ReadAllBytes(path));
        Assert.Equal(Path.Combine(mirror, entry.FileName), cache.SourceOf(entry));

        var missing = TestWeights.Entry("resnet34", file.Path, TempDir(), new Uri("https://weights.invalid/"));
        var ex = await Assert.ThrowsAsync<PretrainedDownloadException>(() => cache.EnsureAsync(missing));
        Assert.Contains($"mirror folder {mirror} has no file named {missing.FileName}", ex.Message);
        Assert.Equal([path], Directory.GetFileSystemEntries(cache.Folder));
    }

    [Fact]
    public async Task MirrorUrl_IsAskedForTheFileByName_InsteadOfTheOfficialAddress()
    {
        string served = TempDir();
        using var server = LoopbackServer.ServingFolder(served);
        var entry = TestWeights.Entry("resnet18", file.Path, served, new Uri("https://weights.invalid/"));
        var cache = new WeightsCache(TempDir(), new Uri(server.BaseUrl, "mirror/").AbsoluteUri);

        string path = await cache.EnsureAsync(entry);

        Assert.Equal(["/mirror/" + entry.FileName], server.Paths);
        Assert.Equal(File.ReadAllBytes(file.Path), File.ReadAllBytes(path));
    }

    [Fact]
    public async Task ACacheFolderThatCannotBeCreated_IsNamedWithTheVariableThatMovesIt()
    {
        string blocker = Path.Combine(TempDir(), "a-file");
        File.WriteAllText(blocker, "not a folder");
        var entry = TestWeights.Entry("resnet18", file.Path, TempDir(), new Uri("https://weights.invalid/"));
        var cache = new WeightsCache(Path.Combine(blocker, "cache"));

        var ex = await Assert.ThrowsAsync<PretrainedDownloadException>(() => cache.EnsureAsync(entry));

        Assert.Contains($"the cache folder {cache.Folder} cannot be created", ex.Message);
        Assert.Contains(WeightsCache.FolderVariable, ex.Message);
    }

    [Fact]
    public void Environment_ChoosesTheCacheFolderAndMirror_WithXdgAndHomeFallbacks()
    {
        var set = WeightsCache.FromEnvironment(v => v switch
        {
            WeightsCache.FolderVariable => "/data/weights",
            WeightsCache.MirrorVariable => "http://mirror.local/models/",
            "XDG_CACHE_HOME" => "/xdg",
            _ => null,
        });
        Assert.Equal("/data/weights", set.Folder);
        Assert.Equal("http://mirror.local/models/", set.Mirror);
        Assert.Equal("http://mirror.local/models/resnet50-11ad3fa6.pth", set.SourceOf(ResNetPretrained.ResNet50));

        var xdg = WeightsCache.FromEnvironment(v => v == "XDG_CACHE_HOME" ? "/xdg" : null);
        Assert.Equal("/xdg/resnet-mlnet", xdg.Folder);
        Assert.Null(xdg.Mirror);
        Assert.Equal("https://download.pytorch.org/models/resnet50-11ad3fa6.pth", xdg.SourceOf(ResNetPretrained.ResNet50));
        Assert.Equal("/xdg/resnet-mlnet/resnet50-11ad3fa6.pth", xdg.PathOf(ResNetPretrained.ResNet50));

        var home = WeightsCache.FromEnvironment(_ => null);
        Assert.Equal(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "resnet-mlnet"), home.Folder);
    }

    [Fact]
    public void LoadByEntry_WithAClassCount_KeepsTheTrunkAndGivesAFreshHead()
    {
        string served = TempDir();
        using var server = LoopbackServer.ServingFolder(served);
        var entry = TestWeights.Entry("resnet18", file.Path, served, server.BaseUrl);
        var cache = new WeightsCache(TempDir());

        var net = PretrainedLoader.Load(entry, numClasses: 7, seed: 3, cache: cache);
        using var model = net.Model;

        var source = ResNetWeights.ReadStateDict(file.Path);
        var loaded = model.state_dict();
        Assert.Equal([7L, 512L], loaded["fc.weight"].shape);
        Assert.True(loaded["layer4.1.conv2.weight"].equal(source["layer4.1.conv2.weight"]).all().item<bool>());
        Assert.True(loaded["bn1.running_var"].equal(source["bn1.running_var"]).all().item<bool>());
        Assert.Equal(224, net.ImageSize);
        Assert.Equal(Trainer.Data.NormalizationKind.PerChannel, net.Normalization.Kind);
        Assert.Equal([0.485f, 0.456f, 0.406f], net.Normalization.Mean);
        Assert.Same(entry, net.Weights);

        // 1000 classes given explicitly is still a new head, not ImageNet's.
        using var same = PretrainedLoader.Load(entry, numClasses: 1000, seed: 3, cache: cache).Model;
        Assert.False(same.state_dict()["fc.weight"].equal(source["fc.weight"]).all().item<bool>());
        Assert.Single(server.Paths);
        foreach (var t in source.Values) t.Dispose();
    }
}
