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
    /// Every image is resized to this width and height on load. Null: the size of the first image (so images of
    /// mixed sizes still form one tensor), unless <see cref="KeepOriginalSize"/>.
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

    private ImageFolderSource(string root, string[] files, int[] labels, string[] classes, ImageFolderOptions options, IReadOnlyList<string> skipped, int? width, int? height)
    {
        Root = root; _files = files; _labels = labels; ClassNames = classes; Options = options; Skipped = skipped;
        _width = width; _height = height;
    }

    /// <summary>The folder that was scanned.</summary>
    public string Root { get; }

    /// <summary>The options it was scanned with.</summary>
    public ImageFolderOptions Options { get; }

    /// <summary>Files left out as not decodable images, with the reason.</summary>
    public IReadOnlyList<string> Skipped { get; }

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

    /// <inheritdoc />
    public RawImage Load(int index) => ImageDecoder.Decode(_files[index], Options.Channels, _width, _height);

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
        string[] classDirs = Directory.GetDirectories(full)
            .Where(d => !Path.GetFileName(d).StartsWith('.'))
            .OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal).ToArray();
        if (classDirs.Length == 0)
        {
            bool looseImages = Directory.EnumerateFiles(full).Any(f => ImageDecoder.Extensions.Contains(Path.GetExtension(f)));
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
        (int W, int H)? firstSize = null;
        for (int c = 0; c < classDirs.Length; c++)
        {
            int before = files.Count;
            foreach (string f in Directory.EnumerateFiles(classDirs[c]).OrderBy(f => f, StringComparer.Ordinal))
            {
                string name = Path.GetFileName(f);
                if (name.StartsWith('.')) continue; // hidden files (.DS_Store, editor backups) are not data
                string? problem = null;
                if (!ImageDecoder.Extensions.Contains(Path.GetExtension(f)))
                    problem = "not an image file (expected .png, .jpg, .jpeg, .bmp or .webp)";
                else if (new FileInfo(f).Length == 0)
                    problem = "empty (zero-byte) file";
                else if (options.VerifyHeaders || firstSize is null)
                {
                    var size = ImageDecoder.Probe(f);
                    if (size is null) problem = "not a decodable image (corrupt or a different format)";
                    else firstSize ??= size;
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
        int? width = null, height = null;
        if (!options.KeepOriginalSize)
        {
            width = options.ImageSize ?? firstSize!.Value.W;
            height = options.ImageSize ?? firstSize!.Value.H;
        }
        return new ImageFolderSource(full, files.ToArray(), labels.ToArray(), classDirs.Select(Path.GetFileName).ToArray()!, options, skipped, width, height);
    }
}
