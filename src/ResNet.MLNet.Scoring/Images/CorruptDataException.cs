namespace ResNet.Scoring;

/// <summary>
/// A data file's bytes are not what its format promises: wrong magic number, truncated, not a decodable image.
/// The message names the file.
/// </summary>
public sealed class CorruptDataException(string message, string path, Exception? inner = null) : IOException(message, inner)
{
    /// <summary>The file at fault.</summary>
    public string Path { get; } = path;
}
