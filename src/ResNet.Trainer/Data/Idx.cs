using System.Buffers.Binary;
using System.IO.Compression;

namespace ResNet.Trainer.Data;

/// <summary>Reads the IDX format of MNIST and Fashion-MNIST (gzipped or not; the gzip magic decides).</summary>
public static class Idx
{
    /// <summary>Fashion-MNIST's class names, label 0 to 9 (Xiao, Rasul, Vollgraf 2017).</summary>
    public static IReadOnlyList<string> FashionMnistClasses { get; } =
        ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"];

    /// <summary>Reads an images file (magic 0x00000803): count x rows x cols bytes.</summary>
    /// <exception cref="CorruptDataException">Wrong magic or fewer bytes than the header promises.</exception>
    public static (byte[] Pixels, int Count, int Rows, int Cols) ReadImages(string path)
    {
        byte[] data = ReadAll(path);
        int[] dims = Header(data, path, expectedMagic: 0x00000803, "images");
        return (Body(data, path, 16, (long)dims[0] * dims[1] * dims[2]), dims[0], dims[1], dims[2]);
    }

    /// <summary>Reads a labels file (magic 0x00000801): one byte per label.</summary>
    /// <exception cref="CorruptDataException">Wrong magic or fewer bytes than the header promises.</exception>
    public static byte[] ReadLabels(string path)
    {
        byte[] data = ReadAll(path);
        int[] dims = Header(data, path, expectedMagic: 0x00000801, "labels");
        return Body(data, path, 8, dims[0]);
    }

    /// <summary>Reads an images file and its labels file into memory as 1-channel images.</summary>
    /// <param name="imagesPath">e.g. <c>train-images-idx3-ubyte.gz</c>.</param>
    /// <param name="labelsPath">e.g. <c>train-labels-idx1-ubyte.gz</c>.</param>
    /// <param name="classNames">Names of the labels; default "0".."9" style names, or Fashion-MNIST's when the path says so.</param>
    /// <exception cref="InvalidDatasetException">The two files hold different numbers of items.</exception>
    public static InMemoryImages Load(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null)
    {
        var (pixels, count, rows, cols) = ReadImages(imagesPath);
        byte[] labels = ReadLabels(labelsPath);
        if (labels.Length != count)
            throw new InvalidDatasetException($"'{imagesPath}' holds {count} images but '{labelsPath}' holds {labels.Length} labels. Pair the images file with its own labels file.", labelsPath);
        int classes = labels.Length == 0 ? 0 : labels.Max() + 1;
        classNames ??= imagesPath.Contains("fashion", StringComparison.OrdinalIgnoreCase) && classes <= 10
            ? FashionMnistClasses
            : Enumerable.Range(0, Math.Max(classes, 2)).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return new InMemoryImages(pixels, labels.Select(b => (int)b).ToArray(), cols, rows, 1, classNames);
    }

    /// <summary>Loads the official train or test split from a folder holding the four Fashion-MNIST/MNIST files.</summary>
    public static InMemoryImages LoadSplit(string folder, bool train, IReadOnlyList<string>? classNames = null)
    {
        string prefix = train ? "train" : "t10k";
        return Load(Find(folder, $"{prefix}-images-idx3-ubyte"), Find(folder, $"{prefix}-labels-idx1-ubyte"), classNames ?? FashionMnistClasses);
    }

    private static string Find(string folder, string stem)
    {
        foreach (string candidate in new[] { stem + ".gz", stem, stem.Replace("-idx", ".idx", StringComparison.Ordinal) })
        {
            string p = Path.Combine(folder, candidate);
            if (File.Exists(p)) return p;
        }
        throw new FileNotFoundException($"'{folder}' has no {stem}[.gz]. Point to the folder with the IDX files (Debian: apt install dataset-fashion-mnist puts them in /usr/share/datasets/fashion-mnist).", Path.Combine(folder, stem));
    }

    private static byte[] ReadAll(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"IDX file '{path}' does not exist.", path);
        byte[] raw = File.ReadAllBytes(path);
        if (raw.Length < 2 || raw[0] != 0x1f || raw[1] != 0x8b) return raw;
        try
        {
            using var gz = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
            using var output = new MemoryStream();
            gz.CopyTo(output);
            return output.ToArray();
        }
        catch (InvalidDataException ex)
        {
            throw new CorruptDataException($"IDX file '{path}' is a damaged gzip file ({ex.Message}). Download or copy it again.", path, ex);
        }
    }

    private static int[] Header(byte[] data, string path, int expectedMagic, string kind)
    {
        int rank = expectedMagic & 0xff;
        if (data.Length < 4)
            throw new CorruptDataException($"IDX file '{path}' is truncated: {data.Length} bytes is shorter than its header. Download or copy it again.", path);
        int magic = BinaryPrimitives.ReadInt32BigEndian(data);
        if (magic != expectedMagic)
            throw new CorruptDataException(
                $"'{path}' is not an IDX {kind} file: magic number 0x{magic:x8}, expected 0x{expectedMagic:x8}. " +
                (magic is 0x00000801 or 0x00000803 ? "Did you swap the images and labels files?" : "Pass a *-images-idx3-ubyte / *-labels-idx1-ubyte file."), path);
        if (data.Length < 4 + 4 * rank)
            throw new CorruptDataException($"IDX file '{path}' is truncated: {data.Length} bytes is shorter than its header. Download or copy it again.", path);
        var dims = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            dims[i] = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(4 + 4 * i));
            if (dims[i] < 0) throw new CorruptDataException($"IDX file '{path}' has a negative dimension in its header.", path);
        }
        return dims;
    }

    private static byte[] Body(byte[] data, string path, int offset, long length)
    {
        if (data.Length - offset < length)
            throw new CorruptDataException($"IDX file '{path}' is truncated: the header promises {length} bytes of data, the file has {data.Length - offset}. Download or copy it again.", path);
        return data.AsSpan(offset, (int)length).ToArray();
    }
}
