namespace ResNet.Trainer.Data;

/// <summary>
/// A dataset's layout is wrong: an empty folder, a class folder without images, fewer than two classes,
/// labels that do not match images. The message names the folder or file and says how to fix it.
/// </summary>
public sealed class InvalidDatasetException(string message, string path) : Exception(message)
{
    /// <summary>The folder or file at fault.</summary>
    public string Path { get; } = path;
}
