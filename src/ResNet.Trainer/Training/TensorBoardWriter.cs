using System.Text;
using TorchSharp.Modules;
using static TorchSharp.torch.utils;

namespace ResNet.Trainer.Training;

/// <summary>
/// Writes a run's progress as TensorBoard scalars (through TorchSharp's <c>SummaryWriter</c>, so PyTorch users watch a run
/// as they are used to): per iteration event <c>train/loss</c>, <c>train/error</c>, <c>train/learning_rate</c>,
/// <c>train/images_per_second</c> (step = iteration); per epoch <c>epoch/loss</c>, <c>epoch/train_error</c>,
/// <c>epoch/learning_rate</c>, <c>epoch/images_per_second</c> and, when validated, <c>epoch/validation_error</c> and
/// <c>epoch/validation_loss</c> (step = epoch); and at the end the confusion matrix as a text summary.
/// </summary>
public sealed class TensorBoardWriter : IProgress<TrainingProgress>
{
    private readonly SummaryWriter _writer;

    /// <summary>Opens an event file in <paramref name="folder"/> (created when missing).</summary>
    /// <param name="folder">The log folder, as TensorBoard's <c>--logdir</c> or one run below it.</param>
    public TensorBoardWriter(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        _writer = tensorboard.SummaryWriter(folder);
    }

    /// <summary>The folder the event file is in.</summary>
    public string Folder => _writer.LogDir;

    /// <summary>The scalar tags a progress event is written as, with their values (messages have none).</summary>
    /// <param name="p">A progress event.</param>
    /// <returns>Tag/value pairs and the step they are written at.</returns>
    public static (int Step, IReadOnlyList<(string Tag, float Value)> Scalars) ScalarsOf(TrainingProgress p)
    {
        var list = new List<(string, float)>();
        switch (p.Kind)
        {
            case ProgressKind.Iteration:
                list.Add(("train/loss", (float)p.Loss));
                list.Add(("train/error", (float)p.TrainError));
                list.Add(("train/learning_rate", (float)p.LearningRate));
                list.Add(("train/images_per_second", (float)p.ImagesPerSecond));
                return ((int)p.Iteration, list);
            case ProgressKind.Epoch:
                list.Add(("epoch/loss", (float)p.Loss));
                list.Add(("epoch/train_error", (float)p.TrainError));
                list.Add(("epoch/learning_rate", (float)p.LearningRate));
                list.Add(("epoch/images_per_second", (float)p.ImagesPerSecond));
                if (p.ValidationError is double ve) list.Add(("epoch/validation_error", (float)ve));
                if (p.ValidationLoss is double vl) list.Add(("epoch/validation_loss", (float)vl));
                return (p.Epoch, list);
            default:
                return (0, list);
        }
    }

    /// <inheritdoc/>
    public void Report(TrainingProgress value)
    {
        var (step, scalars) = ScalarsOf(value);
        long wallTime = DateTimeOffset.UtcNow.ToUnixTimeSeconds();   // TensorBoard reads seconds since 1970
        foreach (var (tag, v) in scalars)
            _writer.add_scalar(tag, v, step, wallTime);
    }

    /// <summary>Writes a confusion matrix (rows: true class, columns: predicted) as a Markdown table, tag <c>confusion_matrix</c>.</summary>
    /// <param name="classes">Class names in index order.</param>
    /// <param name="counts">counts[true][predicted].</param>
    /// <param name="step">The step to show it at (the last epoch, usually).</param>
    public void WriteConfusionMatrix(IReadOnlyList<string> classes, IReadOnlyList<IReadOnlyList<int>> counts, int step)
    {
        _writer.add_text("confusion_matrix", ConfusionMarkdown(classes, counts), step, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
    }

    /// <summary>A confusion matrix as the Markdown table TensorBoard's text tab renders.</summary>
    /// <param name="classes">Class names in index order.</param>
    /// <param name="counts">counts[true][predicted].</param>
    /// <returns>The table.</returns>
    public static string ConfusionMarkdown(IReadOnlyList<string> classes, IReadOnlyList<IReadOnlyList<int>> counts)
    {
        var sb = new StringBuilder("| true \\ predicted | ").AppendJoin(" | ", classes).Append(" |\n|---|").Append(string.Concat(Enumerable.Repeat("---:|", classes.Count))).Append('\n');
        for (int i = 0; i < classes.Count; i++)
            sb.Append("| ").Append(classes[i]).Append(" | ").AppendJoin(" | ", counts[i]).Append(" |\n");
        return sb.ToString();
    }

    /// <summary>Both of two progress receivers (either may be null).</summary>
    /// <param name="first">The first receiver.</param>
    /// <param name="second">The second receiver.</param>
    /// <returns>A receiver reporting to both, or the one that is not null.</returns>
    public static IProgress<TrainingProgress>? Tee(IProgress<TrainingProgress>? first, IProgress<TrainingProgress>? second) =>
        first is null ? second : second is null ? first : new Both(first, second);

    private sealed class Both(IProgress<TrainingProgress> a, IProgress<TrainingProgress> b) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) { a.Report(value); b.Report(value); }
    }
}
