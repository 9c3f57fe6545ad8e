namespace ResNet.Trainer.Data;

/// <summary>Which CIFAR binary layout, and for CIFAR-100 which label.</summary>
public enum CifarVariant
{
    /// <summary>CIFAR-10: 1 label byte + 3072 pixel bytes per record.</summary>
    Cifar10,
    /// <summary>CIFAR-100 with its 100 fine labels: coarse byte, fine byte, 3072 pixel bytes.</summary>
    Cifar100Fine,
    /// <summary>CIFAR-100 with its 20 coarse (superclass) labels.</summary>
    Cifar100Coarse,
}

/// <summary>Reads CIFAR-10/100 binary batches (<c>data_batch_1.bin</c> ... <c>test_batch.bin</c>, <c>train.bin</c>/<c>test.bin</c>).</summary>
public static class Cifar
{
    /// <summary>CIFAR-10's class names in label order.</summary>
    public static IReadOnlyList<string> Cifar10Classes { get; } =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    private const int Side = 32, Plane = Side * Side, Pixels = 3 * Plane;

    /// <summary>Reads the given batch files into memory as 32x32 RGB images.</summary>
    /// <param name="files">Binary batch files of one variant.</param>
    /// <param name="variant">Record layout.</param>
    /// <param name="classNames">Label names; default: the <c>batches.meta.txt</c> / <c>fine_label_names.txt</c> / <c>coarse_label_names.txt</c> beside the first file, else CIFAR-10's names or numbers.</param>
    /// <exception cref="CorruptDataException">A file's length is not a whole number of records, or a label is out of range.</exception>
    public static InMemoryImages Read(IEnumerable<string> files, CifarVariant variant = CifarVariant.Cifar10, IReadOnlyList<string>? classNames = null)
    {
        var paths = files.ToArray();
        if (paths.Length == 0) throw new ArgumentException("Give at least one CIFAR batch file.", nameof(files));
        int labelBytes = variant == CifarVariant.Cifar10 ? 1 : 2;
        int record = labelBytes + Pixels;
        int classes = variant switch { CifarVariant.Cifar10 => 10, CifarVariant.Cifar100Fine => 100, _ => 20 };
        classNames ??= NamesBeside(paths[0], variant, classes);
        var pixels = new List<byte[]>();
        var labels = new List<int>();
        foreach (string path in paths)
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"CIFAR batch '{path}' does not exist.", path);
            byte[] data = File.ReadAllBytes(path);
            if (data.Length == 0 || data.Length % record != 0)
                throw new CorruptDataException(
                    $"'{path}' is {data.Length} bytes, not a whole number of {variant} records of {record} bytes. " +
                    (data.Length % (3 - labelBytes + Pixels) == 0 && data.Length > 0 ? $"It looks like the other CIFAR variant; choose it instead. " : "The file is truncated or not a CIFAR binary batch; download it again. ") +
                    "(The Python pickle batches are not read: use the binary version.)", path);
            int n = data.Length / record;
            var hwc = new byte[n * Pixels];
            for (int i = 0; i < n; i++)
            {
                int at = i * record;
                int label = data[at + (variant == CifarVariant.Cifar100Coarse ? 0 : labelBytes - 1)];
                if (label >= classes)
                    throw new CorruptDataException($"Record {i} of '{path}' has label {label}, but {variant} has {classes} classes. Check the variant.", path);
                labels.Add(label);
                // The file stores the red, green and blue planes one after another; we keep pixels interleaved.
                for (int p = 0; p < Plane; p++)
                    for (int c = 0; c < 3; c++)
                        hwc[i * Pixels + p * 3 + c] = data[at + labelBytes + c * Plane + p];
            }
            pixels.Add(hwc);
        }
        return new InMemoryImages(pixels.SelectMany(b => b).ToArray(), labels.ToArray(), Side, Side, 3, classNames);
    }

    /// <summary>The training batches (<c>data_batch_1..5.bin</c> or <c>train.bin</c>) or the test batch of an extracted CIFAR folder.</summary>
    public static InMemoryImages LoadSplit(string folder, bool train, CifarVariant variant = CifarVariant.Cifar10)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"CIFAR folder '{folder}' does not exist. Extract cifar-10-binary.tar.gz (or cifar-100-binary.tar.gz) and point to the folder with the .bin files.");
        string[] files = variant == CifarVariant.Cifar10
            ? (train ? Enumerable.Range(1, 5).Select(i => Path.Combine(folder, $"data_batch_{i}.bin")).ToArray() : [Path.Combine(folder, "test_batch.bin")])
            : [Path.Combine(folder, train ? "train.bin" : "test.bin")];
        return Read(files.Where(File.Exists).DefaultIfEmpty(files[0]), variant);
    }

    private static IReadOnlyList<string> NamesBeside(string file, CifarVariant variant, int classes)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(file))!;
        string meta = Path.Combine(dir, variant switch
        {
            CifarVariant.Cifar10 => "batches.meta.txt",
            CifarVariant.Cifar100Fine => "fine_label_names.txt",
            _ => "coarse_label_names.txt",
        });
        if (File.Exists(meta))
        {
            var names = File.ReadAllLines(meta).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
            if (names.Length == classes) return names;
        }
        return variant == CifarVariant.Cifar10 ? Cifar10Classes : Enumerable.Range(0, classes).Select(i => $"class_{i:D2}").ToArray();
    }
}
