using System.Text.Json.Serialization;

namespace ResNet.Trainer.Data;

/// <summary>Random transformations applied to training images only.</summary>
[JsonDerivedType(typeof(NoAugmentation), "none")]
[JsonDerivedType(typeof(CifarAugmentation), "cifar")]
[JsonDerivedType(typeof(ImageNetAugmentation), "imagenet")]
[JsonDerivedType(typeof(RandomResizedCropAugmentation), "random-resized-crop")]
public abstract record Augmentation
{
    /// <summary>No augmentation.</summary>
    public static Augmentation None { get; } = new NoAugmentation();

    /// <summary>The paper's CIFAR augmentation (section 4.2).</summary>
    public static Augmentation Cifar { get; } = new CifarAugmentation();

    /// <summary>The paper's ImageNet augmentation (section 3.4).</summary>
    public static Augmentation ImageNet { get; } = new ImageNetAugmentation();

    /// <summary>torchvision's fine-tuning augmentation: <c>RandomResizedCrop</c> (scale 0.08-1, ratio 3/4-4/3) and a horizontal flip.</summary>
    public static Augmentation RandomResizedCrop { get; } = new RandomResizedCropAugmentation();

    /// <summary>The largest padding <c>cifar:N</c> takes.</summary>
    public const int MaxCifarPadding = 64;

    /// <summary>
    /// The name <see cref="Parse"/> reads back as <paramref name="augmentation"/> (<c>cifar:2</c> for the crop and flip with 2
    /// pixels of padding); null for a setting no name stands for (e.g. a crop without the flip).
    /// </summary>
    public static string? NameOf(Augmentation augmentation) => augmentation switch
    {
        CifarAugmentation { Flip: true, Padding: >= 0 and <= MaxCifarPadding } c when c != Cifar =>
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"cifar:{c.Padding}"),
        _ => new[] { "none", "cifar", "imagenet", "random-resized-crop" }.FirstOrDefault(name => Parse(name) == augmentation),
    };

    /// <summary>
    /// Parses <c>none</c>, <c>cifar</c> (the paper's: 4 pixels of padding), <c>cifar:N</c> (the same crop and flip with N
    /// pixels of padding, 0-64; the <c>fast-cpu</c> recipe uses 2), <c>imagenet</c> or <c>random-resized-crop</c>.
    /// </summary>
    /// <exception cref="ArgumentException">Another name, or a padding that is not a whole number from 0 to 64.</exception>
    public static Augmentation Parse(string name)
    {
        string n = name.Trim().ToLowerInvariant();
        if (n.StartsWith("cifar:", StringComparison.Ordinal))
        {
            string padding = n["cifar:".Length..];
            return int.TryParse(padding, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int p) && p <= MaxCifarPadding
                ? new CifarAugmentation(p)
                : throw new ArgumentException($"Augmentation '{name}': the padding '{padding}' is not a whole number of pixels from 0 to {MaxCifarPadding}; e.g. cifar:2.", nameof(name));
        }
        return n switch
        {
            "none" => None,
            "cifar" => Cifar,
            "imagenet" => ImageNet,
            "random-resized-crop" or "rrc" => RandomResizedCrop,
            _ => throw new ArgumentException($"Unknown augmentation '{name}'. Use none, cifar, cifar:N (N pixels of padding), imagenet or random-resized-crop.", nameof(name)),
        };
    }
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
/// torchvision's <c>RandomResizedCrop</c> + <c>RandomHorizontalFlip</c> (torchvision/transforms/transforms.py, the training
/// transform of its ImageNet recipes and the usual fine-tuning one): a box covering a random share in
/// [<paramref name="MinScale"/>, <paramref name="MaxScale"/>] of the image's area, with a log-uniform aspect ratio (width / height)
/// in [<paramref name="MinRatio"/>, <paramref name="MaxRatio"/>], is resized to the model's input; after 10 failed draws, the
/// centre box of the nearest allowed ratio. Works on the original image (any size), beside the paper's scale augmentation.
/// </summary>
/// <param name="MinScale">Smallest share of the area (torchvision: 0.08).</param>
/// <param name="MaxScale">Largest share of the area (1).</param>
/// <param name="MinRatio">Smallest width/height ratio (3/4).</param>
/// <param name="MaxRatio">Largest width/height ratio (4/3).</param>
/// <param name="Flip">Random horizontal flips with probability 1/2.</param>
public sealed record RandomResizedCropAugmentation(double MinScale = 0.08, double MaxScale = 1.0, double MinRatio = 3.0 / 4.0, double MaxRatio = 4.0 / 3.0, bool Flip = true) : Augmentation
{
    /// <summary>
    /// Draws the crop box of an image of <paramref name="height"/> x <paramref name="width"/> as torchvision's <c>get_params</c>
    /// does: (top, left, box height, box width).
    /// </summary>
    public (int Top, int Left, int Height, int Width) SampleBox(int height, int width, Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        if (ImageOps.DrawBox(height, width, MinScale, MaxScale, MinRatio, MaxRatio, rng, mayFill: true) is { } box) return box;
        // torchvision's fallback: the whole image, trimmed to the nearest allowed ratio, centred.
        double inRatio = (double)width / height;
        int fw = width, fh = height;
        if (inRatio < MinRatio) fh = (int)Math.Round(fw / MinRatio, MidpointRounding.ToEven);
        else if (inRatio > MaxRatio) fw = (int)Math.Round(fh * MaxRatio, MidpointRounding.ToEven);
        return ((height - fh) / 2, (width - fw) / 2, fh, fw);
    }
}

/// <summary>
/// Turns a decoded image into the model's input: channel conversion, resizing, augmentation (training) and
/// normalization, written as CHW floats into a batch.
/// </summary>
/// <param name="Channels">The model's input channels.</param>
/// <param name="Height">The model's input height.</param>
/// <param name="Width">The model's input width.</param>
/// <param name="Normalization">Statistics to apply last; null leaves values in 0..1.</param>
/// <param name="Augmentation">Training-time augmentation.</param>
/// <param name="RandomErasing">
/// Probability of erasing a random box of each training image after normalization (torchvision's <c>RandomErasing</c>, Zhong et
/// al. 2017): the box covers <see cref="ErasingMinScale"/> to <see cref="ErasingMaxScale"/> of the area with a log-uniform
/// height/width ratio in [<see cref="ErasingMinRatio"/>, <see cref="ErasingMaxRatio"/>], and its pixels become 0, the training
/// set's mean once normalized. 0 (the default) erases nothing; evaluation never erases.
/// </param>
public sealed record ImagePipeline(int Channels, int Height, int Width, Normalization? Normalization, Augmentation Augmentation, double RandomErasing = 0)
{
    /// <summary>The smallest share of the image's area an erased box covers (torchvision: 0.02).</summary>
    public const double ErasingMinScale = 0.02;

    /// <summary>The largest share of the image's area an erased box covers (torchvision: 0.33).</summary>
    public const double ErasingMaxScale = 0.33;

    /// <summary>The smallest height/width ratio of an erased box (torchvision: 0.3).</summary>
    public const double ErasingMinRatio = 0.3;

    /// <summary>The largest height/width ratio of an erased box (torchvision: 3.3).</summary>
    public const double ErasingMaxRatio = 3.3;

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
            case RandomResizedCropAugmentation rrc:
                var (boxTop, boxLeft, boxH, boxW) = rrc.SampleBox(h, w, rng);
                bool flipBox = rrc.Flip && rng.Next(2) == 1;
                var box = new float[Channels * boxH * boxW];
                ImageOps.ShiftedCrop(src, Channels, h, w, boxTop, boxLeft, flipBox, box, boxH, boxW, padded: false);
                ImageOps.ResizeInto(box, Channels, boxH, boxW, destination, Height, Width);
                break;
            default:
                ImageOps.ResizeInto(src, Channels, h, w, destination, Height, Width);
                break;
        }
        Normalization?.Apply(destination, Height, Width);
        if (RandomErasing > 0 && rng.NextDouble() < RandomErasing) Erase(destination, rng);
    }

    /// <summary>
    /// Zeroes one random box in every channel, drawn as torchvision's <c>RandomErasing.get_params</c> draws it: after 10 draws
    /// that do not fit strictly inside the image, the image stays whole.
    /// </summary>
    private void Erase(Span<float> chw, Random rng)
    {
        // The box is drawn as width x height with a width/height ratio; the inverse range gives the same log-uniform height/width ratio.
        if (ImageOps.DrawBox(Height, Width, ErasingMinScale, ErasingMaxScale, 1 / ErasingMaxRatio, 1 / ErasingMinRatio, rng, mayFill: false) is not { } box) return;
        var (top, left, h, w) = box;
        for (int c = 0; c < Channels; c++)
            for (int y = top; y < top + h; y++)
                chw.Slice((c * Height + y) * Width + left, w).Clear();
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

    /// <summary>
    /// Draws a box covering a uniform share in [<paramref name="minScale"/>, <paramref name="maxScale"/>] of a
    /// <paramref name="height"/> x <paramref name="width"/> image with a log-uniform width/height ratio in
    /// [<paramref name="minRatio"/>, <paramref name="maxRatio"/>], at a uniform position: torchvision's draw for
    /// <c>RandomResizedCrop</c> (<paramref name="mayFill"/>: the box may span a whole side) and <c>RandomErasing</c> (it must
    /// not). Null after 10 draws that do not fit.
    /// </summary>
    public static (int Top, int Left, int Height, int Width)? DrawBox(int height, int width, double minScale, double maxScale, double minRatio, double maxRatio,
        Random rng, bool mayFill)
    {
        double area = (double)height * width;
        double logMin = Math.Log(minRatio), logMax = Math.Log(maxRatio);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (minScale + rng.NextDouble() * (maxScale - minScale));
            double ratio = Math.Exp(logMin + rng.NextDouble() * (logMax - logMin));
            int w = (int)Math.Round(Math.Sqrt(target * ratio), MidpointRounding.ToEven);
            int h = (int)Math.Round(Math.Sqrt(target / ratio), MidpointRounding.ToEven);
            bool fits = mayFill ? w <= width && h <= height : w < width && h < height;
            if (w > 0 && h > 0 && fits)
                return (rng.Next(0, height - h + 1), rng.Next(0, width - w + 1), h, w);
        }
        return null;
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
