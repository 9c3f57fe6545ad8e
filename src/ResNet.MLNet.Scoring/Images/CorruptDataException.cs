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

/// <summary>An image is larger (in pixels on a side) than the reader accepts.</summary>
/// <param name="message">Names the image, its size and the limit.</param>
/// <param name="path">The image's path or name.</param>
public sealed class ImageTooLargeException(string message, string path) : IOException(message)
{
    /// <summary>The image's path or name.</summary>
    public string Path { get; } = path;
}
