using System.Text.Json;
using System.Text.Json.Serialization;

namespace ResNet.Trainer.Data;

/// <summary>How pixel values (scaled to 0..1) are centred before they reach the network.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<NormalizationKind>))]
public enum NormalizationKind
{
    /// <summary>Values stay in 0..1.</summary>
    None,
    /// <summary>Subtract each channel's mean and divide by its standard deviation (torchvision's convention).</summary>
    PerChannel,
    /// <summary>Subtract the mean image, pixel by pixel (paper sections 3.4 and 4.2), then divide by each channel's standard deviation.</summary>
    PerPixel,
}

/// <summary>
/// Normalization statistics computed from a training set; stored with the model (JSON) so scoring and ONNX
/// export apply exactly what training applied.
/// </summary>
/// <param name="Kind">Per-channel or per-pixel.</param>
/// <param name="Channels">Channels of the images it applies to.</param>
/// <param name="Height">Height of the images (per-pixel only; 0 otherwise).</param>
/// <param name="Width">Width of the images (per-pixel only; 0 otherwise).</param>
/// <param name="Mean">Channels values (per-channel) or Channels*Height*Width values in CHW order (per-pixel), on the 0..1 scale.</param>
/// <param name="Std">One standard deviation per channel, on the 0..1 scale.</param>
public sealed record Normalization(NormalizationKind Kind, int Channels, int Height, int Width, float[] Mean, float[] Std)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>No centring: values stay in 0..1.</summary>
    public static Normalization Identity(int channels) =>
        new(NormalizationKind.None, channels, 0, 0, new float[channels], Enumerable.Repeat(1f, channels).ToArray());

    /// <summary>Normalizes a CHW image in place.</summary>
    /// <exception cref="ArgumentException">Per-pixel statistics of another size or channel count.</exception>
    public void Apply(Span<float> chw, int height, int width)
    {
        int plane = height * width;
        if (chw.Length != Channels * plane)
            throw new ArgumentException($"Normalization was computed for {Channels} channel(s); the image has {chw.Length / Math.Max(plane, 1)}.", nameof(chw));
        if (Kind == NormalizationKind.PerPixel && (height != Height || width != Width))
            throw new ArgumentException($"Per-pixel mean was computed on {Width}x{Height} images; this image is {width}x{height}. Resize images to {Width}x{Height} or use per-channel normalization.", nameof(chw));
        for (int c = 0; c < Channels; c++)
        {
            float inv = 1f / Std[c];
            var p = chw.Slice(c * plane, plane);
            if (Kind == NormalizationKind.PerPixel)
            {
                var m = Mean.AsSpan(c * plane, plane);
                for (int i = 0; i < plane; i++) p[i] = (p[i] - m[i]) * inv;
            }
            else
            {
                float m = Mean[c];
                for (int i = 0; i < plane; i++) p[i] = (p[i] - m) * inv;
            }
        }
    }

    /// <summary>The same statistics for images of another size: a per-pixel mean image is resampled bilinearly (multi-scale testing).</summary>
    public Normalization ForSize(int height, int width)
    {
        if (Kind != NormalizationKind.PerPixel || (height == Height && width == Width)) return this;
        return this with { Height = height, Width = width, Mean = ImageOps.Resize(Mean, Channels, Height, Width, height, width) };
    }

    /// <summary>
    /// Computes statistics over (up to <paramref name="maxImages"/> evenly spaced) images of the training set,
    /// as the evaluation transform of <paramref name="pipeline"/> presents them (before normalization).
    /// </summary>
    public static Normalization Compute(IImageSource train, ImagePipeline pipeline, NormalizationKind kind, int maxImages = 20_000)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(pipeline);
        int c = pipeline.Channels, plane = pipeline.Height * pipeline.Width;
        if (kind == NormalizationKind.None || train.Count == 0) return Identity(c);
        var raw = pipeline with { Normalization = null };
        int n = Math.Min(train.Count, maxImages);
        var sum = new double[c * plane];
        var sumSq = new double[c];
        var buffer = new float[c * plane];
        for (int k = 0; k < n; k++)
        {
            raw.Eval(train.Load((int)((long)k * train.Count / n)), buffer);
            for (int i = 0; i < buffer.Length; i++)
            {
                sum[i] += buffer[i];
                sumSq[i / plane] += (double)buffer[i] * buffer[i];
            }
        }
        var std = new float[c];
        var channelMean = new float[c];
        for (int ch = 0; ch < c; ch++)
        {
            double total = 0;
            for (int i = 0; i < plane; i++) total += sum[ch * plane + i];
            double mean = total / ((double)n * plane);
            channelMean[ch] = (float)mean;
            std[ch] = (float)Math.Max(Math.Sqrt(Math.Max(sumSq[ch] / ((double)n * plane) - mean * mean, 0)), 1e-3);
        }
        return kind == NormalizationKind.PerChannel
            ? new Normalization(kind, c, 0, 0, channelMean, std)
            : new Normalization(kind, c, pipeline.Height, pipeline.Width, sum.Select(s => (float)(s / n)).ToArray(), std);
    }

    /// <summary>
    /// The same statistics in the form the ONNX exporter folds into the graph: pixels in 0..1, RGB, minus the
    /// per-channel mean or the mean image, divided by the per-channel std.
    /// </summary>
    public InputNormalization ToInputNormalization() => Kind switch
    {
        NormalizationKind.None => InputNormalization.Identity(Channels),
        NormalizationKind.PerChannel => new InputNormalization(PixelRange.ZeroToOne, Mean, Std),
        _ => new InputNormalization(PixelRange.ZeroToOne, new float[Channels], Std, ChannelOrder.Rgb, Mean),
    };

    /// <summary>Serialises to JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads what <see cref="ToJson"/> wrote.</summary>
    /// <exception cref="InvalidDataException">The text is not normalization JSON.</exception>
    public static Normalization FromJson(string json)
    {
        try
        {
            return JsonSerializer.Deserialize<Normalization>(json, Json) ?? throw new InvalidDataException("Normalization JSON is null.");
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"Not normalization JSON: {ex.Message}", ex);
        }
    }
}
