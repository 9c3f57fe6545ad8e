using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using Microsoft.ML.Transforms.Image;
using ResNet.Scoring;

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
    internal const string ToCropColumn = "__ResNet_ToCrop";

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

    /// <summary>The chain from the user's image column to the model's input in <see cref="PixelsColumn"/> (its size, channels and pixel range, and its recorded resize and crop).</summary>
    /// <exception cref="SchemaMismatchException">The model records a resize and crop and the column holds decoded images.</exception>
    public static IEstimator<ITransformer> Build(TransformsCatalog transforms, ImageColumnKind kind, string imageColumn, string? imageFolder, OnnxModelInfo model) =>
        Build(transforms, kind, imageColumn, imageFolder, model.Channels, model.Height, model.Width, model.PixelScale, model.Preprocessing);

    /// <summary>
    /// The chain from the user's image column to <see cref="PixelsColumn"/> (float, C x H x W, 0..255 times <paramref name="pixelScale"/>):
    /// with <paramref name="preprocessing"/>, that resize and centre crop of the original image (as <see cref="OnnxScorer.ScoreFiles"/>
    /// applies it); else ML.NET's resize to <paramref name="width"/> x <paramref name="height"/>.
    /// </summary>
    /// <exception cref="SchemaMismatchException">A resize and crop is given and the column holds decoded images.</exception>
    public static IEstimator<ITransformer> Build(TransformsCatalog transforms, ImageColumnKind kind, string imageColumn, string? imageFolder,
        int channels, int height, int width, float pixelScale, ResizeCrop? preprocessing = null)
    {
        IEstimator<ITransformer> chain;
        if (preprocessing is { } prep)
        {
            // The model's recorded resize and crop (PIL's antialiased bilinear) on the file's own pixels, decoded by the
            // decoder OnnxScorer uses: the same numbers as OnnxScorer.ScoreFiles.
            RequireOriginal(kind, imageColumn, prep);
            chain = kind == ImageColumnKind.Path
                ? transforms.LoadRawImageBytes(ToCropColumn, imageFolder, imageColumn)
                : transforms.CopyColumns(ToCropColumn, imageColumn);
            var crop = ResizeCropImages.For(prep);
            chain = chain.Append(transforms.CustomMapping(crop.GetMapping(), ResizeCropImages.ContractOf(prep)));
        }
        else
        {
            IEstimator<ITransformer>? decode = kind switch
            {
                ImageColumnKind.Path => transforms.LoadImages(DecodedColumn, imageFolder, imageColumn),
                ImageColumnKind.EncodedBytes => transforms.CopyColumns(DecodeBytes.InputColumn, imageColumn)
                    .Append(transforms.CustomMapping(new DecodeBytes().GetMapping(), DecodeBytes.ContractName)),
                _ => null,
            };
            string source = kind == ImageColumnKind.Image ? imageColumn : DecodedColumn;
            var resize = transforms.ResizeImages(ResizedColumn, width, height, source, ImageResizingEstimator.ResizingKind.IsoCrop, ImageResizingEstimator.Anchor.Center);
            chain = decode is null ? resize : decode.Append(resize);
        }
        if (channels == 1)
            chain = chain.Append(transforms.ConvertToGrayscale(ResizedColumn, ResizedColumn));
        return chain.Append(transforms.ExtractPixels(PixelsColumn, ResizedColumn,
            channels == 1 ? ImagePixelExtractingEstimator.ColorBits.Red : ImagePixelExtractingEstimator.ColorBits.Rgb,
            ImagePixelExtractingEstimator.ColorsOrder.ARGB, interleavePixelColors: false,
            scaleImage: pixelScale, offsetImage: 0f, outputAsFloatArray: true));
    }

    /// <summary>A recorded resize and crop works on the original image: refuses a column of decoded images.</summary>
    /// <exception cref="SchemaMismatchException">The column holds decoded images; the message says what to pass instead.</exception>
    public static void RequireOriginal(ImageColumnKind kind, string imageColumn, ResizeCrop preprocessing)
    {
        if (kind == ImageColumnKind.Image)
            throw new SchemaMismatchException(
                $"Image column '{imageColumn}' holds decoded images, but this model resizes and crops the original image as its pretrained " +
                $"weights expect (shorter side to {preprocessing.ResizeSize}, centre {preprocessing.CropSize}). Pass the image paths, or the encoded bytes from " +
                "mlContext.Transforms.LoadRawImageBytes, as the image column instead of LoadImages' output.");
    }

    /// <summary>Columns the preprocessing adds, to drop once scoring is done.</summary>
    public static string[] TemporaryColumns(ImageColumnKind kind, OnnxModelInfo info) => TemporaryColumns(kind, info.Preprocessing);

    /// <summary>Columns the preprocessing adds for a column kind and a resize and crop (or none).</summary>
    public static string[] TemporaryColumns(ImageColumnKind kind, ResizeCrop? preprocessing) => (kind, preprocessing) switch
    {
        (_, not null) => [ToCropColumn, ResizedColumn, PixelsColumn],
        (ImageColumnKind.Image, _) => [ResizedColumn, PixelsColumn],
        (ImageColumnKind.EncodedBytes, _) => [DecodeBytes.InputColumn, DecodedColumn, ResizedColumn, PixelsColumn],
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

/// <summary>Input of the registered resize-and-crop mappings.</summary>
public sealed class ImageToCrop
{
    /// <summary>The encoded image (PNG, JPEG, ...), any size.</summary>
    [ColumnName(ImagePreprocessing.ToCropColumn)]
    public VBuffer<byte> Bytes { get; set; }
}

/// <summary>Output of the registered resize-and-crop mappings: a 224 x 224 image (the crop of every catalog network).</summary>
public sealed class CroppedImage
{
    /// <summary>The centre crop after the resize.</summary>
    [ColumnName(ImagePreprocessing.ResizedColumn), ImageType(ResizeCropImages.CropSize, ResizeCropImages.CropSize)]
    public MLImage? Image { get; set; }
}

/// <summary>
/// A model's recorded resize and centre crop (<see cref="OnnxModelInfo.Preprocessing"/>) as a registered ML.NET mapping, so
/// fitted and saved-then-loaded transformers give the pixels <see cref="OnnxScorer.ScoreFiles"/> gives. A saved mapping is
/// found by contract name alone, so there is one per geometry: the pretrained catalog's (shorter side to 256 or 232, centre 224).
/// </summary>
public abstract class ResizeCropImages : CustomMappingFactory<ImageToCrop, CroppedImage>
{
    internal const int CropSize = 224;

    private protected abstract int ResizeSize { get; }

    /// <summary>The geometries ML.NET pipelines can apply (the pretrained catalog's).</summary>
    public static IReadOnlyList<ResizeCrop> Supported { get; } = [new(256, CropSize), new(232, CropSize)];

    internal static string ContractOf(ResizeCrop geometry) =>
        System.Reflection.CustomAttributeExtensions.GetCustomAttribute<CustomMappingFactoryAttributeAttribute>(For(geometry).GetType())!.ContractName;

    /// <summary>The registered mapping for <paramref name="geometry"/>.</summary>
    /// <exception cref="NotSupportedException">No mapping is registered for it; the message lists those there are.</exception>
    internal static ResizeCropImages For(ResizeCrop geometry) => (geometry.ResizeSize, geometry.CropSize) switch
    {
        (256, CropSize) => new Resize256Crop224(),
        (232, CropSize) => new Resize232Crop224(),
        _ => throw new NotSupportedException(
            $"The model resizes to {geometry.ResizeSize} and crops {geometry.CropSize}; ML.NET pipelines apply the pretrained catalog's geometries " +
            $"({string.Join(", ", Supported.Select(g => $"resize {g.ResizeSize}, crop {g.CropSize}"))}). Score this model with OnnxScorer.ScoreFiles, which applies any."),
    };

    /// <inheritdoc />
    public override Action<ImageToCrop, CroppedImage> GetMapping()
    {
        var geometry = new ResizeCrop(ResizeSize, CropSize);
        return (input, output) =>
        {
            byte[] bytes = input.Bytes.DenseValues().ToArray();
            RawImage crop;
            try
            {
                crop = geometry.Apply(ImageDecoder.Decode(bytes, $"image of {bytes.Length} bytes", 3));
            }
            catch (CorruptDataException ex)
            {
                throw new InvalidDataException($"{ex.Message} Check that the image column holds PNG, JPEG, BMP or WebP data.", ex);
            }
            var rgba = new byte[crop.Width * crop.Height * 4];
            for (int i = 0; i < crop.Width * crop.Height; i++)
            {
                rgba[4 * i] = crop.Pixels[3 * i];
                rgba[4 * i + 1] = crop.Pixels[3 * i + 1];
                rgba[4 * i + 2] = crop.Pixels[3 * i + 2];
                rgba[4 * i + 3] = 255;
            }
            output.Image = MLImage.CreateFromPixels(crop.Width, crop.Height, MLPixelFormat.Rgba32, rgba);
        };
    }
}

/// <summary>Shorter side to 256, centre 224 (torchvision's IMAGENET1K_V1 weights).</summary>
[CustomMappingFactoryAttribute("ResNet.MLNet.ResizeCrop.256x224.v1")]
public sealed class Resize256Crop224 : ResizeCropImages
{
    private protected override int ResizeSize => 256;
}

/// <summary>Shorter side to 232, centre 224 (torchvision's IMAGENET1K_V2 weights).</summary>
[CustomMappingFactoryAttribute("ResNet.MLNet.ResizeCrop.232x224.v1")]
public sealed class Resize232Crop224 : ResizeCropImages
{
    private protected override int ResizeSize => 232;
}
