using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using ResNet.Trainer.Models;

namespace ResNet.Trainer.Onnx;

/// <summary>
/// What an exported ResNet ONNX file says about itself (its <c>metadata_props</c>), or what could be read from
/// the graph of a foreign classifier.
/// </summary>
/// <param name="Architecture">Architecture name (e.g. <c>resnet20</c>); empty for a foreign model.</param>
/// <param name="Spec">The full architecture, or null for a classifier not exported by this library.</param>
/// <param name="ClassNames">Class names in output order.</param>
/// <param name="Channels">Input channels.</param>
/// <param name="Height">Input height in pixels.</param>
/// <param name="Width">Input width in pixels.</param>
/// <param name="Normalization">The normalization folded into the graph (inputs are RGB in its <see cref="InputNormalization.Range"/>); a mean image stays in the graph and is not copied here (use <see cref="OnnxImporter"/> for it).</param>
/// <param name="BatchNormFolded">True when the batch norms were folded into the convolutions.</param>
/// <param name="ProducerVersion">Version of the library that wrote the file.</param>
public sealed record OnnxModelInfo(
    string Architecture,
    ResNetSpec? Spec,
    IReadOnlyList<string> ClassNames,
    int Channels,
    int Height,
    int Width,
    InputNormalization Normalization,
    bool BatchNormFolded,
    string ProducerVersion)
{
    /// <summary>Number of classes (outputs of the classifier).</summary>
    public int ClassCount => ClassNames.Count;
}

/// <summary>The <c>metadata_props</c> keys this library writes, and their (de)serialization.</summary>
public static class OnnxMetadataKeys
{
    /// <summary>Architecture name, e.g. <c>resnet50</c>.</summary>
    public const string Architecture = "resnet.architecture";
    /// <summary>The full <see cref="ResNetSpec"/> as JSON.</summary>
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

    internal static string SpecJson(ResNetSpec spec) => JsonSerializer.Serialize(new SpecDto(
        spec.Name, spec.Block.ToString(), [.. spec.StageDepths], [.. spec.StageWidths], spec.Stem.ToString(), spec.StemWidth,
        spec.Shortcut.ToString(), spec.Residual, spec.InputChannels, spec.NumClasses, spec.ZeroInitResidual,
        spec.StridePlacement.ToString(), spec.Padding.ToString()), Json);

    /// <exception cref="UnknownArchitectureException">The JSON names a block, stem, shortcut or padding this library does not know.</exception>
    internal static ResNetSpec ParseSpec(string json, string source)
    {
        SpecDto dto;
        try
        {
            dto = JsonSerializer.Deserialize<SpecDto>(json, Json) ?? throw new JsonException("null");
        }
        catch (JsonException ex)
        {
            throw new OnnxModelFormatException($"{source}: metadata '{Spec}' is not a valid architecture description ({ex.Message}). Re-export the model with this library.", ex);
        }
        T Enum<T>(string value, string field) where T : struct, System.Enum =>
            System.Enum.TryParse<T>(value, ignoreCase: false, out var v) && System.Enum.IsDefined(v) ? v
            : throw new UnknownArchitectureException(
                $"{source}: unknown architecture in metadata: {field} '{value}' is not one of {string.Join(", ", System.Enum.GetNames<T>())}. " +
                "The file was written by another tool or a newer version; import it with a matching version, or re-export it.");
        var spec = new ResNetSpec(dto.Name ?? "", Enum<BlockKind>(dto.Block ?? "", "block"), dto.StageDepths ?? [], dto.StageWidths ?? [],
            Enum<StemKind>(dto.Stem ?? "", "stem"), dto.StemWidth, Enum<ShortcutOption>(dto.Shortcut ?? "", "shortcut"), dto.Residual,
            dto.InputChannels, dto.NumClasses, dto.ZeroInitResidual, Enum<BottleneckStride>(dto.StridePlacement ?? "", "stride placement"),
            Enum<PaddingStyle>(dto.Padding ?? "", "padding"));
        try
        {
            ResNetPlan.Validate(spec);
        }
        catch (ArgumentException ex)
        {
            throw new UnknownArchitectureException($"{source}: unknown architecture in metadata: {ex.Message}");
        }
        return spec;
    }

    internal static string NormalizationJson(InputNormalization n) => JsonSerializer.Serialize(
        new NormalizationDto([.. n.Mean], [.. n.Std], n.NetworkOrder.ToString(), n.MeanImage is not null), Json);

    internal static string Int(int v) => v.ToString(CultureInfo.InvariantCulture);

    internal sealed record SpecDto(string? Name, string? Block, int[]? StageDepths, int[]? StageWidths, string? Stem, int StemWidth,
        string? Shortcut, bool Residual, int InputChannels, int NumClasses, bool ZeroInitResidual, string? StridePlacement, string? Padding);

    internal sealed record NormalizationDto(float[]? Mean, float[]? Std, string? NetworkOrder, bool MeanImage);
}
