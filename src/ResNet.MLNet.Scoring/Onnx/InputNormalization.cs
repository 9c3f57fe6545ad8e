namespace ResNet.Scoring;

/// <summary>The range of the pixel values a model's input expects.</summary>
public enum PixelRange
{
    /// <summary>Floats from 0 to 1 (8-bit value / 255).</summary>
    ZeroToOne,
    /// <summary>Floats from 0 to 255 (the 8-bit values themselves), as CNTK and Caffe models take them.</summary>
    ZeroTo255,
}

/// <summary>The channel order the network itself was trained on.</summary>
public enum ChannelOrder
{
    /// <summary>Red, green, blue (or a single gray channel).</summary>
    Rgb,
    /// <summary>Blue, green, red (OpenCV/Caffe/CNTK models such as the DnnImageFeaturizer ResNet18).</summary>
    Bgr,
}

/// <summary>
/// What happens to an image between its pixels and the network's first convolution. The exporter folds this
/// into the ONNX graph, so a scorer feeds plain RGB pixels in <see cref="Range"/>; TorchSharp training applies
/// it with the trainer's <c>InputNormalizationTensors.Apply</c>. The network sees <c>(reorder(x) - mean) / std</c>, where <c>reorder</c> turns
/// RGB into <see cref="NetworkOrder"/> and mean/std are in the units of <see cref="Range"/>, in network order.
/// </summary>
/// <param name="Range">Range of the pixel values fed to the model .</param>
/// <param name="Mean">Per-channel mean, one value per input channel (network channel order).</param>
/// <param name="Std">Per-channel standard deviation, one value per input channel (network channel order).</param>
/// <param name="NetworkOrder">The channel order the network was trained on; inputs are always RGB.</param>
/// <param name="MeanImage">
/// Optional per-pixel mean image, C x H x W values in network channel order (paper section 3.4 "per-pixel mean
/// subtracted"); when set it replaces <paramref name="Mean"/> and fixes the input size.
/// </param>
public sealed record InputNormalization(
    PixelRange Range,
    IReadOnlyList<float> Mean,
    IReadOnlyList<float> Std,
    ChannelOrder NetworkOrder = ChannelOrder.Rgb,
    IReadOnlyList<float>? MeanImage = null)
{
    /// <summary>No normalization: the network sees the pixels in 0..1 as they are.</summary>
    public static InputNormalization Identity(int channels) =>
        new(PixelRange.ZeroToOne, Enumerable.Repeat(0f, channels).ToArray(), Enumerable.Repeat(1f, channels).ToArray());

    /// <summary>ImageNet statistics on 0..1 RGB input (torchvision's pretrained models).</summary>
    public static InputNormalization ImageNet { get; } =
        new(PixelRange.ZeroToOne, [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]);

    /// <summary>Number of channels this normalization is defined for.</summary>
    public int Channels => Mean.Count;

    /// <summary>True when the network sees its input unchanged (zero mean, unit std, RGB order, no mean image).</summary>
    public bool IsIdentity => NetworkOrder == ChannelOrder.Rgb && MeanImage is null && Mean.All(m => m == 0f) && Std.All(s => s == 1f);

    /// <summary>Checks the normalization against a model's input.</summary>
    /// <exception cref="ArgumentException">A count or value does not fit; the message names it.</exception>
    public void Validate(int channels, int height, int width)
    {
        if (Mean.Count != channels || Std.Count != channels)
            throw new ArgumentException($"Normalization has {Mean.Count} mean and {Std.Count} std values, but the model has {channels} input channel(s); give one mean and one std per channel.");
        if (Std.Any(s => !(s > 0f) || float.IsInfinity(s)))
            throw new ArgumentException($"Normalization std values must be positive and finite, got [{string.Join(", ", Std)}].");
        if (NetworkOrder == ChannelOrder.Bgr && channels != 3)
            throw new ArgumentException($"BGR channel order needs 3 input channels, the model has {channels}.");
        if (MeanImage is not null && MeanImage.Count != channels * height * width)
            throw new ArgumentException($"The mean image has {MeanImage.Count} values; a {channels}x{height}x{width} input needs {channels * height * width}.");
    }
}
