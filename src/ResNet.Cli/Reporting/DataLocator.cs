using ResNet.Trainer.Data;

namespace ResNet.Cli.Reporting;

/// <summary>Opens what the user pointed --data at: an image folder (optionally with train/ and test/), IDX files or CIFAR batches.</summary>
internal static class DataLocator
{
    public sealed record Opened(IImageSource Train, IImageSource? Test, string Description);

    public static Opened Open(string path, int? channels, int? imageSize, BadImagePolicy onBad, Action<string> warn, bool keepOriginalSize = false)
    {
        if (channels is not (null or 1 or 3))
            throw new ArgumentException($"--channels {channels}: give 1 (grayscale) or 3 (RGB).");
        string full = Path.GetFullPath(path);
        if (File.Exists(full))
            throw new ArgumentException($"--data '{path}' is a file; pass the folder that holds it (an image folder, the IDX files or the CIFAR .bin batches).");
        if (!Directory.Exists(full))
            throw new DirectoryNotFoundException($"--data folder '{path}' does not exist.");
        if (File.Exists(Path.Combine(full, "train-images-idx3-ubyte.gz")) || File.Exists(Path.Combine(full, "train-images-idx3-ubyte")))
            return new Opened(Idx.LoadSplit(full, train: true), Idx.LoadSplit(full, train: false), $"IDX files in {full} (official train/test split)");
        if (File.Exists(Path.Combine(full, "data_batch_1.bin")))
            return new Opened(Cifar.LoadSplit(full, true), Cifar.LoadSplit(full, false), $"CIFAR-10 batches in {full}");
        if (File.Exists(Path.Combine(full, "train.bin")))
            return new Opened(Cifar.LoadSplit(full, true, CifarVariant.Cifar100Fine), Cifar.LoadSplit(full, false, CifarVariant.Cifar100Fine), $"CIFAR-100 batches in {full}");
        string trainDir = Path.Combine(full, "train"), testDir = Path.Combine(full, "test");
        bool split = Directory.Exists(trainDir) && Directory.Exists(testDir);
        string root = split ? trainDir : full;
        var options = new ImageFolderOptions
        {
            Channels = channels ?? GuessChannels(root), ImageSize = imageSize, OnBadImage = onBad, Warn = warn, KeepOriginalSize = keepOriginalSize,
        };
        var train = ImageFolderSource.Scan(root, options);
        IImageSource? test = null;
        if (split)
        {
            var testSource = ImageFolderSource.Scan(testDir, options with { ImageSize = imageSize ?? train.ImageSize?.Width });
            if (!testSource.ClassNames.SequenceEqual(train.ClassNames))
                throw new InvalidDatasetException($"'{testDir}' has classes [{string.Join(", ", testSource.ClassNames)}] but '{trainDir}' has [{string.Join(", ", train.ClassNames)}]. Give both the same class subfolders.", testDir);
            test = testSource;
        }
        IImageSource trainSource = train;
        // Small folders are decoded once into memory; larger ones stream from disk through the loader.
        if (train.Count <= 100_000 && train.ImageSize is { Width: <= 64, Height: <= 64 })
        {
            trainSource = InMemoryImages.From(train);
            if (test is not null) test = InMemoryImages.From(test);
        }
        string size = train.SizeRule is null ? "" : $"; image size {train.SizeRule} (--image-size sets another)";
        return new Opened(trainSource, test, $"image folder {root} ({trainSource.Count} images, {train.ClassNames.Count} classes{(split ? $", test: {test!.Count} images in {testDir}" : "")}){size}");
    }

    // Gray PNGs stay one channel; anything with colour gets three.
    private static int GuessChannels(string root)
    {
        foreach (var dir in FolderListing.Subfolders(root))
            foreach (var file in FolderListing.Images(dir, recursive: false).Take(8))
                if (ImageDecoder.ProbeChannels(file) is int c) return c;
        return 3;
    }

    /// <summary>The embedded default: samples/data/fashion-mnist-small, searched upwards from the working folder and the program's folder.</summary>
    public static string? FindSamples()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "samples", "data", "fashion-mnist-small");
                if (Directory.Exists(candidate)) return candidate;
            }
        }
        return null;
    }
}
