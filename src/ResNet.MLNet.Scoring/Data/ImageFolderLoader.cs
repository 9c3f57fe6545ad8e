using Microsoft.ML;

namespace ResNet.MLNet.Data;

/// <summary>One image file found by <see cref="ImageFolderLoader"/>.</summary>
public sealed class ImageFileRow
{
    /// <summary>Full path of the image file.</summary>
    public string ImagePath { get; set; } = "";

    /// <summary>The class: the name of the subfolder holding the file (empty when labels are not taken from folders).</summary>
    public string Label { get; set; } = "";
}

/// <summary>Thrown when an image folder cannot be used as a dataset; the message names the folder and the fix.</summary>
public sealed class ImageFolderException(string message) : IOException(message);

/// <summary>Lists an image folder with one subfolder per class, the layout torchvision's ImageFolder reads.</summary>
public static class ImageFolderLoader
{
    /// <summary>The file extensions treated as images (case-insensitive).</summary>
    public static IReadOnlySet<string> ImageExtensions => ImageDecoder.Extensions;

    /// <summary>
    /// Lists <paramref name="folder"/>. With <paramref name="useFolderNameAsLabel"/>, each immediate subfolder is a
    /// class and its images (searched recursively) are labelled with its name; rows are ordered by class, then path.
    /// </summary>
    /// <exception cref="ImageFolderException">The folder is missing, holds no images, or (with labels) has fewer than one class folder with images.</exception>
    public static IReadOnlyList<ImageFileRow> List(string folder, bool useFolderNameAsLabel = true)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        if (!Directory.Exists(folder))
            throw new ImageFolderException($"Image folder '{folder}' does not exist. Pass a folder with one subfolder of images per class.");
        var rows = new List<ImageFileRow>();
        if (useFolderNameAsLabel)
        {
            var classDirs = Directory.GetDirectories(folder).Order(StringComparer.Ordinal).ToList();
            if (classDirs.Count == 0)
                throw new ImageFolderException($"Image folder '{folder}' has no subfolders. Put the images of each class in a subfolder named after the class (e.g. {Path.Combine(folder, "cat")}).");
            var empty = new List<string>();
            foreach (var dir in classDirs)
            {
                var files = Images(dir);
                if (files.Count == 0) empty.Add(Path.GetFileName(dir));
                rows.AddRange(files.Select(f => new ImageFileRow { ImagePath = f, Label = Path.GetFileName(dir) }));
            }
            if (empty.Count > 0)
                throw new ImageFolderException(
                    $"Class folder(s) {string.Join(", ", empty.Select(e => $"'{e}'"))} in '{folder}' contain no images ({string.Join(", ", ImageExtensions)}). Add images or remove the folder(s).");
        }
        else
        {
            rows.AddRange(Images(folder).Select(f => new ImageFileRow { ImagePath = f }));
        }
        if (rows.Count == 0)
            throw new ImageFolderException($"Image folder '{folder}' contains no images ({string.Join(", ", ImageExtensions)}).");
        return rows;
    }

    private static List<string> Images(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .Where(f => ImageExtensions.Contains(Path.GetExtension(f)))
            .Select(Path.GetFullPath)
            .Order(StringComparer.Ordinal)
            .ToList();
}
