using SkiaSharp;

namespace ResNet.Scoring;

/// <summary>Decodes image files with SkiaSharp into <see cref="RawImage"/>s of a chosen channel count and size.</summary>
public static class ImageDecoder
{
    /// <summary>File extensions read as images (lower case, with the dot).</summary>
    public static IReadOnlySet<string> Extensions { get; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        { ".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif" };

    /// <summary>Decodes <paramref name="path"/> (gray, RGB or RGBA) to <paramref name="channels"/> channels, resized to width x height when given.</summary>
    /// <exception cref="CorruptDataException">The file is empty or not a decodable image.</exception>
    public static RawImage Decode(string path, int channels, int? width = null, int? height = null)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"Image '{path}' does not exist.", path);
        if (info.Length == 0) throw new CorruptDataException($"Image '{path}' is an empty (zero-byte) file. Delete it or replace it with the real image.", path);
        using var codec = SKCodec.Create(path)
            ?? throw new CorruptDataException($"'{path}' is not a PNG, JPEG, BMP or WebP image SkiaSharp can decode. Delete or replace it.", path);
        return Decode(codec, path, channels, width, height);
    }

    /// <summary>
    /// Decodes an image held in memory (e.g. an upload); <paramref name="name"/> names it in errors. Images wider or
    /// taller than <paramref name="maxSide"/> pixels are refused before their pixels are decoded.
    /// </summary>
    /// <exception cref="CorruptDataException">The bytes are empty, not a decodable image, or truncated.</exception>
    /// <exception cref="ImageTooLargeException">The image is wider or taller than <paramref name="maxSide"/>.</exception>
    public static RawImage Decode(byte[] data, string name, int channels, int? width = null, int? height = null, int maxSide = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length == 0) throw new CorruptDataException($"Image '{name}' is empty (zero bytes). Send the image file's bytes.", name);
        using var skData = SKData.CreateCopy(data);
        using var codec = SKCodec.Create(skData)
            ?? throw new CorruptDataException($"'{name}' is not a PNG, JPEG, BMP or WebP image SkiaSharp can decode. Send one of those formats.", name);
        if (codec.Info.Width > maxSide || codec.Info.Height > maxSide)
            throw new ImageTooLargeException(
                $"Image '{name}' is {codec.Info.Width}x{codec.Info.Height} pixels; the limit is {maxSide} pixels on a side. Downscale it first.", name);
        return Decode(codec, name, channels, width, height);
    }

    private static RawImage Decode(SKCodec codec, string path, int channels, int? width, int? height)
    {
        var want = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(want);
        var result = codec.GetPixels(want, bitmap.GetPixels());
        if (result is not (SKCodecResult.Success or SKCodecResult.IncompleteInput))
            throw new CorruptDataException($"Image '{path}' could not be decoded ({result}). Delete or replace it.", path);
        if (result == SKCodecResult.IncompleteInput)
            throw new CorruptDataException($"Image '{path}' is truncated. Delete or replace it.", path);

        SKBitmap pixels = bitmap;
        SKBitmap? resized = null;
        int w = width ?? want.Width, h = height ?? want.Height;
        if (w != want.Width || h != want.Height)
        {
            resized = bitmap.Resize(new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul), SKFilterQuality.Medium)
                ?? throw new CorruptDataException($"Image '{path}' could not be resized to {w}x{h}.", path);
            pixels = resized;
        }
        try
        {
            return FromRgba(pixels.GetPixelSpan(), w, h, channels);
        }
        finally
        {
            resized?.Dispose();
        }
    }

    /// <summary>Converts RGBA bytes to 1 channel (ITU-R 601 luma) or 3 (RGB, alpha dropped).</summary>
    public static RawImage FromRgba(ReadOnlySpan<byte> rgba, int width, int height, int channels)
    {
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "The model takes 1 (gray) or 3 (RGB) channels.");
        int n = width * height;
        var output = new byte[n * channels];
        if (channels == 3)
        {
            for (int i = 0; i < n; i++)
            {
                output[3 * i] = rgba[4 * i];
                output[3 * i + 1] = rgba[4 * i + 1];
                output[3 * i + 2] = rgba[4 * i + 2];
            }
        }
        else
        {
            for (int i = 0; i < n; i++)
                output[i] = (byte)Math.Clamp((int)Math.Round(0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2]), 0, 255);
        }
        return new RawImage(output, width, height, channels);
    }

    /// <summary>Reads only the header of <paramref name="path"/>; null when it is not a decodable image.</summary>
    public static (int Width, int Height)? Probe(string path)
    {
        if (new FileInfo(path).Length == 0) return null;
        using var codec = SKCodec.Create(path);
        return codec is null ? null : (codec.Info.Width, codec.Info.Height);
    }

    /// <summary>Reads only the header of an image held in memory; null when the bytes are not a decodable image.</summary>
    public static (int Width, int Height)? Probe(byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length == 0) return null;
        using var skData = SKData.CreateCopy(data);
        using var codec = SKCodec.Create(skData);
        return codec is null ? null : (codec.Info.Width, codec.Info.Height);
    }

    /// <summary>1 when the file is stored as grayscale, 3 otherwise; null when it is not a decodable image.</summary>
    public static int? ProbeChannels(string path)
    {
        if (new FileInfo(path).Length == 0) return null;
        using var codec = SKCodec.Create(path);
        return codec is null ? null : codec.Info.ColorType == SKColorType.Gray8 ? 1 : 3;
    }

    /// <summary>Writes an 8-bit image as PNG (gray or RGB), e.g. to export a dataset as an image folder.</summary>
    public static void SavePng(RawImage image, string path)
    {
        byte[] png = EncodePng(image);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        File.WriteAllBytes(path, png);
    }

    /// <summary>An 8-bit image (gray or RGB) encoded as PNG, losslessly.</summary>
    public static byte[] EncodePng(RawImage image)
    {
        var info = new SKImageInfo(image.Width, image.Height, image.Channels == 1 ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        Span<byte> span;
        unsafe { span = new Span<byte>((void*)bitmap.GetPixels(), bitmap.ByteCount); }
        if (image.Channels == 1 && bitmap.RowBytes == image.Width) image.Pixels.CopyTo(span);
        else if (image.Channels == 1)
            for (int y = 0; y < image.Height; y++) image.Pixels.AsSpan(y * image.Width, image.Width).CopyTo(span.Slice(y * bitmap.RowBytes));
        else
            for (int i = 0; i < image.Width * image.Height; i++) // Rgba8888 rows are packed (4 * width bytes)
            {
                span[4 * i] = image.Pixels[3 * i];
                span[4 * i + 1] = image.Pixels[3 * i + 1];
                span[4 * i + 2] = image.Pixels[3 * i + 2];
                span[4 * i + 3] = 255;
            }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
