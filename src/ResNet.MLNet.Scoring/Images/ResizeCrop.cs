namespace ResNet.Scoring;

/// <summary>
/// The geometry of torchvision's ImageNet evaluation transform (<c>ImageClassification</c> in
/// torchvision/transforms/_presets.py): the shorter side is resized to <see cref="ResizeSize"/> with PIL's antialiased
/// bilinear filter (<see cref="PilBilinear"/>), then the centre <see cref="CropSize"/> square is cut out. Training applies
/// it before a pretrained network, an exported model records it in its metadata (<see cref="OnnxMetadataKeys.Preprocessing"/>),
/// and the scorers apply it to images of any size, since ONNX opset 17's Resize has no antialiasing.
/// </summary>
/// <param name="ResizeSize">Length the shorter side is resized to (torchvision: 256, or 232 for the V2 weights).</param>
/// <param name="CropSize">Side of the centre square that is kept (224 for every ImageNet ResNet).</param>
public sealed record ResizeCrop(int ResizeSize, int CropSize)
{
    /// <summary>Checks that the sizes can work together.</summary>
    /// <exception cref="ArgumentException">The crop is not positive or larger than the resize.</exception>
    public void Validate()
    {
        if (CropSize <= 0 || ResizeSize < CropSize)
            throw new ArgumentException($"This transform resizes to {ResizeSize} and crops {CropSize}: the crop must be positive and no larger than the resize.");
    }

    /// <summary>
    /// The size torchvision's <c>Resize([size])</c> gives an image of <paramref name="width"/> x <paramref name="height"/>:
    /// the shorter side becomes <paramref name="size"/>, the longer one <c>int(size * long / short)</c> (truncated).
    /// </summary>
    public static (int Width, int Height) ShorterSideTo(int width, int height, int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        if (width <= height) return (size, (int)((double)size * height / width));
        return ((int)((double)size * width / height), size);
    }

    /// <summary>Resizes the shorter side to <see cref="ResizeSize"/> and cuts out the centre <see cref="CropSize"/> square (8-bit pixels, any channel count).</summary>
    /// <exception cref="ArgumentException">The crop is larger than the resize.</exception>
    public RawImage Apply(RawImage image)
    {
        Validate();
        var (w, h) = ShorterSideTo(image.Width, image.Height, ResizeSize);
        return CenterCrop(PilBilinear.Resize(image, w, h), CropSize, CropSize);
    }

    /// <summary>
    /// The centre <paramref name="width"/> x <paramref name="height"/> region, placed as torchvision's <c>center_crop</c> places
    /// it: offsets <c>round((size - crop) / 2)</c> with Python's round-half-to-even.
    /// </summary>
    /// <exception cref="ArgumentException">The image is smaller than the crop.</exception>
    public static RawImage CenterCrop(RawImage image, int width, int height)
    {
        if (width > image.Width || height > image.Height)
            throw new ArgumentException($"A {image.Width}x{image.Height} image cannot give a {width}x{height} centre crop; resize it first.", nameof(image));
        int top = (int)Math.Round((image.Height - height) / 2.0, MidpointRounding.ToEven);
        int left = (int)Math.Round((image.Width - width) / 2.0, MidpointRounding.ToEven);
        int c = image.Channels;
        var output = new byte[width * height * c];
        for (int y = 0; y < height; y++)
            image.Pixels.AsSpan(((top + y) * image.Width + left) * c, width * c).CopyTo(output.AsSpan(y * width * c));
        return new RawImage(output, width, height, c);
    }
}

/// <summary>
/// PIL's (Pillow's) bilinear resize of 8-bit images, which antialiases when it shrinks: the triangle filter is widened by
/// the scale factor, coefficients are fixed point with 22 fraction bits, and the horizontal pass (rounded to 8 bits)
/// runs before the vertical one. Written from the algorithm's description (Pillow's libImaging/Resample.c) so that
/// torchvision's PIL preprocessing is reproduced exactly; ONNX opset 17's Resize has no antialiasing.
/// </summary>
public static class PilBilinear
{
    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Resizes an HWC image of 8-bit pixels (any channel count) to <paramref name="width"/> x <paramref name="height"/>.</summary>
    public static RawImage Resize(RawImage image, int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (width == image.Width && height == image.Height) return image;
        int c = image.Channels;
        var (xBounds, xCoeffs, xSize) = Coefficients(image.Width, width);
        var (yBounds, yCoeffs, ySize) = Coefficients(image.Height, height);

        // Only the source rows the vertical pass reads go through the horizontal pass.
        int firstRow = yBounds[0], lastRow = yBounds[2 * height - 2] + yBounds[2 * height - 1];
        byte[] rows = image.Pixels;
        int rowOffset = 0;
        if (width != image.Width)
        {
            rows = new byte[(lastRow - firstRow) * width * c];
            for (int y = firstRow; y < lastRow; y++)
            {
                int src = y * image.Width * c, dst = (y - firstRow) * width * c;
                for (int x = 0; x < width; x++)
                {
                    int min = xBounds[2 * x], count = xBounds[2 * x + 1], k = x * xSize;
                    for (int ch = 0; ch < c; ch++)
                    {
                        int sum = 1 << (PrecisionBits - 1);
                        for (int i = 0; i < count; i++) sum += image.Pixels[src + (min + i) * c + ch] * xCoeffs[k + i];
                        rows[dst + x * c + ch] = Clip8(sum);
                    }
                }
            }
            rowOffset = firstRow;
        }
        if (height == image.Height) return new RawImage(rows, width, height, c);

        var output = new byte[width * height * c];
        int stride = width * c;
        for (int y = 0; y < height; y++)
        {
            int min = yBounds[2 * y] - rowOffset, count = yBounds[2 * y + 1], k = y * ySize;
            for (int i = 0; i < stride; i++)
            {
                int sum = 1 << (PrecisionBits - 1);
                for (int j = 0; j < count; j++) sum += rows[(min + j) * stride + i] * yCoeffs[k + j];
                output[y * stride + i] = Clip8(sum);
            }
        }
        return new RawImage(output, width, height, c);
    }

    private static byte Clip8(int value) => (byte)Math.Clamp(value >> PrecisionBits, 0, 255);

    // For each output pixel: the first source pixel, how many it reads, and their fixed-point weights (kernel-size slots each).
    private static (int[] Bounds, int[] Coeffs, int KernelSize) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0); // shrinking widens the filter: that is the antialiasing
        double support = 1.0 * filterScale;        // the triangle filter's support is 1
        int kernelSize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var coeffs = new int[outSize * kernelSize];
        var weights = new double[kernelSize];
        double inverse = 1.0 / filterScale; // multiplied, not divided, as Pillow does: the last bits matter for parity
        for (int o = 0; o < outSize; o++)
        {
            double center = (o + 0.5) * scale;
            int min = Math.Max((int)(center - support + 0.5), 0);
            int count = Math.Min((int)(center + support + 0.5), inSize) - min;
            double total = 0;
            for (int i = 0; i < count; i++)
            {
                double t = Math.Abs((i + min - center + 0.5) * inverse);
                weights[i] = t < 1.0 ? 1.0 - t : 0.0;
                total += weights[i];
            }
            for (int i = 0; i < count; i++)
            {
                double w = total != 0.0 ? weights[i] / total : weights[i];
                coeffs[o * kernelSize + i] = (int)(w < 0 ? -0.5 + w * (1 << PrecisionBits) : 0.5 + w * (1 << PrecisionBits));
            }
            bounds[2 * o] = min;
            bounds[2 * o + 1] = count;
        }
        return (bounds, coeffs, kernelSize);
    }
}
