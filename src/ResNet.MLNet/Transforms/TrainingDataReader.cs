using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.Trainer.Data;

namespace ResNet.MLNet.Transforms;

/// <summary>Reads an IDataView's images and key labels into the trainer's in-memory image set.</summary>
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
    private static bool MoveNext(DataViewRowCursor cursor, IDataView data, string? imageFolder, string imageColumn, ImageColumnKind kind, bool skipping)
    {
        try
        {
            return cursor.MoveNext();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException and not OperationCanceledException)
        {
            throw Undecodable(data, imageFolder, imageColumn, kind, skipping, ex);
        }
    }

    // The cursor's position is no guide (ML.NET decodes ahead in parallel, and reports row 0): find the row by its path.
    private static InvalidDataException Undecodable(IDataView data, string? imageFolder, string imageColumn, ImageColumnKind kind, bool skipping, Exception ex)
    {
        string where = BadImageRows.Find(data, imageFolder) is string culprit ? $"in {culprit}" : $"of column '{imageColumn}' ({Innermost(ex).Message})";
        return new(skipping && kind == ImageColumnKind.Image
            ? $"The image {where} could not be decoded by the upstream LoadImages transform, so it cannot be skipped here. " +
              "Pass the path column (e.g. 'ImagePath') as the image column instead of the LoadImages output; then undecodable files are skipped with a warning."
            : $"The image {where} could not be decoded. " +
              "Fix or remove the file, or set SkipUndecodableImages = true (with a path or bytes column) to skip such rows with a warning.", ex);
    }

    private static Exception Innermost(Exception ex) => ex.InnerException is null ? ex : Innermost(ex.InnerException);

    private sealed class ProbeRow
    {
        [ColumnName(ProbeColumn)]
        public string Path { get; set; } = "";
    }

    private sealed class ProbeBytes
    {
        [ColumnName(ProbeColumn)]
        public byte[] Bytes { get; set; } = [];
    }

    private const string ProbeColumn = "__ResNet_Probe";

    // Decodes each path or byte array once, here, and filters out the rows that fail, naming them in the warning.
    private static IDataView DropUndecodable(MLEnvironment ml, IDataView data, ImageColumnKind kind, string imageColumn, string? imageFolder, List<string> failed)
    {
        if (kind == ImageColumnKind.Image) return data; // decoded upstream; failures are reported by MoveNext
        var probed = ml.Transforms.CopyColumns(ProbeColumn, imageColumn).Fit(data).Transform(data);
        IDataView filtered = kind == ImageColumnKind.Path
            ? ml.Data.FilterByCustomPredicate<ProbeRow>(probed, r => !CanDecode(() => MLImage.CreateFromFile(imageFolder is null ? r.Path : System.IO.Path.Combine(imageFolder, r.Path)), r.Path, failed))
            : ml.Data.FilterByCustomPredicate<ProbeBytes>(probed, r => !CanDecode(() => MLImage.CreateFromStream(new MemoryStream(r.Bytes)), $"{r.Bytes.Length} bytes", failed));
        return ml.Transforms.DropColumns(ProbeColumn).Fit(filtered).Transform(filtered);
    }

    private static bool CanDecode(Func<MLImage> decode, string what, List<string> failed)
    {
        try
        {
            using var image = decode();
            return true;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            lock (failed) if (!failed.Any(f => f.StartsWith(what + " (", StringComparison.Ordinal))) failed.Add($"{what} ({Innermost(ex).Message})");
            return false;
        }
    }

    /// <summary>
    /// Decodes every row's image at <paramref name="height"/> x <paramref name="width"/> with <paramref name="channels"/> channels (0..255), with its label.
    /// Rows whose label is missing are skipped; rows whose image fails to decode are skipped with a warning or
    /// fail, as <paramref name="skipUndecodable"/> says.
    /// </summary>
    public static InMemoryImages Read(MLEnvironment ml, IDataView data, ImageColumnKind kind, string imageColumn, string? imageFolder,
        string labelColumn, IReadOnlyList<string> classNames, int channels, int height, int width, bool skipUndecodable, Action<string> warn)
    {
        var failed = new List<string>();
        if (skipUndecodable)
            data = DropUndecodable(ml, data, kind, imageColumn, imageFolder, failed);
        var prepared = ImagePreprocessing.Build(ml.Transforms, kind, imageColumn, imageFolder, channels, height, width, pixelScale: 1f).Fit(data).Transform(data);
        var pixelCol = prepared.Schema[ImagePreprocessing.PixelsColumn];
        var labelCol = prepared.Schema[labelColumn];
        int hw = height * width;
        var bytes = new List<byte>();
        var labels = new List<int>();
        int missingLabels = 0;
        using (var cursor = prepared.GetRowCursor([pixelCol, labelCol]))
        {
            var getPixels = cursor.GetGetter<VBuffer<float>>(pixelCol);
            var getLabel = cursor.GetGetter<uint>(labelCol);
            VBuffer<float> px = default;
            uint label = 0;
            var hwc = new byte[channels * hw];
            while (MoveNext(cursor, data, imageFolder, imageColumn, kind, skipUndecodable))
            {
                getLabel(ref label);
                if (label == 0) { missingLabels++; continue; }
                try
                {
                    getPixels(ref px);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException and not OperationCanceledException)
                {
                    throw Undecodable(data, imageFolder, imageColumn, kind, skipUndecodable, ex);
                }
                // ML.NET's pixel extractor gives planes (CHW); the trainer stores interleaved bytes (HWC).
                var chw = px.GetValues();
                for (int c = 0; c < channels; c++)
                    for (int i = 0; i < hw; i++)
                        hwc[i * channels + c] = (byte)Math.Clamp(MathF.Round(chw[c * hw + i]), 0f, 255f);
                bytes.AddRange(hwc);
                labels.Add((int)label - 1);
            }
        }
        if (failed.Count > 0)
            warn($"Skipped {failed.Count} image(s) that could not be decoded: {string.Join("; ", failed.Take(10))}{(failed.Count > 10 ? "; ..." : "")}");
        if (missingLabels > 0)
            warn($"Skipped {missingLabels} row(s) whose label is missing (not among the key values of '{labelColumn}').");
        if (labels.Count == 0)
            throw new InvalidDataException(
                $"The training data has no usable rows (images in '{imageColumn}' with a label in '{labelColumn}'). Check that the IDataView is not empty.");
        return new InMemoryImages(bytes.ToArray(), labels.ToArray(), width, height, channels, classNames);
    }
}
