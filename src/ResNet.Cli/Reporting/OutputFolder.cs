namespace ResNet.Cli.Reporting;

/// <summary>Checks an output folder before any work starts, so a bad --output is found in a second, not after an epoch.</summary>
internal static class OutputFolder
{
    /// <summary>
    /// Proves <paramref name="folder"/> writable (creating it for the probe, and removing what the probe created); refuses a file, and a folder equal to or inside
    /// one of <paramref name="inputs"/> (the model would become a class folder of the next run's data).
    /// </summary>
    /// <exception cref="IOException">The folder cannot be used; the message names it and the fix.</exception>
    public static string Prepare(string folder, string option, params string?[] inputs)
    {
        string full = Path.GetFullPath(folder);
        if (File.Exists(full))
            throw new IOException($"{option} '{folder}' is an existing file; give a folder (it is created if missing).");
        foreach (var input in inputs)
        {
            if (input is null) continue;
            string data = Path.GetFullPath(input).TrimEnd(Path.DirectorySeparatorChar);
            if (full.TrimEnd(Path.DirectorySeparatorChar) == data || full.StartsWith(data + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new IOException($"{option} '{folder}' is inside the data folder '{input}': the model's files would be read as data next time. Choose a folder outside it.");
        }
        string probe = Path.Combine(full, $".resnet-write-test-{Environment.ProcessId}");
        string? firstMissing = null;
        for (var dir = new DirectoryInfo(full); dir is not null && !dir.Exists; dir = dir.Parent) firstMissing = dir.FullName;
        try
        {
            Directory.CreateDirectory(full);
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{option} '{folder}' cannot be written ({ex.Message}). Choose a folder you can write to.", ex);
        }
        finally
        {
            // A run that fails on its data later should not leave empty folders behind; the writers create them again.
            if (firstMissing is not null && Directory.Exists(firstMissing)) Directory.Delete(firstMissing, recursive: true);
        }
        return full;
    }

    /// <summary>Checks that the folder of an output file can be written (see <see cref="Prepare"/>), and that the path is not a folder.</summary>
    public static void PrepareFile(string file, string option)
    {
        if (Directory.Exists(file))
            throw new IOException($"{option} '{file}' is a folder; give a file name, e.g. {Path.Combine(file, "model.onnx")}.");
        Prepare(Path.GetDirectoryName(Path.GetFullPath(file))!, option);
    }
}
