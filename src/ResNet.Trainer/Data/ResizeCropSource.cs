namespace ResNet.Trainer.Data;

/// <summary>
/// Presents another source's images as a pretrained network's evaluation transform sees them: shorter side resized and
/// centre-cropped by a <see cref="ResizeCropTransform"/> (normalization is left to the pipeline). Wrapping validation and
/// test sources (and the training source when only a head is trained on cached features) gives torchvision's
/// <c>weights.transforms()</c> input through the trainer's own <see cref="ImagePipeline"/> at the crop size.
/// </summary>
/// <param name="inner">The images as decoded (any size).</param>
/// <param name="transform">The catalog entry's resize and crop.</param>
public sealed class ResizeCropSource(IImageSource inner, ResizeCropTransform transform) : IImageSource
{
    private readonly IImageSource _inner = inner ?? throw new ArgumentNullException(nameof(inner));
    private readonly ResizeCropTransform _transform = transform ?? throw new ArgumentNullException(nameof(transform));

    /// <inheritdoc />
    public int Count => _inner.Count;

    /// <inheritdoc />
    public IReadOnlyList<string> ClassNames => _inner.ClassNames;

    /// <inheritdoc />
    public int Channels => _inner.Channels;

    /// <inheritdoc />
    public int LabelOf(int index) => _inner.LabelOf(index);

    /// <summary>Decodes image <paramref name="index"/> and returns its <c>CropSize</c> x <c>CropSize</c> centre after the resize.</summary>
    public RawImage Load(int index) => _transform.ResizeAndCrop(_inner.Load(index));
}
