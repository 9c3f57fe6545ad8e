namespace ResNet.Scoring.Quantization;

/// <summary>A float model and its quantized copy scored on the same labelled images.</summary>
/// <param name="Count">Images scored.</param>
/// <param name="FloatAccuracy">Top-1 accuracy of the float model.</param>
/// <param name="QuantizedAccuracy">Top-1 accuracy of the quantized model.</param>
/// <param name="Agreement">Share of images on which both models predict the same class.</param>
public sealed record QuantizedModelComparison(int Count, double FloatAccuracy, double QuantizedAccuracy, double Agreement)
{
    /// <summary>Quantized minus float accuracy, in percentage points.</summary>
    public double AccuracyDeltaPoints => (QuantizedAccuracy - FloatAccuracy) * 100;

    /// <summary>
    /// Scores both models on a labelled image folder (one subfolder per class, named as the model's classes) through
    /// <see cref="OnnxScorer"/>. Unreadable images are skipped with a warning through <paramref name="log"/>.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="ArgumentException">A subfolder is not one of the model's classes, or no image could be read.</exception>
    public static QuantizedModelComparison Compare(string floatModel, string quantizedModel, string testFolder, OnnxScorerOptions? scorerOptions = null, Action<string>? log = null)
    {
        using var reference = new OnnxScorer(floatModel, scorerOptions);
        using var quantized = new OnnxScorer(quantizedModel, scorerOptions);
        var (images, labels) = LoadLabelled(testFolder, reference.Info, log);
        int[] a = Predict(reference, images), b = Predict(quantized, images);
        int n = labels.Length;
        return new QuantizedModelComparison(n,
            (double)Enumerable.Range(0, n).Count(i => a[i] == labels[i]) / n,
            (double)Enumerable.Range(0, n).Count(i => b[i] == labels[i]) / n,
            (double)Enumerable.Range(0, n).Count(i => a[i] == b[i]) / n);
    }

    /// <summary>The top-1 class of each image.</summary>
    public static int[] Predict(OnnxScorer scorer, IReadOnlyList<float[]> images)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        var result = scorer.Score(images);
        return Enumerable.Range(0, result.Count).Select(result.ArgMax).ToArray();
    }

    /// <summary>Reads a folder of class subfolders as the model's input tensors and class indices.</summary>
    public static (List<float[]> Images, int[] Labels) LoadLabelled(string folder, OnnxModelInfo model, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(model);
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Test folder '{folder}' does not exist. Pass a folder with one subfolder of images per class.");
        var images = new List<float[]>();
        var labels = new List<int>();
        foreach (string dir in Directory.EnumerateDirectories(folder).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(dir);
            int label = model.ClassNames.ToList().IndexOf(name);
            if (label < 0)
                throw new ArgumentException($"Test folder '{folder}' has a subfolder '{name}', which is not one of the model's classes [{string.Join(", ", model.ClassNames)}]. Name the subfolders after the classes.", nameof(folder));
            foreach (string file in ImageTensors.FindImages([dir]))
            {
                try
                {
                    images.Add(ImageTensors.Load(file, model));
                    labels.Add(label);
                }
                catch (CorruptDataException ex)
                {
                    log?.Invoke($"warning: test image skipped: {ex.Message}");
                }
            }
        }
        if (images.Count == 0)
            throw new ArgumentException($"Test folder '{folder}' holds no readable images in class subfolders. Pass a folder with one subfolder of images per class.", nameof(folder));
        return (images, [.. labels]);
    }
}
