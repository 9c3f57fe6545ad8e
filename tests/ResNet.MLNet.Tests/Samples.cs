namespace ResNet.MLNet.Tests;

/// <summary>Paths of the embedded dataset (samples/data), found from the test binaries.</summary>
internal static class Samples
{
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "samples", "data", "fashion-mnist-small");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException("samples/data/fashion-mnist-small was not found above " + AppContext.BaseDirectory);
        }
    }

    public static string Train => Path.Combine(Root, "train");
    public static string Test => Path.Combine(Root, "test");

    /// <summary>
    /// A fresh folder with <c>train/</c> (the first <paramref name="trainPerClass"/> images of the first
    /// <paramref name="classes"/> classes) and <c>test/</c> (the next <paramref name="testPerClass"/>), copied from the embedded dataset.
    /// </summary>
    public static string SmallCopy(int classes, int trainPerClass, int testPerClass)
    {
        string root = Directory.CreateTempSubdirectory("resnet-small-").FullName;
        foreach (var classDir in Directory.GetDirectories(Train).Order(StringComparer.Ordinal).Take(classes))
        {
            var files = Directory.GetFiles(classDir).Order(StringComparer.Ordinal).ToArray();
            foreach (var (part, skip, take) in new[] { ("train", 0, trainPerClass), ("test", trainPerClass, testPerClass) })
            {
                string target = Path.Combine(root, part, Path.GetFileName(classDir));
                Directory.CreateDirectory(target);
                foreach (var file in files.Skip(skip).Take(take)) File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
            }
        }
        return root;
    }
}
