namespace ResNet.Trainer.Data;

/// <summary>What to do with a file in a class folder that is not a decodable image.</summary>
public enum BadImagePolicy
{
    /// <summary>Leave it out and report it through <see cref="ImageFolderOptions.Warn"/> (and <see cref="ImageFolderSource.Skipped"/>).</summary>
    Skip,
    /// <summary>Stop with a <see cref="CorruptDataException"/> naming the file.</summary>
    Error,
}

/// <summary>How an image folder is read.</summary>
public sealed record ImageFolderOptions
{
    /// <summary>Channels the model takes: 1 converts colour to gray, 3 repeats gray into RGB. Alpha is dropped.</summary>
    public int Channels { get; init; } = 3;

    /// <summary>
    /// Every image is resized to this width and height on load. Null: the most common size among the images (so
    /// images of mixed sizes still form one tensor, and one outlier cannot decide it), with the longer side capped
    /// at <see cref="ImageFolderSource.MaxAutomaticSize"/>; unless <see cref="KeepOriginalSize"/>.
    /// </summary>
    public int? ImageSize { get; init; }

    /// <summary>Return images at their own size (for augmentations that rescale, e.g. the ImageNet recipe).</summary>
    public bool KeepOriginalSize { get; init; }

    /// <summary>Skip (default) or reject zero-byte, corrupt and non-image files.</summary>
    public BadImagePolicy OnBadImage { get; init; } = BadImagePolicy.Skip;

    /// <summary>Receives one message per skipped file.</summary>
    public Action<string>? Warn { get; init; }

    /// <summary>Read each file's header while scanning, so corrupt files are found before training starts.</summary>
    public bool VerifyHeaders { get; init; } = true;

    /// <summary>Follow class folders and subfolders that are links to places outside the root folder.</summary>
    public bool FollowLinksOutOfRoot { get; init; }
}

/// <summary>
/// An image folder: one subfolder per class (sorted by name, which gives the label order), images inside
/// (png, jpg, bmp, webp). Files are decoded when read, so the folder may be larger than memory.
/// </summary>
public sealed class ImageFolderSource : IImageSource
{
    private readonly string[] _files;
    private readonly int[] _labels;
    private readonly int? _width, _height;

    private readonly List<string> _skipped;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _undecodable = new(StringComparer.Ordinal);

    /// <summary>The longest side an automatically chosen image size may have; larger sizes are scaled down to it.</summary>
    public const int MaxAutomaticSize = 512;

    private ImageFolderSource(string root, string[] files, int[] labels, string[] classes, ImageFolderOptions options, List<string> skipped, int? width, int? height, string? sizeRule)
    {
        Root = root; _files = files; _labels = labels; ClassNames = classes; Options = options; _skipped = skipped;
        _width = width; _height = height; SizeRule = sizeRule;
    }

    /// <summary>How the image size was chosen when it was not given (e.g. "28x28, the size of 48 of 50 images"); null when it was given.</summary>
    public string? SizeRule { get; }

    /// <summary>The folder that was scanned.</summary>
    public string Root { get; }

    /// <summary>The options it was scanned with.</summary>
    public ImageFolderOptions Options { get; }

    /// <summary>Files left out as not decodable images, with the reason.</summary>
    public IReadOnlyList<string> Skipped { get { lock (_skipped) return _skipped.ToArray(); } }

    /// <summary>Image files, in label order then name order.</summary>
    public IReadOnlyList<string> Files => _files;

    /// <inheritdoc />
    public IReadOnlyList<string> ClassNames { get; }

    /// <inheritdoc />
    public int Count => _files.Length;

    /// <inheritdoc />
    public int Channels => Options.Channels;

    /// <summary>The size every image is resized to on load, or null when images keep their own size.</summary>
    public (int Width, int Height)? ImageSize => _width is int w && _height is int h ? (w, h) : null;

    /// <inheritdoc />
    public int LabelOf(int index) => _labels[index];

    /// <summary>
    /// Decodes image <paramref name="index"/>. A file that passed the header check but does not decode (e.g. a truncated
    /// PNG) stops with <see cref="BadImagePolicy.Error"/>; with <see cref="BadImagePolicy.Skip"/> it is reported once and
    /// the next readable image of the same class is returned in its place, so a streamed epoch keeps its batches.
    /// </summary>
    public RawImage Load(int index)
    {
        CorruptDataException? first = null;
        for (int i = index, tried = 0; tried < _files.Length; i = (i + 1) % _files.Length, tried++)
        {
            if (_labels[i] != _labels[index] || (i != index && _undecodable.ContainsKey(_files[i]))) continue;
            try { return LoadExact(i); }
            catch (CorruptDataException ex) when (Options.OnBadImage == BadImagePolicy.Skip) { first ??= ex; Drop(_files[i], ex); }
        }
        throw new CorruptDataException($"{first!.Message} No other image of class '{ClassNames[_labels[index]]}' decodes to take its place.", _files[index], first);
    }

    /// <summary>Decodes image <paramref name="index"/> itself; a corrupt file throws <see cref="CorruptDataException"/> naming it.</summary>
    public RawImage LoadExact(int index) => ImageDecoder.Decode(_files[index], Options.Channels, _width, _height);

    /// <summary>Records a file that failed to decode after the scan, and warns once.</summary>
    internal void Drop(string file, CorruptDataException error)
    {
        if (!_undecodable.TryAdd(file, true)) return;
        string message = $"Skipped '{file}': {error.Message}";
        lock (_skipped) _skipped.Add(message);
        Options.Warn?.Invoke(message);
    }

    /// <inheritdoc />
    public override string ToString() => Root;

    /// <summary>Lists the classes and images of <paramref name="root"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="InvalidDatasetException">No class folders, fewer than two classes, or a class without images.</exception>
    /// <exception cref="CorruptDataException">A bad file and <see cref="BadImagePolicy.Error"/>.</exception>
    public static ImageFolderSource Scan(string root, ImageFolderOptions? options = null)
    {
        options ??= new ImageFolderOptions();
        if (options.Channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(options), options.Channels, "Channels must be 1 (gray) or 3 (RGB).");
        string full = Path.GetFullPath(root);
        if (!Directory.Exists(full))
            throw new DirectoryNotFoundException($"Image folder '{root}' does not exist. Pass a folder that holds one subfolder per class.");
        string[] classDirs = FolderListing.Subfolders(full, options.FollowLinksOutOfRoot)
            .OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal).ToArray();
        if (classDirs.Length == 0)
        {
            bool looseImages = FolderListing.Images(full, recursive: false).Count > 0;
            throw new InvalidDatasetException(
                $"Image folder '{root}' has no class subfolders{(looseImages ? " (it holds images directly)" : "")}. " +
                "Put each class's images in a subfolder named after the class, e.g. " + Path.Combine(root, "cat", "001.png") + ".", full);
        }
        if (classDirs.Length < 2)
            throw new InvalidDatasetException(
                $"Image folder '{root}' has only one class ('{Path.GetFileName(classDirs[0])}'). A classifier needs at least two class subfolders.", full);

        var files = new List<string>();
        var labels = new List<int>();
        var skipped = new List<string>();
        var sizes = new Dictionary<(int W, int H), int>();
        int probed = 0, candidates = 0;
        for (int c = 0; c < classDirs.Length; c++)
        {
            int before = files.Count;
            foreach (string f in FolderListing.Files(classDirs[c], recursive: false, options.FollowLinksOutOfRoot))
            {
                string? problem = null;
                if (!ImageDecoder.Extensions.Contains(Path.GetExtension(f)))
                    problem = "not an image file (expected .png, .jpg, .jpeg, .bmp or .webp)";
                else if (new FileInfo(f).Length == 0)
                    problem = "empty (zero-byte) file";
                // Without header checks, every 16th file is still probed: enough to find the common size.
                else if (options.VerifyHeaders || candidates++ % 16 == 0 || probed == 0)
                {
                    var size = ImageDecoder.Probe(f);
                    if (size is null) problem = "not a decodable image (corrupt or a different format)";
                    else { sizes[size.Value] = sizes.GetValueOrDefault(size.Value) + 1; probed++; }
                }
                if (problem is not null)
                {
                    string message = $"Skipped '{f}': {problem}.";
                    if (options.OnBadImage == BadImagePolicy.Error)
                        throw new CorruptDataException($"'{f}' in image folder '{root}' is {problem}. Delete or replace it, or choose to skip bad files.", f);
                    skipped.Add(message);
                    options.Warn?.Invoke(message);
                    continue;
                }
                files.Add(f);
                labels.Add(c);
            }
            if (files.Count == before)
                throw new InvalidDatasetException(
                    $"Class folder '{classDirs[c]}' has no images{(skipped.Count > 0 ? " it can read" : "")}. Add .png/.jpg/.bmp/.webp images to it or remove the folder.", classDirs[c]);
        }
        int? width = options.ImageSize, height = options.ImageSize;
        string? rule = null;
        if (!options.KeepOriginalSize && options.ImageSize is null)
            (width, height, rule) = CommonSize(sizes);
        return new ImageFolderSource(full, files.ToArray(), labels.ToArray(), classDirs.Select(Path.GetFileName).ToArray()!, options, skipped, width, height, rule);
    }

    /// <summary>
    /// The training size when none is given: the most common size among the probed images (ties: the smaller), its
    /// longer side capped at <see cref="MaxAutomaticSize"/>. The first image, or one huge outlier, cannot decide it.
    /// </summary>
    internal static (int Width, int Height, string Rule) CommonSize(IReadOnlyDictionary<(int W, int H), int> sizes)
    {
        var (size, count) = sizes.OrderByDescending(kv => kv.Value).ThenBy(kv => (long)kv.Key.W * kv.Key.H).First();
        int total = sizes.Values.Sum();
        string rule = sizes.Count == 1 ? $"{size.W}x{size.H}, the size of all {total} images probed"
            : $"{size.W}x{size.H}, the most common of {sizes.Count} sizes ({count} of {total} images probed; the others are resized)";
        int longer = Math.Max(size.W, size.H);
        if (longer <= MaxAutomaticSize) return (size.W, size.H, rule);
        double scale = (double)MaxAutomaticSize / longer;
        int w = Math.Max(1, (int)Math.Round(size.W * scale)), h = Math.Max(1, (int)Math.Round(size.H * scale));
        return (w, h, $"{w}x{h}: {rule}, scaled down to the automatic limit of {MaxAutomaticSize} pixels");
    }
}
