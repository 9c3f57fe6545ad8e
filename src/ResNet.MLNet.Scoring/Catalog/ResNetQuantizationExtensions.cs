using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.Scoring;
using ResNet.Scoring.Quantization;
using ResNet.MLNet.Transforms;

namespace ResNet.MLNet;

/// <summary>
/// INT8 copies of a fitted ResNet scorer's model from ML.NET data: calibration images come from an <see cref="IDataView"/>
/// and go through the same ML.NET preprocessing as scoring, and the file written is scored with
/// <c>mlContext.Transforms.ApplyResNet(path)</c> like any exported model.
/// </summary>
public static class ResNetQuantizationExtensions
{
    /// <summary>
    /// Writes an INT8 copy of the transformer's ONNX model (static post-training quantization, see <see cref="OnnxQuantizer"/>)
    /// to <paramref name="outputPath"/>, with activation ranges measured on the images of <paramref name="calibrationData"/>
    /// (at most <see cref="QuantizationOptions.MaxCalibrationImages"/> rows, spread evenly over the data; the training
    /// data is a good choice). Score it with <c>mlContext.Transforms.ApplyResNet(outputPath)</c>.
    /// </summary>
    /// <param name="transformer">A fitted ResNet scorer (from <c>ResNetClassifier</c> or <c>ApplyResNet</c>).</param>
    /// <param name="outputPath">The INT8 ONNX file to write (replaced atomically when it exists).</param>
    /// <param name="calibrationData">Rows with an image column: an image (<c>LoadImages</c>), encoded bytes or a path.</param>
    /// <param name="imageColumnName">The image column of <paramref name="calibrationData"/>; null takes the transformer's own.</param>
    /// <param name="options">Quantization choices; null takes the defaults (<see cref="QuantizationOptions"/>).</param>
    /// <returns>What was quantized, as the settings written to the model's metadata.</returns>
    /// <exception cref="SchemaMismatchException">The image column is missing or has the wrong type.</exception>
    /// <exception cref="OnnxModelFormatException">The transformer's model is already quantized or uses an operator the quantizer does not support.</exception>
    /// <exception cref="CalibrationDataException">Fewer than <see cref="QuantizationOptions.MinimumCalibrationImages"/> rows.</exception>
    /// <exception cref="InvalidDataException">An image of the calibration data cannot be read (the message names its row).</exception>
    public static QuantizationSummary SaveQuantizedOnnx(this ResNetScoringTransformer transformer, string outputPath, IDataView calibrationData,
        string? imageColumnName = null, QuantizationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputPath);
        ArgumentNullException.ThrowIfNull(calibrationData);
        options ??= new QuantizationOptions();
        string column = imageColumnName ?? transformer.ImageColumnName;
        // Everything that needs no image is checked first.
        var kind = ImagePreprocessing.Classify(calibrationData.Schema, column);
        byte[] model = transformer.OnnxModel.ToArray();
        const string source = "the transformer's ONNX model";
        OnnxQuantizer.CheckModel(model, source);

        var info = transformer.ModelInfo;
        var ml = new MLContext().RegisterResNet();
        var pixels = ImagePreprocessing.Build(ml.Transforms, kind, column, transformer.ImageFolder, info).Fit(calibrationData).Transform(calibrationData);
        var images = Read(pixels, calibrationData, transformer.ImageFolder, info, options.MaxCalibrationImages);
        options.Log?.Invoke($"calibration: {images.Count} images from the data's column '{column}'");
        var (bytes, summary) = OnnxQuantizer.Quantize(model, images, options, source);
        AtomicFile.WriteAllBytes(outputPath, bytes);
        return summary;
    }

    // The pixel vectors of an even spread of at most `max` rows, kept as bytes (a quarter of the floats' memory).
    private static ScaledImages Read(IDataView pixels, IDataView input, string? imageFolder, OnnxModelInfo info, int max)
    {
        long count = input.GetRowCount() ?? CountRows(input);
        int take = max < 1 ? (int)Math.Min(count, int.MaxValue) : (int)Math.Min(count, max);
        // Row i*count/take for i = 0..take-1: the next row to keep.
        var images = new List<byte[]>(take);
        var column = pixels.Schema[ImagePreprocessing.PixelsColumn];
        try
        {
            using var cursor = pixels.GetRowCursor([column]);
            var get = cursor.GetGetter<VBuffer<float>>(column);
            VBuffer<float> row = default;
            for (long r = 0; images.Count < take && cursor.MoveNext(); r++)
            {
                if (r != images.Count * count / take) continue;
                get(ref row);
                var values = row.DenseValues().ToArray();
                if (values.Length != info.PixelCount)
                    throw new InvalidOperationException($"Expected {info.PixelCount} pixel values per image, got {values.Length}.");
                images.Add(values.Select(v => (byte)Math.Clamp(MathF.Round(v / info.PixelScale), 0, 255)).ToArray());
            }
        }
        catch (Exception ex) when (ex is not (OperationCanceledException or OutOfMemoryException or InvalidDataException))
        {
            // ML.NET's image loader fails without naming the file: find the row it came from.
            if (BadImageRows.Find(input, imageFolder) is string culprit)
                throw new InvalidDataException($"The calibration image in {culprit}. Fix or remove that file, or filter the row out of the calibration data.", ex);
            throw;
        }
        return new ScaledImages(images, info.PixelScale);
    }

    private static long CountRows(IDataView data)
    {
        using var cursor = data.GetRowCursor([]);
        long n = 0;
        while (cursor.MoveNext()) n++;
        return n;
    }

    // Floats made on demand, exactly as ML.NET's pixel extraction makes them (pixel times the model's scale).
    private sealed class ScaledImages(List<byte[]> images, float scale) : IReadOnlyList<float[]>
    {
        public float[] this[int index] => Array.ConvertAll(images[index], b => b * scale);
        public int Count => images.Count;
        public IEnumerator<float[]> GetEnumerator() => Enumerable.Range(0, Count).Select(i => this[i]).GetEnumerator();
        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
