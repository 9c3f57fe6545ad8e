using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet.Transforms;
using SkiaSharp;

namespace ResNet.MLNet.Tests.BadInput;

/// <summary>Hostile inputs to the ML.NET API: each fails (or is handled) with a message naming the row, file or option.</summary>
public sealed class HostileApiTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("resnet-hostile-api-").FullName;
    private readonly MLContext _ml = new(seed: 0);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private sealed class PathRow
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
    }

    private static ResNetClassifierEstimator.Options Tiny(string image = "Image") => new()
    {
        Architecture = "resnet8", ImageColumnName = image, Channels = 1, ImageSize = 16, Epochs = 1, BatchSize = 4, Seed = 1,
    };

    private string Folder(int classes, int perClass)
    {
        string dir = Path.Combine(_root, "data");
        for (int c = 0; c < classes; c++)
            for (int i = 0; i < perClass; i++)
                ImageFolderTests.WritePng(Path.Combine(dir, $"c{c}", $"{i}.png"), 16, 16, new SKColor((byte)(c * 60), (byte)(i * 20), 0));
        return dir;
    }

    private IEstimator<ITransformer> LoadAndTrain(ResNetClassifierEstimator.Options options) =>
        _ml.Transforms.LoadImages("Image", null, "ImagePath").Append(_ml.Transforms.Conversion.MapValueToKey("Label")).Append(_ml.Transforms.ResNetClassifier(options));

    [Fact]
    public void BadTrainingImage_IsReportedWithItsRowAndPath_NotRowZero()
    {
        string dir = Folder(2, 4);
        string broken = Path.Combine(dir, "c1", "9-broken.png"); // sorts last: row 8 of 8
        File.WriteAllBytes(broken, [1, 2, 3, 4, 5]);
        var data = _ml.Data.LoadImagesFromDirectory(dir);
        var ex = Assert.Throws<InvalidDataException>(() => LoadAndTrain(Tiny()).Fit(data));
        Assert.Contains(broken, ex.Message);
        Assert.DoesNotContain("row 0", ex.Message);
    }

    [Fact]
    public void ZeroByteImage_ThroughLoadImages_NamesThePath()
    {
        string dir = Folder(2, 3);
        string empty = Path.Combine(dir, "c0", "5-empty.png");
        File.WriteAllBytes(empty, []);
        var data = _ml.Data.LoadImagesFromDirectory(dir);
        var ex = Assert.Throws<InvalidDataException>(() => LoadAndTrain(Tiny()).Fit(data));
        Assert.Contains(empty, ex.Message);
    }

    [Fact]
    public void ScoringAMissingImage_NamesThePath()
    {
        string dir = Folder(2, 4);
        var model = LoadAndTrain(Tiny()).Fit(_ml.Data.LoadImagesFromDirectory(dir));
        string missing = Path.Combine(dir, "c0", "gone.png");
        var rows = _ml.Data.LoadFromEnumerable(new[] { new PathRow { ImagePath = Path.Combine(dir, "c0", "0.png"), Label = "c0" }, new PathRow { ImagePath = missing, Label = "c1" } });
        var ex = Assert.ThrowsAny<Exception>(() => model.Transform(rows).GetColumn<float[]>("Score").ToList());
        Assert.Contains(missing, ex.Message);
        Assert.DoesNotContain("Splitter/consolidator", ex.Message);
    }

    [Fact]
    public void FitOnAnEmptyView_SaysItIsEmpty()
    {
        var rows = _ml.Data.LoadFromEnumerable(Array.Empty<PathRow>());
        var ex = Assert.Throws<InvalidDataException>(() => LoadAndTrain(Tiny()).Fit(rows));
        Assert.Contains("no rows", ex.Message);
        Assert.DoesNotContain("1 class", ex.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-4)]
    public void ImageSizeBelowOne_NamesTheOption(int size)
    {
        var options = Tiny();
        options.ImageSize = size;
        var ex = Assert.ThrowsAny<ArgumentException>(() => _ml.Transforms.ResNetClassifier(options));
        Assert.Contains("ImageSize", ex.Message);
        Assert.DoesNotContain("imageWidth", ex.Message);
    }

    [Fact]
    public void LoadImagesFromDirectory_SymlinkLoops_ListEachImageOnce()
    {
        string dir = Folder(2, 3);
        Directory.CreateSymbolicLink(Path.Combine(dir, "c0", "up"), "..");
        Directory.CreateSymbolicLink(Path.Combine(dir, "c1", "root"), dir);
        Directory.CreateSymbolicLink(Path.Combine(dir, "c1", "self"), ".");
        var rows = _ml.Data.CreateEnumerable<PathRow>(_ml.Data.LoadImagesFromDirectory(dir), reuseRowObject: false).ToList();
        Assert.Equal(6, rows.Count);
        Assert.Equal(3, rows.Count(r => r.Label == "c0"));
        Assert.Equal(6, rows.Select(r => r.ImagePath).Distinct().Count());
    }

    [Fact]
    public void LoadImagesFromDirectory_DoesNotFollowLinksOutOfTheClassFolder()
    {
        string dir = Folder(2, 3);
        string elsewhere = Path.Combine(_root, "elsewhere");
        ImageFolderTests.WritePng(Path.Combine(elsewhere, "x.png"), 16, 16, SKColors.Red);
        Directory.CreateSymbolicLink(Path.Combine(dir, "c0", "linked"), elsewhere);
        var rows = _ml.Data.CreateEnumerable<PathRow>(_ml.Data.LoadImagesFromDirectory(dir), reuseRowObject: false).ToList();
        Assert.Equal(6, rows.Count);
        Assert.DoesNotContain(rows, r => r.ImagePath.Contains("x.png"));
    }
}
