using System.Globalization;
using System.Text;
using ResNet.Scoring;

namespace ResNet.Serving;

/// <summary>
/// Writes a Triton Inference Server model repository for the ONNX Runtime backend: <c>&lt;name&gt;/config.pbtxt</c>,
/// <c>&lt;name&gt;/1/model.onnx</c> and <c>&lt;name&gt;/labels.txt</c> (the class names, which Triton's classification
/// extension reads from the label file, not from ONNX metadata).
/// </summary>
public static class TritonRepository
{
    /// <summary>Name of the label file beside config.pbtxt.</summary>
    public const string LabelFile = "labels.txt";

    /// <summary>The model name Triton will serve a file under: its file name without extension, made safe for a folder name.</summary>
    public static string ModelName(string onnxPath)
    {
        var name = Path.GetFileNameWithoutExtension(onnxPath);
        var safe = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
        return safe.Length == 0 ? "model" : safe;
    }

    /// <summary>
    /// Adds the model at <paramref name="onnxPath"/> to the repository at <paramref name="repository"/> (created if needed)
    /// and returns the model's folder.
    /// </summary>
    /// <param name="repository">The repository root (Triton's <c>--model-repository</c>).</param>
    /// <param name="onnxPath">An ONNX classifier exported by <c>resnet export</c>.</param>
    /// <param name="maxBatchSize">Triton's max_batch_size: the largest batch its dynamic batcher forms.</param>
    /// <param name="name">Model name (default: from the file name).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxBatchSize"/> is below 1.</exception>
    public static string Write(string repository, string onnxPath, int maxBatchSize = 32, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(repository);
        if (maxBatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(maxBatchSize), maxBatchSize, "max_batch_size must be at least 1: the exported model has a dynamic batch dimension.");
        using var scorer = new OnnxScorer(onnxPath);
        name ??= ModelName(onnxPath);
        string dir = Path.Combine(repository, name);
        Directory.CreateDirectory(Path.Combine(dir, "1"));
        File.Copy(onnxPath, Path.Combine(dir, "1", "model.onnx"), overwrite: true);
        File.WriteAllLines(Path.Combine(dir, LabelFile), scorer.Info.ClassNames);
        File.WriteAllText(Path.Combine(dir, "config.pbtxt"), Config(name, scorer, maxBatchSize));
        return dir;
    }

    /// <summary>The config.pbtxt text for a scorer's model (dims without the batch dimension, as Triton requires when max_batch_size &gt; 0).</summary>
    public static string Config(string name, OnnxScorer scorer, int maxBatchSize)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"name: \"{name}\"\n");
        sb.Append("platform: \"onnxruntime_onnx\"\n");
        sb.Append(inv, $"max_batch_size: {maxBatchSize}\n");
        sb.Append("input [\n");
        sb.Append(inv, $"  {{\n    name: \"{scorer.InputName}\"\n    data_type: TYPE_FP32\n    dims: [ {scorer.Info.Channels}, {scorer.Info.Height}, {scorer.Info.Width} ]\n  }}\n");
        sb.Append("]\n");
        // Every output the model has: the scores and features, and the last-stage activations (for class-activation maps).
        var outputs = ModelOutputs.Of(scorer)
            .Select(o => (o.Name, Dims: o.Length.ToString(inv), Labels: o.IsClassScores))
            .ToList();
        if (scorer.ActivationsName is { } activations)
        {
            var a = scorer.ActivationShape;
            outputs.Add((activations, string.Create(inv, $"{a.Channels}, {a.Height}, {a.Width}"), false));
        }
        sb.Append("output [\n");
        for (int i = 0; i < outputs.Count; i++)
        {
            var o = outputs[i];
            sb.Append(inv, $"  {{\n    name: \"{o.Name}\"\n    data_type: TYPE_FP32\n    dims: [ {o.Dims} ]\n");
            if (o.Labels) sb.Append(inv, $"    label_filename: \"{LabelFile}\"\n");
            sb.Append(i == outputs.Count - 1 ? "  }\n" : "  },\n");
        }
        sb.Append("]\n");
        sb.Append("dynamic_batching { }\n");
        return sb.ToString();
    }
}

/// <summary>Which of a scorer's results an output holds.</summary>
internal enum OutputKind { Logits, Probabilities, Features }

/// <summary>One float output of a served model.</summary>
/// <param name="Name">Graph output name.</param>
/// <param name="Length">Values per image.</param>
/// <param name="Kind">Which result it holds.</param>
internal sealed record ModelOutput(string Name, int Length, OutputKind Kind)
{
    /// <summary>True for outputs with one value per class (the classification extension applies).</summary>
    public bool IsClassScores => Kind != OutputKind.Features;

    /// <summary>This output's values in a result, [Count, Length].</summary>
    public float[] Values(ScoreResult r) => Kind switch
    {
        OutputKind.Logits => r.Logits,
        OutputKind.Probabilities => r.Probabilities,
        _ => r.Features!,
    };
}

internal static class ModelOutputs
{
    /// <summary>The scorer's outputs: logits, probabilities, features (those present).</summary>
    public static IReadOnlyList<ModelOutput> Of(OnnxScorer s)
    {
        var list = new List<ModelOutput>();
        if (s.LogitsName is { } l) list.Add(new ModelOutput(l, s.Info.ClassCount, OutputKind.Logits));
        if (s.ProbabilitiesName is { } p) list.Add(new ModelOutput(p, s.Info.ClassCount, OutputKind.Probabilities));
        if (s.FeaturesName is { } f) list.Add(new ModelOutput(f, s.FeatureCount, OutputKind.Features));
        return list;
    }
}
