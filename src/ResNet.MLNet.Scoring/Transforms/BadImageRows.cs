using Microsoft.ML;
using Microsoft.ML.Data;

namespace ResNet.MLNet.Transforms;

/// <summary>
/// Finds the row behind an image that failed to load. ML.NET decodes images in parallel cursors, so the failure
/// arrives without a row or a path ("Splitter/consolidator worker encountered exception"); this walks the view's
/// text columns in order, only after a failure, and names the first image path that is missing or does not decode.
/// </summary>
internal static class BadImageRows
{
    /// <summary>"row N ('path') does not exist" for the first unreadable image path, or null when none is found.</summary>
    public static string? Find(IDataView data, string? imageFolder)
    {
        var columns = data.Schema.Where(c => !c.IsHidden && c.Type is TextDataViewType).ToArray();
        if (columns.Length == 0) return null;
        using var cursor = data.GetRowCursor(columns);
        var getters = columns.Select(c => cursor.GetGetter<ReadOnlyMemory<char>>(c)).ToArray();
        ReadOnlyMemory<char> value = default;
        for (long row = 0; cursor.MoveNext(); row++)
        {
            foreach (var get in getters)
            {
                get(ref value);
                string text = value.ToString();
                if (!ResNet.Scoring.ImageDecoder.Extensions.Contains(Path.GetExtension(text))) continue;
                string path = imageFolder is null ? text : Path.Combine(imageFolder, text);
                if (Problem(path) is string problem) return $"row {row} ('{path}') {problem}";
            }
        }
        return null;
    }

    private static string? Problem(string path)
    {
        if (!File.Exists(path)) return "does not exist";
        if (new FileInfo(path).Length == 0) return "is an empty (zero-byte) file";
        try
        {
            using var image = MLImage.CreateFromFile(path);
            return null;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return $"does not decode ({ex.Message})";
        }
    }
}
