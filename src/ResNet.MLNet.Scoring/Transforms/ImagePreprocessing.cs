using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using Microsoft.ML.Transforms.Image;

namespace ResNet.MLNet.Transforms;

/// <summary>The kinds of image column a ResNet transform accepts.</summary>
public enum ImageColumnKind
{
    /// <summary>An <see cref="MLImage"/> column, as made by <c>LoadImages</c>.</summary>
    Image,
    /// <summary>Encoded image bytes (PNG, JPEG, ...), as made by <c>LoadRawImageBytes</c>.</summary>
    EncodedBytes,
    /// <summary>A path to an image file.</summary>
    Path,
}

/// <summary>Thrown when an input column is missing or has the wrong type; the message names the column and the fix.</summary>
public sealed class SchemaMismatchException(string message) : ArgumentException(message);

/// <summary>
/// Turns the user's image column into the model's pixel vector with ML.NET's own image transforms
/// (decode, resize, grayscale, pixel extraction), so a fitted model and a saved-then-loaded model see the same numbers.
/// </summary>
internal static class ImagePreprocessing
{
    internal const string DecodedColumn = "__ResNet_Image";
    internal const string ResizedColumn = "__ResNet_Resized";
    internal const string PixelsColumn = "__ResNet_Pixels";

    /// <summary>Classifies the image column, or explains what is wrong with it.</summary>
    public static ImageColumnKind Classify(DataViewSchema schema, string column)
    {
        var col = schema.GetColumnOrNull(column)
            ?? throw new SchemaMismatchException(
                $"Image column '{column}' was not found in the input (columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}). " +
                "Pass the right name as imageColumnName, or add mlContext.Transforms.LoadImages(...) to the pipeline.");
        return col.Type switch
        {
            ImageDataViewType => ImageColumnKind.Image,
            VectorDataViewType { ItemType: NumberDataViewType n } when n.RawType == typeof(byte) => ImageColumnKind.EncodedBytes,
            TextDataViewType => ImageColumnKind.Path,
            _ => throw new SchemaMismatchException(
                $"Image column '{column}' has type {col.Type}; expected an image (from LoadImages), encoded bytes Vector<Byte> " +
                "(from LoadRawImageBytes), or a String path."),
        };
    }

    /// <summary>The chain from the user's image column to the model's input in <see cref="PixelsColumn"/> (its size, channels and pixel range).</summary>
    public static IEstimator<ITransformer> Build(TransformsCatalog transforms, ImageColumnKind kind, string imageColumn, string? imageFolder, OnnxModelInfo model) =>
        Build(transforms, kind, imageColumn, imageFolder, model.Channels, model.Height, model.Width, model.PixelScale);

    /// <summary>The chain from the user's image column to <see cref="PixelsColumn"/> (float, C x H x W, 0..255 times <paramref name="pixelScale"/>).</summary>
    public static IEstimator<ITransformer> Build(TransformsCatalog transforms, ImageColumnKind kind, string imageColumn, string? imageFolder,
        int channels, int height, int width, float pixelScale)
    {
        IEstimator<ITransformer>? decode = kind switch
        {
            ImageColumnKind.Path => transforms.LoadImages(DecodedColumn, imageFolder, imageColumn),
            ImageColumnKind.EncodedBytes => transforms.CopyColumns(DecodeBytes.InputColumn, imageColumn)
                .Append(transforms.CustomMapping(new DecodeBytes().GetMapping(), DecodeBytes.ContractName)),
            _ => null,
        };
        string source = kind == ImageColumnKind.Image ? imageColumn : DecodedColumn;
        IEstimator<ITransformer> chain = transforms.ResizeImages(ResizedColumn, width, height, source, ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center);
        if (channels == 1)
            chain = chain.Append(transforms.ConvertToGrayscale(ResizedColumn, ResizedColumn));
        chain = chain.Append(transforms.ExtractPixels(PixelsColumn, ResizedColumn,
            channels == 1 ? ImagePixelExtractingEstimator.ColorBits.Red : ImagePixelExtractingEstimator.ColorBits.Rgb,
            ImagePixelExtractingEstimator.ColorsOrder.ARGB, interleavePixelColors: false,
            scaleImage: pixelScale, offsetImage: 0f, outputAsFloatArray: true));
        return decode is null ? chain : decode.Append(chain);
    }

    /// <summary>Columns the preprocessing adds, to drop once scoring is done.</summary>
    public static string[] TemporaryColumns(ImageColumnKind kind) => kind switch
    {
        ImageColumnKind.Image => [ResizedColumn, PixelsColumn],
        ImageColumnKind.EncodedBytes => [DecodeBytes.InputColumn, DecodedColumn, ResizedColumn, PixelsColumn],
        _ => [DecodedColumn, ResizedColumn, PixelsColumn],
    };
}

/// <summary>Input of the registered bytes-to-image mapping.</summary>
public sealed class EncodedImageInput
{
    /// <summary>Encoded image bytes.</summary>
    [ColumnName(DecodeBytes.InputColumn)]
    public VBuffer<byte> Bytes { get; set; }
}

/// <summary>Output of the registered bytes-to-image mapping.</summary>
public sealed class DecodedImageOutput
{
    /// <summary>The decoded image, or null when the bytes are not an image.</summary>
    // A column type needs a size; decoded images vary, and the resize that follows accepts any size.
    [ColumnName(ImagePreprocessing.DecodedColumn), ImageType(1, 1)]
    public MLImage? Image { get; set; }
}

/// <summary>
/// Decodes encoded image bytes into an <see cref="MLImage"/>. Registered under a fixed contract name so models
/// that use it save and load; call <see cref="ResNetMLContextExtensions.RegisterResNet(MLContext)"/> (done by every ResNet catalog method).
/// </summary>
[CustomMappingFactoryAttribute(ContractName)]
public sealed class DecodeBytes : CustomMappingFactory<EncodedImageInput, DecodedImageOutput>
{
    /// <summary>The contract name stored in saved models.</summary>
    public const string ContractName = "ResNet.MLNet.DecodeImageBytes.v1";
    internal const string InputColumn = "__ResNet_Bytes";

    /// <inheritdoc />
    public override Action<EncodedImageInput, DecodedImageOutput> GetMapping() => (input, output) =>
    {
        byte[] bytes = input.Bytes.DenseValues().ToArray();
        using var stream = new MemoryStream(bytes, writable: false);
        try
        {
            output.Image = MLImage.CreateFromStream(stream);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or NotSupportedException)
        {
            throw new InvalidDataException($"Image bytes ({bytes.Length} bytes) could not be decoded: {ex.Message}. Check that the column holds PNG, JPEG, BMP or WebP data.", ex);
        }
    };
}
