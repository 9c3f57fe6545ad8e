
namespace ResNet.Scoring;

/// <summary>
/// Decodes image files (PNG, JPEG, BMP, GIF, WebP) into the float layout a scorer takes: C x H x W, RGB order,
/// values in the requested range. Any size is accepted: a model whose metadata records a resize and crop
/// (<see cref="OnnxModelInfo.Preprocessing"/>) gets exactly that; otherwise images are stretched (bilinear) to the model's input;
/// colour images are converted to gray for 1-channel models (ITU-R BT.601 luma) and gray images are repeated
/// across 3 channels for RGB models.
/// </summary>
public static class ImageTensors
{
    /// <summary>Loads one image as channels x height x width floats (decoded and resized by <see cref="ImageDecoder"/>).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CorruptDataException">The file is empty or not an image SkiaSharp can decode.</exception>
    public static float[] Load(string path, int channels, int height, int width, PixelRange range) =>
        ToTensor(ImageDecoder.Decode(path, channels, width, height), range);

    /// <summary>
    /// Decodes an image file as <paramref name="model"/> takes it: its resize and centre crop when its metadata records one
    /// (<see cref="OnnxModelInfo.Preprocessing"/>), else stretched to its input size; its channel count.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CorruptDataException">The file is empty or not an image SkiaSharp can decode.</exception>
    public static RawImage Decode(string path, OnnxModelInfo model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Preprocessing is { } prep
            ? prep.Apply(ImageDecoder.Decode(path, model.Channels))
            : ImageDecoder.Decode(path, model.Channels, model.Width, model.Height);
    }

    /// <summary>Decodes encoded image bytes as <paramref name="model"/> takes them (see <see cref="Decode(string, OnnxModelInfo)"/>); <paramref name="name"/> names them in errors.</summary>
    /// <exception cref="CorruptDataException">The bytes are empty, not a decodable image, or truncated.</exception>
    /// <exception cref="ImageTooLargeException">The image is wider or taller than <paramref name="maxSide"/>.</exception>
    public static RawImage Decode(byte[] data, string name, OnnxModelInfo model, int maxSide = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.Preprocessing is { } prep
            ? prep.Apply(ImageDecoder.Decode(data, name, model.Channels, maxSide: maxSide))
            : ImageDecoder.Decode(data, name, model.Channels, model.Width, model.Height, maxSide);
    }

    /// <summary>Loads one image file as the float tensor <paramref name="model"/> takes (C x H x W, its pixel range): <see cref="Decode(string, OnnxModelInfo)"/>, then <see cref="ToTensor"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="CorruptDataException">The file is empty or not an image SkiaSharp can decode.</exception>
    public static float[] Load(string path, OnnxModelInfo model) => ToTensor(Decode(path, model), model.Normalization.Range);

    /// <summary>Converts a decoded image to channels x height x width floats in <paramref name="range"/>.</summary>
    public static float[] ToTensor(RawImage image, PixelRange range)
    {
        float scale = range == PixelRange.ZeroTo255 ? 1f : 1f / 255f;
        int plane = image.Height * image.Width, channels = image.Channels;
        var data = new float[channels * plane];
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < channels; c++)
                data[c * plane + i] = image.Pixels[i * channels + c] * scale; // HWC bytes -> CHW floats
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
                files.AddRange(FolderListing.Images(p, recursive: true));
            else if (File.Exists(p))
                files.Add(p);
            else
                throw new FileNotFoundException($"'{p}' is neither an image file nor a folder.", p);
        }
        return files;
    }
}
