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
}
