using ResNet.Trainer.Data;

namespace ResNet.MLNet.Transforms;

/// <summary>
/// An IDataView's training images as the trainer's <see cref="BatchLoader"/> reads them: only the references (file paths,
/// or encoded bytes) and the labels are held; each image is decoded when a batch needs it, so the view may be larger than memory.
/// </summary>
internal sealed class DataViewImages : IImageSource
{
    private readonly string[]? _paths;
    private readonly byte[][]? _encoded;
    private readonly string[] _names;
    private readonly (int Width, int Height)[] _sizes;
    private readonly int[] _labels;
    private readonly bool _skipUndecodable;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, string> _undecodable = new();

    /// <summary>What a fit keeps of its training images once it is done: their count, size and decodes, not their data.</summary>
    internal sealed class Statistics(int count, int? size)
    {
        private long _decodes;

        /// <summary>Number of images.</summary>
        public int Count => count;

        /// <summary>The square size images are presented at, or null for their own size.</summary>
        public int? Size => size;

        /// <summary>Images decoded so far.</summary>
        public long Decodes => Interlocked.Read(ref _decodes);

        internal void Decoded() => Interlocked.Increment(ref _decodes);
    }

    /// <param name="paths">One file per image, or null when <paramref name="encoded"/> holds the images.</param>
    /// <param name="encoded">One encoded image (PNG, JPEG, ...) per image, or null when <paramref name="paths"/> does.</param>
    /// <param name="names">How each image is named in messages (its row and path).</param>
    /// <param name="sizes">Each image's width and height, read from its header.</param>
    /// <param name="labels">Each image's label, an index into <paramref name="classNames"/>.</param>
    /// <param name="classNames">The classes.</param>
    /// <param name="channels">1 (gray) or 3 (RGB).</param>
    /// <param name="size">Null: images keep their own size (for augmentations that rescale the original). Otherwise the shorter
    /// side is resized to it and the centre square cut out, as the scorer's IsoCrop resize presents images.</param>
    /// <param name="skipUndecodable">An image that fails to decode is replaced by the next one of its class (and reported) instead of failing.</param>
    public DataViewImages(string[]? paths, byte[][]? encoded, string[] names, (int Width, int Height)[] sizes, int[] labels,
        IReadOnlyList<string> classNames, int channels, int? size, bool skipUndecodable)
    {
        if ((paths is null) == (encoded is null)) throw new ArgumentException("Give either paths or encoded images.");
        _paths = paths;
        _encoded = encoded;
        _names = names;
        _sizes = sizes;
        _labels = labels;
        ClassNames = classNames;
        Channels = channels;
        Size = size;
        _skipUndecodable = skipUndecodable;
        Stats = new Statistics(labels.Length, size);
    }

    /// <summary>The count, size and decodes of these images (kept by the estimator after the fit, without the images).</summary>
    public Statistics Stats { get; }

    /// <inheritdoc />
    public int Count => _labels.Length;

    /// <inheritdoc />
    public IReadOnlyList<string> ClassNames { get; }

    /// <inheritdoc />
    public int Channels { get; }

    /// <summary>The square size images are presented at, or null for their own size.</summary>
    public int? Size { get; }

    /// <summary>Images decoded so far (each <see cref="Load"/> decodes one).</summary>
    public long Decodes => Stats.Decodes;

    /// <summary>Images that passed the header check but failed to decode while training, and were replaced.</summary>
    public IReadOnlyList<string> Undecodable => _undecodable.OrderBy(kv => kv.Key).Select(kv => kv.Value).ToArray();

    /// <inheritdoc />
    public int LabelOf(int index) => _labels[index];

    /// <summary>
    /// Decodes image <paramref name="index"/>. One that fails fails the run with a message naming its row, or, when skipping,
    /// is replaced by the next image of the same class that decodes, so a streamed epoch keeps its batches.
    /// </summary>
    /// <exception cref="InvalidDataException">The image does not decode (and is not skipped), or no image of its class does.</exception>
    public RawImage Load(int index)
    {
        string? first = null;
        for (int i = index, tried = 0; tried < _labels.Length; i = (i + 1) % _labels.Length, tried++)
        {
            if (_labels[i] != _labels[index] || (i != index && _undecodable.ContainsKey(i))) continue;
            try
            {
                return LoadExact(i);
            }
            catch (Exception ex) when (ex is IOException or ArgumentException)
            {
                string problem = $"{_names[i]} ({ex.Message})";
                if (!_skipUndecodable)
                    throw new InvalidDataException($"The image in {problem} could not be decoded. " +
                        "Fix or remove the file, or set SkipUndecodableImages = true to skip such rows with a warning.", ex);
                first ??= problem;
                _undecodable.TryAdd(i, problem);
            }
        }
        throw new InvalidDataException($"The image in {first} could not be decoded, and no other image of class '{ClassNames[_labels[index]]}' decodes to take its place. Fix or replace the files.");
    }

    private RawImage LoadExact(int i)
    {
        Stats.Decoded();
        int? width = null, height = null;
        if (Size is int s) (width, height) = ResNet.Scoring.ResizeCrop.ShorterSideTo(_sizes[i].Width, _sizes[i].Height, s);
        var image = _paths is not null
            ? ImageDecoder.Decode(_paths[i], Channels, width, height)
            : ImageDecoder.Decode(_encoded![i], _names[i], Channels, width, height);
        return Size is int side ? ResNet.Scoring.ResizeCrop.CenterCrop(image, side, side) : image;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Count} images of an IDataView";
}
