namespace ResNet.MLNet.Transforms;

/// <summary>
/// What the ML.NET layer needs to know about an exported ResNet ONNX model: its input geometry and range,
/// its class names in order, and the names of its graph's input and probability output.
/// </summary>
/// <param name="ClassNames">Class names, in the order of the model's outputs.</param>
/// <param name="Channels">Input channels: 1 (grayscale) or 3 (RGB).</param>
/// <param name="Height">Input height in pixels.</param>
/// <param name="Width">Input width in pixels.</param>
/// <param name="PixelScale">Factor applied to 0..255 pixel values before they enter the graph (1 or 1/255).</param>
/// <param name="InputName">The graph input, float [N, Channels, Height, Width].</param>
/// <param name="ProbabilitiesName">The graph output with softmax probabilities, float [N, classes].</param>
/// <param name="FeaturesName">The graph output with pooled features, float [N, features], if exported.</param>
/// <param name="ProbabilitiesAreLogits">True when <paramref name="ProbabilitiesName"/> holds logits (a softmax is added for ML.NET).</param>
/// <param name="Preprocessing">The resize and centre crop the model records (<see cref="Scoring.OnnxModelInfo.Preprocessing"/>); null: images are stretched to the input size.</param>
public sealed record ResNetModelInfo(
    IReadOnlyList<string> ClassNames,
    int Channels,
    int Height,
    int Width,
    float PixelScale,
    string InputName,
    string ProbabilitiesName,
    string? FeaturesName,
    bool ProbabilitiesAreLogits = false,
    Scoring.ResizeCrop? Preprocessing = null)
{
    /// <summary>Number of classes.</summary>
    public int ClassCount => ClassNames.Count;

    /// <summary>Length of one image's pixel vector (C x H x W).</summary>
    public int PixelCount => Channels * Height * Width;
}
