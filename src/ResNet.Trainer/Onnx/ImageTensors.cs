using SkiaSharp;

namespace ResNet.Trainer.Onnx;

/// <summary>
/// Decodes image files (PNG, JPEG, BMP, GIF, WebP) into the float layout a scorer takes: C x H x W, RGB order,
/// values in the requested range. Any size is accepted and resized (stretched, bilinear) to the model's input;
/// colour images are converted to gray for 1-channel models (ITU-R BT.601 luma) and gray images are repeated
/// across 3 channels for RGB models.
/// </summary>
public static class ImageTensors
{
    /// <summary>The file extensions <see cref="FindImages"/> picks up.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"];

    /// <summary>Loads one image as channels x height x width floats.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not an image SkiaSharp can decode.</exception>
    public static float[] Load(string path, int channels, int height, int width, PixelRange range)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Image '{path}' does not exist.", path);
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "Images can be loaded as 1 (gray) or 3 (RGB) channels.");
        using var decoded = SKBitmap.Decode(path)
            ?? throw new InvalidDataException($"Image '{path}' could not be decoded; use PNG, JPEG, BMP, GIF or WebP.");
        using var rgba = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        if (!decoded.ScalePixels(rgba, SKFilterQuality.Medium))
            throw new InvalidDataException($"Image '{path}' could not be resized to {width}x{height}.");
        return ToTensor(rgba.GetPixelSpan(), channels, height, width, range);
    }

    /// <summary>Converts RGBA8888 pixels (row-major, height x width) to channels x height x width floats.</summary>
    public static float[] ToTensor(ReadOnlySpan<byte> rgba, int channels, int height, int width, PixelRange range)
    {
        int plane = height * width;
        if (rgba.Length != plane * 4)
            throw new ArgumentException($"Expected {plane * 4} bytes of RGBA for {width}x{height}, got {rgba.Length}.", nameof(rgba));
        float scale = range == PixelRange.ZeroTo255 ? 1f : 1f / 255f;
        var data = new float[channels * plane];
        for (int i = 0; i < plane; i++)
        {
            byte r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
            if (channels == 1)
                data[i] = (0.299f * r + 0.587f * g + 0.114f * b) * scale;
            else
            {
                data[i] = r * scale;
                data[plane + i] = g * scale;
                data[2 * plane + i] = b * scale;
            }
        }
        return data;
    }

    /// <summary>Expands files and folders (searched recursively) into the image files they hold, sorted by path.</summary>
    /// <exception cref="FileNotFoundException">A path is neither a file nor a folder.</exception>
    public static IReadOnlyList<string> FindImages(IEnumerable<string> paths)
    {
        var files = new List<string>();
        foreach (var p in paths)
        {
            if (Directory.Exists(p))
                files.AddRange(Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories)
                    .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                    .Order(StringComparer.Ordinal));
            else if (File.Exists(p))
                files.Add(p);
            else
                throw new FileNotFoundException($"'{p}' is neither an image file nor a folder.", p);
        }
        return files;
    }
}
