namespace ResNet.Trainer.Data;

// The resize and crop live in the scoring package (ResizeCrop), so scoring applies the same function without libtorch.

/// <summary>
/// The evaluation transform of torchvision's ImageNet classifiers (<c>ImageClassification</c> in
/// torchvision/transforms/_presets.py, what <c>weights.transforms()</c> returns): the shorter side is resized to
/// <see cref="ResizeSize"/> with PIL's antialiased bilinear filter, the centre <see cref="CropSize"/> square is cut out,
/// and pixels become <c>(p / 255 - mean) / std</c> in CHW order. On RGB images of 8 bits it gives torchvision's numbers
/// to the last bit.
/// </summary>
/// <param name="ResizeSize">Length the shorter side is resized to (torchvision: 256, or 232 for the V2 weights).</param>
/// <param name="CropSize">Side of the centre square that is kept (224 for every ImageNet ResNet).</param>
/// <param name="Mean">Per-channel mean on the 0..1 scale, subtracted after scaling.</param>
/// <param name="Std">Per-channel standard deviation on the 0..1 scale, divided by after the mean is subtracted.</param>
public sealed record ResizeCropTransform(int ResizeSize, int CropSize, float[] Mean, float[] Std)
{
    /// <summary>ImageNet's per-channel mean (RGB), as torchvision's presets give it.</summary>
    public static IReadOnlyList<float> ImageNetMean { get; } = [0.485f, 0.456f, 0.406f];

    /// <summary>ImageNet's per-channel standard deviation (RGB), as torchvision's presets give it.</summary>
    public static IReadOnlyList<float> ImageNetStd { get; } = [0.229f, 0.224f, 0.225f];

    /// <summary>torchvision's <c>ImageClassification(crop_size, resize_size)</c> with ImageNet's mean and std.</summary>
    public static ResizeCropTransform ImageNet(int resizeSize, int cropSize = 224) => new(resizeSize, cropSize, [.. ImageNetMean], [.. ImageNetStd]);

    /// <summary>The resize and crop alone (what an exported model records and its scorer applies).</summary>
    public ResizeCrop Geometry => new(ResizeSize, CropSize);

    /// <summary>Resizes the shorter side to <see cref="ResizeSize"/> and cuts out the centre <see cref="CropSize"/> square (<see cref="ResizeCrop.Apply"/>).</summary>
    /// <exception cref="ArgumentException">The transform's crop is larger than its resize.</exception>
    public RawImage ResizeAndCrop(RawImage image) => Geometry.Apply(image);

    /// <summary>Writes <c>(p / 255 - mean) / std</c> of an HWC image into <paramref name="chw"/> (channel planes), in float32 as torch computes it.</summary>
    /// <exception cref="ArgumentException">The channel count differs from the statistics', or the span has the wrong length.</exception>
    public void Normalize(RawImage image, Span<float> chw)
    {
        int c = image.Channels, plane = image.Width * image.Height;
        if (c != Mean.Length || c != Std.Length)
            throw new ArgumentException($"The image has {c} channel(s); this transform's statistics have {Mean.Length}. Decode the image as RGB.", nameof(image));
        if (chw.Length != c * plane)
            throw new ArgumentException($"Expected a buffer of {c * plane} floats for a {c}x{image.Height}x{image.Width} image; got {chw.Length}.", nameof(chw));
        var pixels = image.Pixels;
        for (int ch = 0; ch < c; ch++)
        {
            float mean = Mean[ch], std = Std[ch];
            var dst = chw.Slice(ch * plane, plane);
            for (int i = 0; i < plane; i++)
                dst[i] = ((float)pixels[i * c + ch] / 255f - mean) / std;
        }
    }

    /// <summary>The whole transform: resize, centre crop, normalize; returns CropSize x CropSize planes in CHW order.</summary>
    public float[] Apply(RawImage image)
    {
        var crop = ResizeAndCrop(image);
        var chw = new float[crop.Channels * crop.Width * crop.Height];
        Normalize(crop, chw);
        return chw;
    }
}
