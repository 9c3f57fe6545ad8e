using System.Text.Json;
using System.Text.Json.Serialization;

namespace ResNet.Trainer.Models;

/// <summary>
/// The one JSON form of a <see cref="ResNetSpec"/>: model cards (<c>model.json</c>), checkpoints and ONNX metadata
/// all write and read it through here. Fields are the record's, enums by name; reading checks every enum and the
/// plan, so a file from another tool or a newer version is refused with the reason.
/// </summary>
public static class ResNetSpecJson
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = false };

    /// <summary>Serialises <paramref name="spec"/>.</summary>
    public static string ToJson(ResNetSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return JsonSerializer.Serialize(ToDto(spec), Options);
    }

    /// <summary>Reads what <see cref="ToJson"/> wrote; <paramref name="source"/> names the file in messages.</summary>
    /// <exception cref="OnnxModelFormatException">The text is not an architecture description.</exception>
    /// <exception cref="UnknownArchitectureException">It names a block, stem, shortcut or padding this library does not know, or an impossible layout.</exception>
    public static ResNetSpec Parse(string json, string source)
    {
        Dto dto;
        try
        {
            dto = JsonSerializer.Deserialize<Dto>(json, Options) ?? throw new JsonException("null");
        }
        catch (JsonException ex)
        {
            throw new OnnxModelFormatException($"{source}: the architecture description is not valid JSON ({ex.Message}). Export or save the model again with this library.", ex);
        }
        return FromDto(dto, source);
    }

    private static Dto ToDto(ResNetSpec s) => new(s.Name, s.Block.ToString(), [.. s.StageDepths], [.. s.StageWidths], s.Stem.ToString(), s.StemWidth,
        s.Shortcut.ToString(), s.Residual, s.InputChannels, s.NumClasses, s.ZeroInitResidual, s.StridePlacement.ToString(), s.Padding.ToString());

    private static ResNetSpec FromDto(Dto dto, string source)
    {
        T Enum<T>(string? value, string field) where T : struct, System.Enum =>
            System.Enum.TryParse<T>(value ?? "", ignoreCase: false, out var v) && System.Enum.IsDefined(v) ? v
            : throw new UnknownArchitectureException(
                $"{source}: unknown architecture: {field} '{value}' is not one of {string.Join(", ", System.Enum.GetNames<T>())}. " +
                "The file was written by another tool or a newer version; read it with a matching version, or export it again.");
        var spec = new ResNetSpec(dto.Name ?? "", Enum<BlockKind>(dto.Block, "block"), dto.StageDepths ?? [], dto.StageWidths ?? [],
            Enum<StemKind>(dto.Stem, "stem"), dto.StemWidth, Enum<ShortcutOption>(dto.Shortcut, "shortcut"), dto.Residual,
            dto.InputChannels, dto.NumClasses, dto.ZeroInitResidual, Enum<BottleneckStride>(dto.StridePlacement, "stride placement"),
            Enum<PaddingStyle>(dto.Padding, "padding"));
        try
        {
            ResNetPlan.Validate(spec);
        }
        catch (ArgumentException ex)
        {
            throw new UnknownArchitectureException($"{source}: unknown architecture: {ex.Message}");
        }
        return spec;
    }

    private sealed record Dto(string? Name, string? Block, int[]? StageDepths, int[]? StageWidths, string? Stem, int StemWidth,
        string? Shortcut, bool Residual, int InputChannels, int NumClasses, bool ZeroInitResidual, string? StridePlacement, string? Padding);

    /// <summary>Makes <see cref="System.Text.Json"/> use this form wherever a <see cref="ResNetSpec"/> is a property (model cards, checkpoints).</summary>
    internal sealed class Converter : JsonConverter<ResNetSpec>
    {
        public override ResNetSpec Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            var dto = JsonSerializer.Deserialize<Dto>(ref reader, Options) ?? throw new JsonException("The architecture description is null.");
            return FromDto(dto, "model card");
        }

        public override void Write(Utf8JsonWriter writer, ResNetSpec value, JsonSerializerOptions options) =>
            JsonSerializer.Serialize(writer, ToDto(value), Options);
    }
}
