namespace ResNet.Scoring;

/// <summary>
/// Writes files so that a reader (or a crash, or Ctrl-C) never sees half of one: the bytes go to a temporary file
/// in the same folder, which then replaces the target in one rename. Every file this library writes goes through here.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Writes a file by calling <paramref name="write"/> with a temporary path, then moving it over <paramref name="path"/>.</summary>
    /// <param name="path">The file to create or replace; its folder is created when missing.</param>
    /// <param name="write">Writes the whole content to the path it is given.</param>
    public static void Write(string path, Action<string> write)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = TemporaryPath(full);
        try
        {
            write(temp);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>The temporary file a write of <paramref name="fullPath"/> goes through: beside it, named by the process, so two processes never share one.</summary>
    internal static string TemporaryPath(string fullPath) => $"{fullPath}.tmp-{Environment.ProcessId}";

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, temp => File.WriteAllBytes(temp, copy));
    }

    /// <summary>Writes <paramref name="text"/> (UTF-8) to <paramref name="path"/> atomically.</summary>
    public static void WriteAllText(string path, string text) => Write(path, temp => File.WriteAllText(temp, text));

    /// <summary>Writes whatever <paramref name="write"/> puts in the stream to <paramref name="path"/> atomically, flushed to disk before the rename.</summary>
    public static void WriteStream(string path, Action<FileStream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        Write(path, temp =>
        {
            using var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None);
            write(stream);
            stream.Flush(flushToDisk: true);
        });
    }
}
