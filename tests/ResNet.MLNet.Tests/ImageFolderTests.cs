using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet.Data;
using SkiaSharp;

namespace ResNet.MLNet.Tests;

public sealed class ImageFolderTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("resnet-folder-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    internal static void WritePng(string path, int width, int height, SKColor color)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var bmp = new SKBitmap(width, height);
        bmp.Erase(color);
        using var data = bmp.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    [Fact]
    public void LoadImagesFromDirectory_LabelsEachImageWithItsFolder_InClassThenPathOrder()
    {
        WritePng(Path.Combine(_root, "dog", "b.png"), 8, 8, SKColors.Red);
        WritePng(Path.Combine(_root, "dog", "a.png"), 8, 8, SKColors.Red);
        WritePng(Path.Combine(_root, "cat", "nested", "c.png"), 8, 8, SKColors.Blue);
        File.WriteAllText(Path.Combine(_root, "cat", "notes.txt"), "not an image");
        var ml = new MLContext(0);
        var data = ml.Data.LoadImagesFromDirectory(_root);
        var paths = data.GetColumn<string>("ImagePath").ToList();
        var labels = data.GetColumn<string>("Label").ToList();
        Assert.Equal(["cat", "dog", "dog"], labels);
        Assert.EndsWith(Path.Combine("cat", "nested", "c.png"), paths[0]);
        Assert.EndsWith(Path.Combine("dog", "a.png"), paths[1]);
        Assert.EndsWith(Path.Combine("dog", "b.png"), paths[2]);
    }

    [Fact]
    public void LoadImagesFromDirectory_WithoutLabels_ListsEveryImage()
    {
        WritePng(Path.Combine(_root, "x.png"), 4, 4, SKColors.Red);
        WritePng(Path.Combine(_root, "sub", "y.jpg"), 4, 4, SKColors.Red);
        var data = new MLContext(0).Data.LoadImagesFromDirectory(_root, useFolderNameAsLabel: false);
        Assert.Equal(2, data.GetColumn<string>("ImagePath").Count());
        Assert.All(data.GetColumn<string>("Label"), l => Assert.Equal("", l));
    }

    [Fact]
    public void MissingFolder_IsAClearError()
    {
        var ex = Assert.Throws<ImageFolderException>(() => new MLContext().Data.LoadImagesFromDirectory(Path.Combine(_root, "nope")));
        Assert.Contains("does not exist", ex.Message);
        Assert.Contains("nope", ex.Message);
    }

    [Fact]
    public void FolderWithoutClassFolders_SaysHowToLayItOut()
    {
        WritePng(Path.Combine(_root, "x.png"), 4, 4, SKColors.Red);
        var ex = Assert.Throws<ImageFolderException>(() => new MLContext().Data.LoadImagesFromDirectory(_root));
        Assert.Contains("has no subfolders", ex.Message);
    }

    [Fact]
    public void EmptyClassFolder_IsNamed()
    {
        WritePng(Path.Combine(_root, "dog", "a.png"), 4, 4, SKColors.Red);
        Directory.CreateDirectory(Path.Combine(_root, "cat"));
        var ex = Assert.Throws<ImageFolderException>(() => new MLContext().Data.LoadImagesFromDirectory(_root));
        Assert.Contains("'cat'", ex.Message);
        Assert.Contains("contain no images", ex.Message);
    }
}
