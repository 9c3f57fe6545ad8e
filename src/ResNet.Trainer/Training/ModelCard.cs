using System.Text.Json;
using System.Text.Json.Serialization;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;

namespace ResNet.Trainer.Training;

/// <summary>
/// The trainer's description of a network it trained, in the trainer's terms (spec, 0..1 normalization, augmentation):
/// what scoring or exporting the TorchSharp weights needs besides them, saved as JSON beside them (<c>model.dat</c> +
/// <c>model.json</c>). Once exported, the ONNX file's own metadata (<see cref="ResNet.Scoring.OnnxModelInfo"/>) takes over.
/// </summary>
/// <param name="Spec">The architecture.</param>
/// <param name="ClassNames">Label names, index = class.</param>
/// <param name="ImageHeight">Input height the model was trained on.</param>
/// <param name="ImageWidth">Input width.</param>
/// <param name="Normalization">Applied to 0..1 pixel values before the network.</param>
/// <param name="Augmentation">Training augmentation (its evaluation transform is the test-time preprocessing).</param>
public sealed record ModelCard(ResNetSpec Spec, IReadOnlyList<string> ClassNames, int ImageHeight, int ImageWidth, Normalization Normalization, Augmentation Augmentation)
{
    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>Set when the weights are those of a run stopped early (Ctrl-C, SIGTERM, a cancelled token): the iteration they were taken at.</summary>
    public long? InterruptedAtIteration { get; init; }

    /// <summary>The evaluation pipeline that prepares images for this model.</summary>
    public ImagePipeline Pipeline => new(Spec.InputChannels, ImageHeight, ImageWidth, Normalization, Augmentation);

    /// <summary>Serialises to JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads what <see cref="ToJson"/> wrote.</summary>
    public static ModelCard FromJson(string json) =>
        JsonSerializer.Deserialize<ModelCard>(json, Json) ?? throw new InvalidDataException("The model card is empty.");

    /// <summary>The card's path for a weights file: <c>model.dat</c> -> <c>model.json</c>.</summary>
    public static string PathFor(string weightsPath) => Path.ChangeExtension(weightsPath, ".json");

    /// <summary>Saves weights (format by extension, atomic) and the card beside them.</summary>
    public void Save(Models.ResNetModel model, string weightsPath)
    {
        ResNetWeights.Save(model, weightsPath);
        AtomicFile.WriteAllText(PathFor(weightsPath), ToJson());
    }

    /// <summary>Loads a model saved with <see cref="Save"/>.</summary>
    /// <exception cref="FileNotFoundException">The weights or the card is missing.</exception>
    public static (Models.ResNetModel Model, ModelCard Card) Load(string weightsPath)
    {
        string cardPath = PathFor(weightsPath);
        if (!File.Exists(weightsPath))
            throw new FileNotFoundException($"Model file '{weightsPath}' does not exist. Train one with 'resnet train' or 'resnet demo'.", weightsPath);
        if (!File.Exists(cardPath))
            throw new FileNotFoundException($"Model '{weightsPath}' has no card '{cardPath}' (architecture, classes, normalization). Training writes the two side by side: copy the card from the same run.", cardPath);
        ModelCard card;
        try { card = FromJson(File.ReadAllText(cardPath)); }
        catch (JsonException ex) { throw new InvalidDataException($"Model card '{cardPath}' is not valid JSON ({ex.Message}). Restore it from the run that wrote '{weightsPath}'.", ex); }
        if (card.Spec is null || card.ClassNames is null || card.Normalization is null || card.ImageHeight < 1 || card.ImageWidth < 1 || card.ClassNames.Count != card.Spec.NumClasses)
            throw new InvalidDataException($"Model card '{cardPath}' lacks the architecture, class names, normalization or image size, or they disagree. Restore it from the run that wrote '{weightsPath}'.");
        var model = new Models.ResNetModel(card.Spec);
        try
        {
            ResNetWeights.Load(model, weightsPath);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return (model, card);
    }
}
