using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ResNet.Scoring;

/// <summary>The names of the graph's inputs and outputs that this library's exporter writes and its scorers look for.</summary>
public static class OnnxNames
{
    /// <summary>The graph input: float [N, C, H, W], RGB pixels in the range stated in metadata.</summary>
    public const string Input = "input";
    /// <summary>The logits output: float [N, classes].</summary>
    public const string LogitsOutput = "logits";
    /// <summary>The softmax output: float [N, classes].</summary>
    public const string ProbabilitiesOutput = "probabilities";
    /// <summary>The pooled-features output: float [N, features].</summary>
    public const string FeaturesOutput = "features";
    /// <summary>The optional predicted-class output: uint32 [N], the argmax of the probabilities.</summary>
    public const string PredictedIndexOutput = "predicted_index";
    /// <summary>
    /// The optional last-stage activation output: float [N, C, h, w], the last residual stage's output before global average
    /// pooling. With the classifier's weights it gives class-activation maps (<see cref="OnnxScorer.ClassActivationMap"/>).
    /// </summary>
    public const string ActivationsOutput = "activations";
    /// <summary>The initializer holding the mean image, when the normalization has one.</summary>
    public const string MeanImageInitializer = "input.mean_image";
}

/// <summary>
/// What an ONNX model says about itself: the description every scoring component shares (<see cref="OnnxScorer.Info"/>,
/// the ML.NET transformers' <c>ModelInfo</c>, the importer's <c>ImportedModel.Info</c>). It comes from the
/// <c>metadata_props</c> this library's exporter writes, or from the graph of a foreign classifier;
/// <see cref="FromMetadata"/> is the one reader of those keys.
/// </summary>
/// <param name="Architecture">Architecture name (e.g. <c>resnet20</c>); empty for a foreign model.</param>
/// <param name="SpecJson">The full architecture description as the exporter wrote it (JSON), or null for a foreign model; the trainer's <c>ResNetSpecJson.Parse</c> reads it.</param>
/// <param name="ClassNames">Class names in output order.</param>
/// <param name="Channels">Input channels.</param>
/// <param name="Height">Input height in pixels.</param>
/// <param name="Width">Input width in pixels.</param>
/// <param name="Normalization">The normalization folded into the graph (inputs are RGB in its <see cref="InputNormalization.Range"/>); its mean image is filled in only when the reader was given the graph's initializers.</param>
/// <param name="BatchNormFolded">True when the batch norms were folded into the convolutions.</param>
/// <param name="ProducerVersion">Version of the library that wrote the file.</param>
/// <param name="Preprocessing">
/// The resize and centre crop the scorers apply to an image of any size before it enters the graph (a pretrained network's
/// evaluation transform, e.g. shorter side to 256, centre 224); null when images are stretched to <paramref name="Width"/> x <paramref name="Height"/>.
/// </param>
public sealed record OnnxModelInfo(
    string Architecture,
    string? SpecJson,
    IReadOnlyList<string> ClassNames,
    int Channels,
    int Height,
    int Width,
    InputNormalization Normalization,
    bool BatchNormFolded,
    string ProducerVersion,
    ResizeCrop? Preprocessing = null)
{
    /// <summary>Number of classes (outputs of the classifier).</summary>
    public int ClassCount => ClassNames.Count;

    /// <summary>Floats per image: channels x height x width.</summary>
    public int PixelCount => Channels * Height * Width;

    /// <summary>The factor that takes 0..255 pixel values to the input's range: 1, or 1/255 for 0..1 inputs.</summary>
    public float PixelScale => Normalization.Range == PixelRange.ZeroTo255 ? 1f : 1f / 255f;

    /// <summary>
    /// Reads a model's metadata. The scorer and the importer both call this, so both accept and refuse the same files.
    /// </summary>
    /// <param name="metadata">The model's <c>metadata_props</c>.</param>
    /// <param name="channels">Input channels, from the graph.</param>
    /// <param name="height">Input height, from the graph.</param>
    /// <param name="width">Input width, from the graph.</param>
    /// <param name="classes">Classes the graph outputs.</param>
    /// <param name="source">Names the model in messages.</param>
    /// <param name="meanImage">Reads the mean-image initializer when the metadata says there is one; null leaves it out.</param>
    /// <exception cref="OnnxModelFormatException">A value is malformed.</exception>
    /// <exception cref="ClassCountMismatchException">The class names do not match the graph's outputs.</exception>
    public static OnnxModelInfo FromMetadata(IReadOnlyDictionary<string, string> metadata, int channels, int height, int width, int classes,
        string source, Func<float[]>? meanImage = null)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        string Get(string key) => metadata.TryGetValue(key, out var v) ? v : "";
        metadata.TryGetValue(OnnxMetadataKeys.Spec, out var specJson);

        IReadOnlyList<string> names;
        if (metadata.TryGetValue(OnnxMetadataKeys.ClassNames, out var namesJson))
        {
            try { names = JsonSerializer.Deserialize<string[]>(namesJson, OnnxMetadataKeys.Json) ?? throw new JsonException("null"); }
            catch (JsonException ex) { throw new OnnxModelFormatException($"{source}: metadata '{OnnxMetadataKeys.ClassNames}' is not a JSON array of strings ({ex.Message}). Export the model again.", ex); }
            if (names.Count != classes)
                throw new ClassCountMismatchException($"{source} lists {names.Count} class names in its metadata but outputs {classes} classes. Export the model again with one name per class.");
        }
        else
        {
            names = Enumerable.Range(0, classes).Select(OnnxMetadataKeys.Int).ToArray();
        }

        var range = metadata.TryGetValue(OnnxMetadataKeys.InputRange, out var r) ? OnnxMetadataKeys.ParseRange(r, source) : PixelRange.ZeroToOne;
        var norm = InputNormalization.Identity(channels) with { Range = range };
        if (metadata.TryGetValue(OnnxMetadataKeys.Normalization, out var normJson))
        {
            OnnxMetadataKeys.NormalizationDto? dto;
            try { dto = JsonSerializer.Deserialize<OnnxMetadataKeys.NormalizationDto>(normJson, OnnxMetadataKeys.Json); }
            catch (JsonException ex) { throw new OnnxModelFormatException($"{source}: metadata '{OnnxMetadataKeys.Normalization}' is not valid ({ex.Message}). Export the model again.", ex); }
            if (dto?.Mean is null || dto.Std is null)
                throw new OnnxModelFormatException($"{source}: metadata '{OnnxMetadataKeys.Normalization}' has no mean or std. Export the model again.");
            var order = dto.NetworkOrder == nameof(ChannelOrder.Bgr) ? ChannelOrder.Bgr : ChannelOrder.Rgb;
            norm = new InputNormalization(range, dto.Mean, dto.Std, order, dto.MeanImage ? meanImage?.Invoke() : null);
        }
        ResizeCrop? preprocessing = null;
        if (metadata.TryGetValue(OnnxMetadataKeys.Preprocessing, out var prepJson))
            preprocessing = OnnxMetadataKeys.ParsePreprocessing(prepJson, height, width, source);
        return new OnnxModelInfo(Get(OnnxMetadataKeys.Architecture), specJson, names, channels, height, width, norm,
            Get(OnnxMetadataKeys.BatchNormFolded) == "true", Get(OnnxMetadataKeys.ProducerVersion), preprocessing);
    }
}

/// <summary>The <c>metadata_props</c> keys this library writes, and the (de)serialization of their values.</summary>
public static class OnnxMetadataKeys
{
    /// <summary>Architecture name, e.g. <c>resnet50</c>.</summary>
    public const string Architecture = "resnet.architecture";
    /// <summary>The full architecture description as JSON.</summary>
    public const string Spec = "resnet.spec";
    /// <summary>Class names in output order, as a JSON array of strings.</summary>
    public const string ClassNames = "resnet.class_names";
    /// <summary>Input channels (1 or 3).</summary>
    public const string InputChannels = "resnet.input_channels";
    /// <summary>Input height in pixels.</summary>
    public const string InputHeight = "resnet.input_height";
    /// <summary>Input width in pixels.</summary>
    public const string InputWidth = "resnet.input_width";
    /// <summary>Input pixel range: <c>0..1</c> or <c>0..255</c>.</summary>
    public const string InputRange = "resnet.input_range";
    /// <summary>Input channel order; always <c>RGB</c> (any reordering the network needs is inside the graph).</summary>
    public const string InputChannelOrder = "resnet.input_channel_order";
    /// <summary>The normalization folded into the graph, as JSON (mean, std, network channel order, whether a mean image is used).</summary>
    public const string Normalization = "resnet.normalization";
    /// <summary><c>true</c> when batch norms were folded into the convolutions.</summary>
    public const string BatchNormFolded = "resnet.batchnorm_folded";
    /// <summary>The graph's outputs, comma separated.</summary>
    public const string Outputs = "resnet.outputs";
    /// <summary>Version of ResNet.MLNet that wrote the file.</summary>
    public const string ProducerVersion = "resnet.producer_version";
    /// <summary><c>flip</c> when the graph scores each image and its horizontal mirror and averages them (flip test-time augmentation); absent otherwise.</summary>
    public const string TestTimeAugmentation = "resnet.test_time_augmentation";
    /// <summary>
    /// The resize and centre crop applied before the graph, as JSON: <c>{"Resize":256,"Crop":224,"Interpolation":"BilinearAntialias"}</c>
    /// (shorter side to Resize with PIL's antialiased bilinear filter, centre Crop square). Absent: images are stretched to the input size.
    /// </summary>
    public const string Preprocessing = "resnet.preprocessing";

    /// <summary>The one interpolation <see cref="Preprocessing"/> names: PIL's bilinear filter, antialiased when it shrinks.</summary>
    public const string BilinearAntialias = "BilinearAntialias";

    internal static readonly JsonSerializerOptions Json = new()
    {
        Converters = { new JsonStringEnumConverter() },
        WriteIndented = false,
    };

    internal static string RangeText(PixelRange r) => r == PixelRange.ZeroTo255 ? "0..255" : "0..1";

    internal static PixelRange ParseRange(string text, string source) => text switch
    {
        "0..255" => PixelRange.ZeroTo255,
        "0..1" => PixelRange.ZeroToOne,
        _ => throw new OnnxModelFormatException($"{source}: metadata '{InputRange}' is '{text}'; expected '0..1' or '0..255'."),
    };

    internal static string NormalizationJson(InputNormalization n) => JsonSerializer.Serialize(
        new NormalizationDto([.. n.Mean], [.. n.Std], n.NetworkOrder.ToString(), n.MeanImage is not null), Json);

    internal static string ClassNamesJson(IEnumerable<string> names) => JsonSerializer.Serialize(names, Json);

    internal static string Int(int v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>The value of <see cref="Preprocessing"/> for a resize and crop.</summary>
    public static string PreprocessingJson(ResizeCrop resizeCrop)
    {
        ArgumentNullException.ThrowIfNull(resizeCrop);
        return JsonSerializer.Serialize(new PreprocessingDto(resizeCrop.ResizeSize, resizeCrop.CropSize, BilinearAntialias), Json);
    }

    internal static ResizeCrop ParsePreprocessing(string json, int height, int width, string source)
    {
        PreprocessingDto? dto;
        try { dto = JsonSerializer.Deserialize<PreprocessingDto>(json, Json); }
        catch (JsonException ex) { throw new OnnxModelFormatException($"{source}: metadata '{Preprocessing}' is not valid ({ex.Message}). Export the model again.", ex); }
        if (dto is null || dto.Interpolation != BilinearAntialias)
            throw new OnnxModelFormatException($"{source}: metadata '{Preprocessing}' is '{json}'; expected an interpolation of '{BilinearAntialias}'. Export the model again with this version.");
        var resizeCrop = new ResizeCrop(dto.Resize, dto.Crop);
        if (dto.Crop <= 0 || dto.Resize < dto.Crop || dto.Crop != height || dto.Crop != width)
            throw new OnnxModelFormatException(
                $"{source}: metadata '{Preprocessing}' resizes to {dto.Resize} and crops {dto.Crop}, but the graph takes {width}x{height} images; " +
                "the crop must be no larger than the resize and equal the input size. Export the model again.");
        return resizeCrop;
    }

    internal sealed record PreprocessingDto(int Resize, int Crop, string? Interpolation);

    internal sealed record NormalizationDto(float[]? Mean, float[]? Std, string? NetworkOrder, bool MeanImage);
}
