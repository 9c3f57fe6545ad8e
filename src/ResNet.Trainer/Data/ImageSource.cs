namespace ResNet.Trainer.Data;

/// <summary>
/// A labelled collection of images that can be read by index from any thread. Implemented in memory
/// (<see cref="InMemoryImages"/>) and lazily from files (<see cref="ImageFolderSource"/>), so folders larger
/// than RAM stream through the <see cref="BatchLoader"/>.
/// </summary>
public interface IImageSource
{
    /// <summary>Number of images.</summary>
    int Count { get; }

    /// <summary>Class names; a label is an index into this list.</summary>
    IReadOnlyList<string> ClassNames { get; }

    /// <summary>Channels of every image <see cref="Load"/> returns (1 or 3).</summary>
    int Channels { get; }

    /// <summary>The label of image <paramref name="index"/>, without decoding it.</summary>
    int LabelOf(int index);

    /// <summary>Decodes image <paramref name="index"/>. Safe to call from several threads at once.</summary>
    RawImage Load(int index);
}

/// <summary>Images of one size held in memory as bytes (60,000 Fashion-MNIST images take 47 MB).</summary>
public sealed class InMemoryImages : IImageSource
{
    private readonly byte[] _pixels;
    private readonly int[] _labels;
    private readonly int _imageBytes;

    /// <summary>Wraps <paramref name="pixels"/> (count * height * width * channels bytes, HWC per image) and labels.</summary>
    /// <exception cref="ArgumentException">The sizes do not agree, or a label is outside the class list.</exception>
    public InMemoryImages(byte[] pixels, int[] labels, int width, int height, int channels, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(classNames);
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "Images have 1 (gray) or 3 (RGB) channels.");
        _imageBytes = width * height * channels;
        if ((long)_imageBytes * labels.Length != pixels.Length)
            throw new ArgumentException($"{labels.Length} labels need {(long)_imageBytes * labels.Length} bytes of {width}x{height}x{channels} images; got {pixels.Length}.", nameof(pixels));
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classNames.Count)
                throw new ArgumentException($"Label {labels[i]} of image {i} is outside the {classNames.Count} classes.", nameof(labels));
        _pixels = pixels;
        _labels = labels;
        Width = width;
        Height = height;
        Channels = channels;
        ClassNames = classNames;
    }

    /// <summary>Width of every image.</summary>
    public int Width { get; }

    /// <summary>Height of every image.</summary>
    public int Height { get; }

    /// <inheritdoc />
    public int Channels { get; }

    /// <inheritdoc />
    public int Count => _labels.Length;

    /// <inheritdoc />
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>All labels, in image order.</summary>
    public IReadOnlyList<int> Labels => _labels;

    /// <inheritdoc />
    public int LabelOf(int index) => _labels[index];

    /// <summary>The bytes of image <paramref name="index"/> without copying.</summary>
    public ReadOnlySpan<byte> PixelsOf(int index) => _pixels.AsSpan(index * _imageBytes, _imageBytes);

    /// <inheritdoc />
    public RawImage Load(int index) => new(PixelsOf(index).ToArray(), Width, Height, Channels);

    /// <summary>Reads every image of <paramref name="source"/> into memory (in parallel), resizing none: all must share one size.</summary>
    /// <exception cref="InvalidDatasetException">The images differ in size.</exception>
    public static InMemoryImages From(IImageSource source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source is InMemoryImages m) return m;
        if (source.Count == 0)
            throw new InvalidDatasetException("The dataset has no images.", source.ToString() ?? "");
        var first = source.Load(0);
        int bytes = first.Pixels.Length;
        var pixels = new byte[(long)bytes * source.Count];
        var labels = new int[source.Count];
        Parallel.For(0, source.Count, i =>
        {
            var img = i == 0 ? first : source.Load(i);
            if (img.Width != first.Width || img.Height != first.Height || img.Channels != first.Channels)
                throw new InvalidDatasetException(
                    $"Image {i} is {img.Width}x{img.Height}x{img.Channels} but image 0 is {first.Width}x{first.Height}x{first.Channels}. " +
                    "Set an image size so every image is resized on load.", source.ToString() ?? "");
            img.Pixels.CopyTo(pixels, (long)i * bytes);
            labels[i] = source.LabelOf(i);
        });
        return new InMemoryImages(pixels, labels, first.Width, first.Height, first.Channels, source.ClassNames);
    }
}

/// <summary>A view of some images of another source, by index (a train or validation split).</summary>
public sealed class SubsetSource : IImageSource
{
    private readonly IImageSource _inner;
    private readonly int[] _indices;

    /// <summary>The images of <paramref name="inner"/> at <paramref name="indices"/>, in that order.</summary>
    public SubsetSource(IImageSource inner, IReadOnlyList<int> indices)
    {
        _inner = inner ?? throw new ArgumentNullException(nameof(inner));
        _indices = indices.ToArray();
        foreach (int i in _indices)
            if ((uint)i >= (uint)inner.Count) throw new ArgumentOutOfRangeException(nameof(indices), i, $"The source has {inner.Count} images.");
    }

    /// <summary>Indices into the inner source.</summary>
    public IReadOnlyList<int> Indices => _indices;

    /// <inheritdoc />
    public int Count => _indices.Length;
    /// <inheritdoc />
    public IReadOnlyList<string> ClassNames => _inner.ClassNames;
    /// <inheritdoc />
    public int Channels => _inner.Channels;
    /// <inheritdoc />
    public int LabelOf(int index) => _inner.LabelOf(_indices[index]);
    /// <inheritdoc />
    public RawImage Load(int index) => _inner.Load(_indices[index]);
}
