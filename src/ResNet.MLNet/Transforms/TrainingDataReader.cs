using Microsoft.ML;
using Microsoft.ML.Data;

namespace ResNet.MLNet.Transforms;

/// <summary>Reads an IDataView's image references and key labels for the trainer's streaming loader.</summary>
internal static class TrainingDataReader
{
    /// <summary>The class names of a key-typed label column, in key order.</summary>
    public static string[] ClassNames(DataViewSchema schema, string labelColumn)
    {
        var col = schema.GetColumnOrNull(labelColumn)
            ?? throw new SchemaMismatchException(
                $"Label column '{labelColumn}' was not found in the input (columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}). " +
                "Pass the right name as labelColumnName.");
        if (col.Type is not KeyDataViewType key)
            throw new SchemaMismatchException(
                $"Label column '{labelColumn}' has type {col.Type}; expected a key type. Add this before the ResNet estimator: " +
                $"mlContext.Transforms.Conversion.MapValueToKey(\"{labelColumn}\")");
        int count = checked((int)key.Count);
        var names = Enumerable.Range(0, count).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (col.Annotations.Schema.GetColumnOrNull("KeyValues") is { Type: VectorDataViewType { ItemType: TextDataViewType } })
        {
            VBuffer<ReadOnlyMemory<char>> values = default;
            col.GetKeyValues(ref values);
            var dense = values.DenseValues().Select(v => v.ToString()).ToArray();
            if (dense.Length == count) names = dense;
        }
        return names;
    }

    // ML.NET's image transforms may decode inside MoveNext (their cursors run in parallel), so a bad file surfaces there.
    private static bool MoveNext(DataViewRowCursor cursor, IDataView data, string? imageFolder, string imageColumn, bool skipping)
    {
        try
        {
            return cursor.MoveNext();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException and not OperationCanceledException)
        {
            throw Undecodable(data, imageFolder, imageColumn, skipping, ex);
        }
    }

    // The cursor's position is no guide (ML.NET decodes ahead in parallel, and reports row 0): find the row by its path.
    private static InvalidDataException Undecodable(IDataView data, string? imageFolder, string imageColumn, bool skipping, Exception ex)
    {
        string where = BadImageRows.Find(data, imageFolder) is string culprit ? $"in {culprit}" : $"of column '{imageColumn}' ({Innermost(ex).Message})";
        return new(skipping
            ? $"The image {where} could not be decoded by the upstream LoadImages transform, so it cannot be skipped here. " +
              "Pass the path column (e.g. 'ImagePath') as the image column instead of the LoadImages output; then undecodable files are skipped with a warning."
            : $"The image {where} could not be decoded. " +
              "Fix or remove the file, or set SkipUndecodableImages = true (with a path or bytes column) to skip such rows with a warning.", ex);
    }

    private static Exception Innermost(Exception ex) => ex.InnerException is null ? ex : Innermost(ex.InnerException);

    /// <summary>
    /// Reads every row's image reference and label, decoding no pixels: a path column keeps its paths, a bytes column its
    /// bytes, and an image column (from LoadImages) is read through the path column it was loaded from; only when it has
    /// none is each image read once and kept encoded (PNG). Each image's header is checked here, so a file that is missing
    /// or not an image fails before training (or is skipped with a warning, as <paramref name="skipUndecodable"/> says).
    /// Rows whose label is missing are skipped with a warning. <paramref name="size"/> null gives the loader images at their own
    /// size; otherwise at that square size (shorter side resized, centre crop).
    /// </summary>
    public static DataViewImages Read(IDataView data, ImageColumnKind kind, string imageColumn, string? imageFolder,
        string labelColumn, IReadOnlyList<string> classes, int channels, int? size, bool skipUndecodable, Action<string> warn)
    {
        var refs = new References();
        int missingLabels = 0;
        var labelCol = data.Schema[labelColumn];
        (DataViewSchema.Column Column, Func<string, string> Resolve)? source = kind switch
        {
            ImageColumnKind.Path => (data.Schema[imageColumn], v => imageFolder is null ? v : Path.Combine(imageFolder, v)),
            ImageColumnKind.Image => SourcePathColumn(data, imageColumn) is var (column, prefix) ? (column, v => prefix + v) : null,
            _ => null,
        };
        if (source is var (pathCol, resolve))
        {
            using var cursor = data.GetRowCursor([pathCol, labelCol]);
            var getPath = cursor.GetGetter<ReadOnlyMemory<char>>(pathCol);
            var getLabel = cursor.GetGetter<uint>(labelCol);
            ReadOnlyMemory<char> text = default;
            uint label = 0;
            for (long row = 0; cursor.MoveNext(); row++)
            {
                getLabel(ref label);
                if (label == 0) { missingLabels++; continue; }
                getPath(ref text);
                string path = resolve(text.ToString());
                string name = $"row {row} ('{path}')";
                (int, int)? header = !File.Exists(path) ? null : ImageDecoder.Probe(path);
                if (header is null) refs.Bad.Add($"{name} ({(File.Exists(path) ? new FileInfo(path).Length == 0 ? "an empty file" : "not a decodable image" : "the file does not exist")})");
                else refs.Add(path, null, name, header.Value, (int)label - 1);
            }
        }
        else if (kind == ImageColumnKind.EncodedBytes)
        {
            var imageCol = data.Schema[imageColumn];
            using var cursor = data.GetRowCursor([imageCol, labelCol]);
            var getBytes = cursor.GetGetter<VBuffer<byte>>(imageCol);
            var getLabel = cursor.GetGetter<uint>(labelCol);
            VBuffer<byte> bytes = default;
            uint label = 0;
            for (long row = 0; cursor.MoveNext(); row++)
            {
                getLabel(ref label);
                if (label == 0) { missingLabels++; continue; }
                getBytes(ref bytes);
                byte[] encoded = bytes.DenseValues().ToArray();
                string name = $"row {row} of '{imageColumn}' ({encoded.Length} bytes)";
                if (ImageDecoder.Probe(encoded) is { } header) refs.Add(null, encoded, name, header, (int)label - 1);
                else refs.Bad.Add($"{name} (not a decodable image)");
            }
        }
        else
        {
            // Images made in memory: each is read once and kept encoded (lossless PNG), a fraction of its decoded size.
            var imageCol = data.Schema[imageColumn];
            using var cursor = data.GetRowCursor([imageCol, labelCol]);
            var getImage = cursor.GetGetter<MLImage>(imageCol);
            var getLabel = cursor.GetGetter<uint>(labelCol);
            MLImage image = null!;
            uint label = 0;
            for (long row = 0; MoveNext(cursor, data, imageFolder, imageColumn, skipUndecodable); row++)
            {
                getLabel(ref label);
                if (label == 0) { missingLabels++; continue; }
                try
                {
                    getImage(ref image);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException and not OperationCanceledException)
                {
                    throw Undecodable(data, imageFolder, imageColumn, skipUndecodable, ex);
                }
                refs.Add(null, EncodePng(image, imageColumn, row), $"row {row} of '{imageColumn}'", (image.Width, image.Height), (int)label - 1);
            }
        }

        if (refs.Bad.Count > 0 && !skipUndecodable)
            throw new InvalidDataException($"The image in {refs.Bad[0]} could not be decoded{(refs.Bad.Count > 1 ? $" ({refs.Bad.Count} images in all)" : "")}. " +
                "Fix or remove the file, or set SkipUndecodableImages = true to skip such rows with a warning.");
        if (refs.Bad.Count > 0)
            warn($"Skipped {refs.Bad.Count} image(s) that could not be decoded: {string.Join("; ", refs.Bad.Take(10))}{(refs.Bad.Count > 10 ? "; ..." : "")}");
        if (missingLabels > 0)
            warn($"Skipped {missingLabels} row(s) whose label is missing (not among the key values of '{labelColumn}').");
        if (refs.Labels.Count == 0)
            throw new InvalidDataException(
                $"The training data has no usable rows (images in '{imageColumn}' with a label in '{labelColumn}'). Check that the IDataView is not empty.");
        return new DataViewImages(source is null ? null : [.. refs.Paths], source is null ? [.. refs.Encoded] : null, [.. refs.Names], [.. refs.Sizes],
            [.. refs.Labels], classes, channels, size, skipUndecodable);
    }

    private sealed class References
    {
        public List<string> Paths { get; } = [];
        public List<byte[]> Encoded { get; } = [];
        public List<string> Names { get; } = [];
        public List<(int, int)> Sizes { get; } = [];
        public List<int> Labels { get; } = [];
        public List<string> Bad { get; } = [];

        public void Add(string? path, byte[]? encoded, string name, (int, int) size, int label)
        {
            if (path is not null) Paths.Add(path);
            if (encoded is not null) Encoded.Add(encoded);
            Names.Add(name);
            Sizes.Add(size);
            Labels.Add(label);
        }
    }

    /// <summary>
    /// The text column an image column was loaded from, and the folder prefix LoadImages put before its values: LoadImages
    /// tags each image with the path it read. Reads (decodes) the first row's image only; null when there is no such column.
    /// </summary>
    internal static (DataViewSchema.Column Column, string Prefix)? SourcePathColumn(IDataView data, string imageColumn)
    {
        var texts = data.Schema.Where(c => !c.IsHidden && c.Type is TextDataViewType).ToArray();
        if (texts.Length == 0) return null;
        var imageCol = data.Schema[imageColumn];
        string?[] values = new string?[texts.Length];
        string? tag;
        try
        {
            using var cursor = data.GetRowCursor([.. texts, imageCol]);
            if (!cursor.MoveNext()) return null;
            ReadOnlyMemory<char> text = default;
            for (int i = 0; i < texts.Length; i++)
            {
                cursor.GetGetter<ReadOnlyMemory<char>>(texts[i])(ref text);
                values[i] = text.ToString();
            }
            MLImage image = null!;
            cursor.GetGetter<MLImage>(imageCol)(ref image);
            tag = image?.Tag;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException and not OperationCanceledException)
        {
            tag = null; // the upstream decode failed ahead of the cursor: fall back to the column that names an image file
            if (values.All(v => v is null))
            {
                using var cursor = data.GetRowCursor(texts);
                if (!cursor.MoveNext()) return null;
                ReadOnlyMemory<char> text = default;
                for (int i = 0; i < texts.Length; i++)
                {
                    cursor.GetGetter<ReadOnlyMemory<char>>(texts[i])(ref text);
                    values[i] = text.ToString();
                }
            }
        }
        for (int i = 0; i < texts.Length; i++)
        {
            string v = values[i] ?? "";
            if (!ImageDecoder.Extensions.Contains(Path.GetExtension(v))) continue;
            if (tag is null) { if (File.Exists(v)) return (texts[i], ""); continue; }
            // LoadImages reads Path.Combine(imageFolder, value): the tag is the value, or a folder and a separator before it.
            string prefix = tag.EndsWith(v, StringComparison.Ordinal) ? tag[..^v.Length] : "-";
            if (prefix.Length == 0 || prefix[^1] == Path.DirectorySeparatorChar || prefix[^1] == Path.AltDirectorySeparatorChar) return (texts[i], prefix);
        }
        return null;
    }

    // An MLImage (32-bit BGRA or RGBA pixels) as PNG bytes of its RGB channels.
    private static byte[] EncodePng(MLImage image, string imageColumn, long row)
    {
        var pixels = image.Pixels;
        int n = image.Width * image.Height;
        if (pixels.Length != n * 4)
            throw new InvalidDataException($"The image in row {row} of '{imageColumn}' has {pixels.Length} bytes of pixels for {image.Width}x{image.Height}; expected 32-bit pixels. Load it with mlContext.Transforms.LoadImages.");
        var rgba = pixels.ToArray();
        if (image.PixelFormat == MLPixelFormat.Bgra32)
            for (int i = 0; i < n; i++) (rgba[4 * i], rgba[4 * i + 2]) = (rgba[4 * i + 2], rgba[4 * i]);
        return ImageDecoder.EncodePng(ImageDecoder.FromRgba(rgba, image.Width, image.Height, 3));
    }
}
