using ResNet.Trainer.Data;
using SkiaSharp;

namespace ResNet.Trainer.Tests;

/// <summary>Real files for tests: PNGs encoded by SkiaSharp, and subsets of Debian's Fashion-MNIST.</summary>
internal static class TestData
{
    public const string FashionMnist = "/usr/share/datasets/fashion-mnist";

    private static readonly Lazy<InMemoryImages> FashionTrain = new(() => Idx.LoadSplit(FashionMnist, train: true));
    private static readonly Lazy<InMemoryImages> FashionTest = new(() => Idx.LoadSplit(FashionMnist, train: false));

    /// <summary>The first <paramref name="perClass"/> images of each class of the official train or test split.</summary>
    public static InMemoryImages Fashion(int perClass, bool train = true) =>
        InMemoryImages.From(DatasetSplit.Balanced(train ? FashionTrain.Value : FashionTest.Value, perClass));

    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "resnet-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Writes a PNG (or other format) with a colour per pixel from <paramref name="pixel"/>.</summary>
    public static string WriteImage(string path, int width, int height, SKColorType type, Func<int, int, SKColor> pixel, SKEncodedImageFormat format = SKEncodedImageFormat.Png)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (format == SKEncodedImageFormat.Bmp) { WriteBmp(path, width, height, pixel); return path; }
        using var bitmap = new SKBitmap(new SKImageInfo(width, height, type, type == SKColorType.Gray8 ? SKAlphaType.Opaque : SKAlphaType.Unpremul));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                bitmap.SetPixel(x, y, pixel(x, y));
        using var data = bitmap.Encode(format, 95);
        using var file = File.Create(path);
        data.SaveTo(file);
        return path;
    }

    // SkiaSharp 2.88 decodes BMP but does not encode it: a 24-bit bottom-up BMP written by hand.
    private static void WriteBmp(string path, int width, int height, Func<int, int, SKColor> pixel)
    {
        int stride = (width * 3 + 3) & ~3;
        using var w = new BinaryWriter(File.Create(path));
        w.Write((byte)'B'); w.Write((byte)'M'); w.Write(54 + stride * height); w.Write(0); w.Write(54);
        w.Write(40); w.Write(width); w.Write(height); w.Write((short)1); w.Write((short)24); w.Write(0); w.Write(stride * height);
        w.Write(2835); w.Write(2835); w.Write(0); w.Write(0);
        for (int y = height - 1; y >= 0; y--)
        {
            for (int x = 0; x < width; x++) { var c = pixel(x, y); w.Write(c.Blue); w.Write(c.Green); w.Write(c.Red); }
            for (int p = width * 3; p < stride; p++) w.Write((byte)0);
        }
    }

    /// <summary>Writes a Fashion-MNIST subset as an image folder of PNGs; returns the folder.</summary>
    public static string FashionFolder(int perClass, bool train = true)
    {
        string dir = TempDir();
        var images = Fashion(perClass, train);
        for (int i = 0; i < images.Count; i++)
            ImageDecoder.SavePng(images.Load(i), Path.Combine(dir, images.ClassNames[images.LabelOf(i)], $"{i:D4}.png"));
        return dir;
    }
}
