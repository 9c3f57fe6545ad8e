using System.Text.Json.Serialization;

namespace ResNet.Trainer.Data;

/// <summary>Random transformations applied to training images only.</summary>
[JsonDerivedType(typeof(NoAugmentation), "none")]
[JsonDerivedType(typeof(CifarAugmentation), "cifar")]
[JsonDerivedType(typeof(ImageNetAugmentation), "imagenet")]
public abstract record Augmentation
{
    /// <summary>No augmentation.</summary>
    public static Augmentation None { get; } = new NoAugmentation();

    /// <summary>The paper's CIFAR augmentation (section 4.2).</summary>
    public static Augmentation Cifar { get; } = new CifarAugmentation();

    /// <summary>The paper's ImageNet augmentation (section 3.4).</summary>
    public static Augmentation ImageNet { get; } = new ImageNetAugmentation();

    /// <summary>Parses <c>none</c>, <c>cifar</c> or <c>imagenet</c>.</summary>
    /// <exception cref="ArgumentException">Another name.</exception>
    public static Augmentation Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "none" => None,
        "cifar" => Cifar,
        "imagenet" => ImageNet,
        _ => throw new ArgumentException($"Unknown augmentation '{name}'. Use none, cifar or imagenet.", nameof(name)),
    };
}

/// <summary>Images pass unchanged (resized to the model's input size if needed).</summary>
public sealed record NoAugmentation : Augmentation;

/// <summary>Paper section 4.2: pad 4 pixels on each side, take a random crop of the original size, flip horizontally with probability 1/2.</summary>
/// <param name="Padding">Pixels of zero padding on each side.</param>
/// <param name="Flip">Random horizontal flips.</param>
public sealed record CifarAugmentation(int Padding = 4, bool Flip = true) : Augmentation;

/// <summary>
/// Paper section 3.4: resize so the shorter side is a random length in [<paramref name="MinSide"/>, <paramref name="MaxSide"/>],
/// take a random crop of the model's input size or its horizontal flip, and add AlexNet's PCA colour noise.
/// Evaluation resizes the shorter side to 256/224 of the crop and takes the centre crop.
/// </summary>
/// <param name="MinSide">Smallest shorter side (256 in the paper).</param>
/// <param name="MaxSide">Largest shorter side (480 in the paper).</param>
/// <param name="Flip">Random horizontal flips.</param>
/// <param name="Lighting">Standard deviation of the PCA colour noise (AlexNet's 0.1; 0 turns it off).</param>
public sealed record ImageNetAugmentation(int MinSide = 256, int MaxSide = 480, bool Flip = true, double Lighting = 0.1) : Augmentation;

/// <summary>
/// Turns a decoded image into the model's input: channel conversion, resizing, augmentation (training) and
/// normalization, written as CHW floats into a batch.
/// </summary>
/// <param name="Channels">The model's input channels.</param>
/// <param name="Height">The model's input height.</param>
/// <param name="Width">The model's input width.</param>
/// <param name="Normalization">Statistics to apply last; null leaves values in 0..1.</param>
/// <param name="Augmentation">Training-time augmentation.</param>
public sealed record ImagePipeline(int Channels, int Height, int Width, Normalization? Normalization, Augmentation Augmentation)
{
    /// <summary>Floats per image in a batch.</summary>
    public int SampleLength => Channels * Height * Width;

    // AlexNet's eigen-decomposition of ImageNet RGB covariance (Krizhevsky et al. 2012, section 4.1), used by the paper's colour augmentation.
    private static readonly float[] EigenValues = [0.2175f, 0.0188f, 0.0045f];
    private static readonly float[,] EigenVectors = { { -0.5675f, 0.7192f, 0.4009f }, { -0.5808f, -0.0045f, -0.8140f }, { -0.5836f, -0.6948f, 0.4203f } };

    /// <summary>The training transform: augmentation drawn from <paramref name="rng"/>, then normalization.</summary>
    public void Train(RawImage image, Span<float> destination, Random rng)
    {
        CheckDestination(destination);
        var (src, h, w) = ImageOps.ToFloatChw(image, Channels);
        switch (Augmentation)
        {
            case CifarAugmentation cifar:
                if (h != Height || w != Width) { src = ImageOps.Resize(src, Channels, h, w, Height, Width); h = Height; w = Width; }
                int dy = rng.Next(-cifar.Padding, cifar.Padding + 1), dx = rng.Next(-cifar.Padding, cifar.Padding + 1);
                bool flip = cifar.Flip && rng.Next(2) == 1;
                ImageOps.ShiftedCrop(src, Channels, h, w, dy, dx, flip, destination, Height, Width);
                break;
            case ImageNetAugmentation net:
                int side = rng.Next(net.MinSide, net.MaxSide + 1);
                var (sh, sw) = ShorterSideTo(h, w, Math.Max(side, Math.Max(Height, Width)));
                var scaled = ImageOps.Resize(src, Channels, h, w, sh, sw);
                int top = rng.Next(0, sh - Height + 1), left = rng.Next(0, sw - Width + 1);
                bool flipNet = net.Flip && rng.Next(2) == 1;
                ImageOps.ShiftedCrop(scaled, Channels, sh, sw, top, left, flipNet, destination, Height, Width, padded: false);
                if (net.Lighting > 0 && Channels == 3) AddLighting(destination, net.Lighting, rng);
                break;
            default:
                ImageOps.ResizeInto(src, Channels, h, w, destination, Height, Width);
                break;
        }
        Normalization?.Apply(destination, Height, Width);
    }

    /// <summary>The evaluation transform: deterministic resize (and centre crop for the ImageNet recipe), then normalization.</summary>
    public void Eval(RawImage image, Span<float> destination)
    {
        CheckDestination(destination);
        var (src, h, w) = ImageOps.ToFloatChw(image, Channels);
        if (Augmentation is ImageNetAugmentation && (h != Height || w != Width))
        {
            // Centre crop from the shorter side scaled by 256/224, the usual single-crop test (paper section 3.4 uses 10-crop; see Evaluator).
            var (sh, sw) = ShorterSideTo(h, w, (int)Math.Round(Math.Max(Height, Width) * 256.0 / 224.0));
            var scaled = ImageOps.Resize(src, Channels, h, w, sh, sw);
            ImageOps.ShiftedCrop(scaled, Channels, sh, sw, (sh - Height) / 2, (sw - Width) / 2, false, destination, Height, Width, padded: false);
        }
        else
        {
            ImageOps.ResizeInto(src, Channels, h, w, destination, Height, Width);
        }
        Normalization?.Apply(destination, Height, Width);
    }

    internal static (int H, int W) ShorterSideTo(int h, int w, int side) =>
        h <= w ? (side, Math.Max(side, (int)Math.Round((double)w * side / h))) : (Math.Max(side, (int)Math.Round((double)h * side / w)), side);

    private void AddLighting(Span<float> chw, double std, Random rng)
    {
        Span<float> alpha = stackalloc float[3];
        for (int i = 0; i < 3; i++) alpha[i] = (float)(rng.NextGaussian() * std) * EigenValues[i];
        int plane = Height * Width;
        for (int c = 0; c < 3; c++)
        {
            float shift = EigenVectors[c, 0] * alpha[0] + EigenVectors[c, 1] * alpha[1] + EigenVectors[c, 2] * alpha[2];
            var p = chw.Slice(c * plane, plane);
            for (int i = 0; i < plane; i++) p[i] += shift;
        }
    }

    private void CheckDestination(Span<float> destination)
    {
        if (destination.Length != SampleLength)
            throw new ArgumentException($"Destination holds {destination.Length} floats; a {Channels}x{Height}x{Width} image needs {SampleLength}.", nameof(destination));
    }
}

internal static class RandomExtensions
{
    public static double NextGaussian(this Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}

/// <summary>Small CHW float image operations used by the pipeline and the evaluator.</summary>
internal static class ImageOps
{
    public static (float[] Chw, int H, int W) ToFloatChw(RawImage image, int channels)
    {
        int plane = image.Width * image.Height;
        var chw = new float[channels * plane];
        var px = image.Pixels;
        const float scale = 1f / 255f;
        if (image.Channels == channels)
        {
            for (int i = 0; i < plane; i++)
                for (int c = 0; c < channels; c++)
                    chw[c * plane + i] = px[i * channels + c] * scale;
        }
        else if (image.Channels == 1 && channels == 3)
        {
            for (int i = 0; i < plane; i++) chw[i] = chw[plane + i] = chw[2 * plane + i] = px[i] * scale;
        }
        else if (image.Channels == 3 && channels == 1)
        {
            for (int i = 0; i < plane; i++)
                chw[i] = (0.299f * px[3 * i] + 0.587f * px[3 * i + 1] + 0.114f * px[3 * i + 2]) * scale;
        }
        else throw new ArgumentException($"Cannot convert {image.Channels}-channel images to {channels} channels.");
        return (chw, image.Height, image.Width);
    }

    /// <summary>Copies the window at (top, left) of size outH x outW, zero outside the image, optionally mirrored.</summary>
    public static void ShiftedCrop(float[] src, int channels, int h, int w, int top, int left, bool flip, Span<float> dst, int outH, int outW, bool padded = true)
    {
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < outH; y++)
            {
                int sy = y + top;
                for (int x = 0; x < outW; x++)
                {
                    int sx = (flip ? outW - 1 - x : x) + left;
                    dst[(c * outH + y) * outW + x] = (uint)sy < (uint)h && (uint)sx < (uint)w ? src[(c * h + sy) * w + sx] : 0f;
                }
            }
    }

    public static float[] Resize(float[] src, int channels, int h, int w, int outH, int outW)
    {
        if (h == outH && w == outW) return src;
        var dst = new float[channels * outH * outW];
        ResizeInto(src, channels, h, w, dst, outH, outW);
        return dst;
    }

    /// <summary>Bilinear resampling with pixel centres aligned (align_corners = false).</summary>
    public static void ResizeInto(float[] src, int channels, int h, int w, Span<float> dst, int outH, int outW)
    {
        if (h == outH && w == outW) { src.AsSpan().CopyTo(dst); return; }
        double sy = (double)h / outH, sx = (double)w / outW;
        for (int y = 0; y < outH; y++)
        {
            double fy = Math.Clamp((y + 0.5) * sy - 0.5, 0, h - 1);
            int y0 = (int)fy, y1 = Math.Min(y0 + 1, h - 1);
            float wy = (float)(fy - y0);
            for (int x = 0; x < outW; x++)
            {
                double fx = Math.Clamp((x + 0.5) * sx - 0.5, 0, w - 1);
                int x0 = (int)fx, x1 = Math.Min(x0 + 1, w - 1);
                float wx = (float)(fx - x0);
                for (int c = 0; c < channels; c++)
                {
                    int b = c * h * w;
                    float top = src[b + y0 * w + x0] * (1 - wx) + src[b + y0 * w + x1] * wx;
                    float bottom = src[b + y1 * w + x0] * (1 - wx) + src[b + y1 * w + x1] * wx;
                    dst[(c * outH + y) * outW + x] = top * (1 - wy) + bottom * wy;
                }
            }
        }
    }
}
