using ResNet.Trainer.Data;
using SkiaSharp;

namespace ResNet.Trainer.Tests.Data;

public class ImageFolderTests
{
    [Fact]
    public void Scan_GrayRgbRgbaOfMixedSizes_AllBecomeModelChannelsAtOneSize()
    {
        string root = TestData.TempDir();
        TestData.WriteImage(Path.Combine(root, "a", "gray.png"), 8, 8, SKColorType.Gray8, (x, y) => new SKColor(100, 100, 100));
        TestData.WriteImage(Path.Combine(root, "a", "rgb.bmp"), 16, 12, SKColorType.Rgba8888, (x, y) => new SKColor(200, 10, 20), SKEncodedImageFormat.Bmp);
        TestData.WriteImage(Path.Combine(root, "b", "rgba.png"), 4, 4, SKColorType.Rgba8888, (x, y) => new SKColor(0, 0, 255, 128));
        TestData.WriteImage(Path.Combine(root, "b", "photo.jpg"), 10, 10, SKColorType.Rgba8888, (x, y) => new SKColor(50, 150, 250), SKEncodedImageFormat.Jpeg);
        TestData.WriteImage(Path.Combine(root, "b", "web.webp"), 6, 6, SKColorType.Rgba8888, (x, y) => new SKColor(255, 255, 0), SKEncodedImageFormat.Webp);

        var rgb = ImageFolderSource.Scan(root, new ImageFolderOptions { Channels = 3, ImageSize = 8 });
        Assert.Equal(["a", "b"], rgb.ClassNames);
        Assert.Equal(5, rgb.Count);
        Assert.Equal([0, 0, 1, 1, 1], Enumerable.Range(0, 5).Select(rgb.LabelOf));
        var memory = InMemoryImages.From(rgb);
        Assert.Equal((8, 8, 3), (memory.Width, memory.Height, memory.Channels));
        var gray = rgb.Load(rgb.Files.ToList().FindIndex(f => f.EndsWith("gray.png")));
        Assert.Equal([100, 100, 100], gray.Pixels.Take(3).Select(b => (int)b));
        var red = rgb.Load(rgb.Files.ToList().FindIndex(f => f.EndsWith("rgb.bmp")));
        Assert.Equal([200, 10, 20], red.Pixels.Skip(3 * 20).Take(3).Select(b => (int)b));

        var oneChannel = ImageFolderSource.Scan(root, new ImageFolderOptions { Channels = 1, ImageSize = 8 });
        var luma = oneChannel.Load(oneChannel.Files.ToList().FindIndex(f => f.EndsWith("rgb.bmp")));
        Assert.Equal(64, luma.Pixels.Length);
        Assert.InRange(luma.Pixels[10], 66, 68); // 0.299*200 + 0.587*10 + 0.114*20 = 67.9
    }

    [Fact]
    public void Scan_WithoutImageSize_ResizesToTheFirstImage()
    {
        string root = TestData.TempDir();
        TestData.WriteImage(Path.Combine(root, "a", "1.png"), 12, 10, SKColorType.Gray8, (x, y) => SKColors.White);
        TestData.WriteImage(Path.Combine(root, "b", "2.png"), 30, 30, SKColorType.Gray8, (x, y) => SKColors.White);
        var source = ImageFolderSource.Scan(root, new ImageFolderOptions { Channels = 1 });
        Assert.Equal((12, 10), source.ImageSize);
        Assert.Equal((12, 10), (source.Load(1).Width, source.Load(1).Height));
    }

    [Fact]
    public void Scan_MissingFolder_NamesIt()
    {
        string missing = Path.Combine(TestData.TempDir(), "nope");
        var ex = Assert.Throws<DirectoryNotFoundException>(() => ImageFolderSource.Scan(missing));
        Assert.Contains(missing, ex.Message);
    }

    [Fact]
    public void Scan_EmptyFolder_SaysToAddClassSubfolders()
    {
        string root = TestData.TempDir();
        var ex = Assert.Throws<InvalidDatasetException>(() => ImageFolderSource.Scan(root));
        Assert.Contains("no class subfolders", ex.Message);
        Assert.Contains(root, ex.Message);
    }

    [Fact]
    public void Scan_OneClass_NeedsTwo()
    {
        string root = TestData.TempDir();
        TestData.WriteImage(Path.Combine(root, "only", "1.png"), 4, 4, SKColorType.Gray8, (x, y) => SKColors.White);
        var ex = Assert.Throws<InvalidDatasetException>(() => ImageFolderSource.Scan(root));
        Assert.Contains("only one class ('only')", ex.Message);
    }

    [Fact]
    public void Scan_ClassFolderWithoutImages_NamesTheFolder()
    {
        string root = TestData.TempDir();
        TestData.WriteImage(Path.Combine(root, "a", "1.png"), 4, 4, SKColorType.Gray8, (x, y) => SKColors.White);
        Directory.CreateDirectory(Path.Combine(root, "empty"));
        var ex = Assert.Throws<InvalidDatasetException>(() => ImageFolderSource.Scan(root));
        Assert.Contains(Path.Combine(root, "empty"), ex.Message);
        Assert.Equal(Path.Combine(root, "empty"), ex.Path);
    }

    [Fact]
    public void Scan_BadFiles_AreSkippedWithWarningsNamingThem_OrRejectedOnRequest()
    {
        string root = TestData.TempDir();
        TestData.WriteImage(Path.Combine(root, "a", "good.png"), 4, 4, SKColorType.Gray8, (x, y) => SKColors.White);
        TestData.WriteImage(Path.Combine(root, "b", "good.png"), 4, 4, SKColorType.Gray8, (x, y) => SKColors.Black);
        File.WriteAllBytes(Path.Combine(root, "a", "zero.png"), []);
        File.WriteAllText(Path.Combine(root, "a", "corrupt.jpg"), "this is not a jpeg");
        File.WriteAllText(Path.Combine(root, "b", "notes.txt"), "hello");
        var warnings = new List<string>();

        var source = ImageFolderSource.Scan(root, new ImageFolderOptions { Channels = 1, Warn = warnings.Add });
        Assert.Equal(2, source.Count);
        Assert.Equal(3, warnings.Count);
        Assert.Contains(warnings, w => w.Contains("zero.png") && w.Contains("zero-byte"));
        Assert.Contains(warnings, w => w.Contains("corrupt.jpg") && w.Contains("not a decodable image"));
        Assert.Contains(warnings, w => w.Contains("notes.txt") && w.Contains("not an image file"));
        Assert.Equal(warnings, source.Skipped);

        var ex = Assert.Throws<CorruptDataException>(() => ImageFolderSource.Scan(root, new ImageFolderOptions { OnBadImage = BadImagePolicy.Error }));
        Assert.EndsWith(".jpg", ex.Path); // corrupt.jpg sorts first in class a
        Assert.Contains("corrupt.jpg", ex.Message);
    }

    [Fact]
    public void Decode_ZeroByteFile_IsACorruptDataErrorNamingIt()
    {
        string path = Path.Combine(TestData.TempDir(), "x.png");
        File.WriteAllBytes(path, []);
        var ex = Assert.Throws<CorruptDataException>(() => ImageDecoder.Decode(path, 3));
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void EmbeddedSample_IsBalancedFashionMnist()
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "../../../../../samples/data/fashion-mnist-small");
        var train = ImageFolderSource.Scan(Path.Combine(dir, "train"), new ImageFolderOptions { Channels = 1 });
        var test = ImageFolderSource.Scan(Path.Combine(dir, "test"), new ImageFolderOptions { Channels = 1 });
        Assert.Equal(Idx.FashionMnistClasses.OrderBy(n => n, StringComparer.Ordinal), train.ClassNames);
        Assert.Equal(1000, train.Count);
        Assert.Equal(300, test.Count);
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(100, Enumerable.Range(0, train.Count).Count(i => train.LabelOf(i) == c)));
        Assert.Equal((28, 28), train.ImageSize);
        Assert.Empty(train.Skipped);
    }
}
