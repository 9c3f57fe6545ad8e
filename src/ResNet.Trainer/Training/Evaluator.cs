using System.Globalization;
using System.Text;
using ResNet.Trainer.Data;
using ResNet.Trainer.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace ResNet.Trainer.Training;

/// <summary>How test images are presented to the model.</summary>
public enum TestMode
{
    /// <summary>One view per image: the pipeline's evaluation transform.</summary>
    Single,
    /// <summary>Paper section 3.4 (from AlexNet): shorter side scaled to 256/224 of the input, four corner and one centre crop, and their mirrors; softmax averaged.</summary>
    TenCrop,
    /// <summary>Paper section 3.4: the whole image, fully convolutionally, at several shorter-side lengths; softmax averaged.</summary>
    MultiScale,
}

/// <summary>How an evaluation runs.</summary>
public sealed record EvaluationOptions
{
    /// <summary>Images per forward pass in single-view mode.</summary>
    public int BatchSize { get; init; } = 256;

    /// <summary>Single view, 10-crop or multi-scale.</summary>
    public TestMode Mode { get; init; } = TestMode.Single;

    /// <summary>
    /// Shorter-side lengths for multi-scale testing. Null: the paper's {224, 256, 384, 480, 640} scaled by
    /// input size / 224 (so a 32-pixel model is tested at 32, 37, 55, 69 and 91).
    /// </summary>
    public int[]? Scales { get; init; }

    /// <summary>Loader threads.</summary>
    public int Workers { get; init; } = 1;

    /// <summary>
    /// Flip test-time augmentation (single-view mode): score each image and its horizontal mirror and take the softmax of the
    /// mean of the two views' logits, as the fast CIFAR trainers do. Logits rather than probabilities, so that an ONNX export
    /// with <see cref="Onnx.OnnxExportOptions.FlipTestTimeAugmentation"/> computes the same inside its graph. The mirror is
    /// taken before normalization, as training's flip is. Costs a second forward pass. Default false.
    /// </summary>
    public bool FlipTestTimeAugmentation { get; init; }

    /// <summary>
    /// Shift test-time augmentation (single-view mode): also score each image moved by this many pixels up, down, left and
    /// right (zero where the image was, as training's padded crop fills), and average the logits of all views: 5 views, or
    /// 10 with <see cref="FlipTestTimeAugmentation"/> (each shift mirrored too). 0 (the default) adds none; at most half the
    /// smaller side of the input. Costs a forward pass per view. The ONNX export computes flip test-time augmentation only.
    /// </summary>
    public int ShiftTestTimeAugmentation { get; init; }

    /// <summary>The largest <see cref="ShiftTestTimeAugmentation"/> for an input of <paramref name="height"/> x <paramref name="width"/>: half its smaller side.</summary>
    public static int MaxShiftFor(int height, int width) => Math.Min(height, width) / 2;

    /// <summary>The views that <see cref="FlipTestTimeAugmentation"/> and <see cref="ShiftTestTimeAugmentation"/> average: (rows down, columns right, mirrored).</summary>
    internal IReadOnlyList<(int Dy, int Dx, bool Flip)> Views()
    {
        int s = ShiftTestTimeAugmentation;
        (int, int)[] shifts = s == 0 ? [(0, 0)] : [(0, 0), (-s, 0), (s, 0), (0, -s), (0, s)];
        return [.. shifts.Select(d => (d.Item1, d.Item2, false)), .. FlipTestTimeAugmentation ? shifts.Select(d => (d.Item1, d.Item2, true)) : []];
    }
}

/// <summary>The figures of an evaluation.</summary>
/// <param name="Count">Images evaluated.</param>
/// <param name="Loss">Mean cross-entropy (of the averaged probabilities for multi-view modes).</param>
/// <param name="Top1Error">Share of images whose most probable class is wrong.</param>
/// <param name="Top5Error">Share whose true class is not among the five most probable (0 with five classes or fewer).</param>
/// <param name="ClassNames">Class names.</param>
/// <param name="PerClassAccuracy">Accuracy per true class (NaN for a class with no images).</param>
/// <param name="ConfusionMatrix">[true class][predicted class] counts.</param>
public sealed record EvaluationReport(int Count, double Loss, double Top1Error, double Top5Error, IReadOnlyList<string> ClassNames, double[] PerClassAccuracy, int[][] ConfusionMatrix)
{
    /// <summary>1 - top-1 error.</summary>
    public double Accuracy => 1 - Top1Error;

    /// <summary>The confusion matrix as an aligned text table (rows: true class, columns: predicted).</summary>
    public string FormatConfusionMatrix()
    {
        int k = ClassNames.Count;
        int nameWidth = Math.Max(17, ClassNames.Max(n => n.Length) + $"{k - 1} ".Length + 1);
        int cell = Math.Max(4, ConfusionMatrix.SelectMany(r => r).DefaultIfEmpty(0).Max().ToString(CultureInfo.InvariantCulture).Length + 1);
        var sb = new StringBuilder();
        sb.Append("true \\ predicted".PadRight(nameWidth));
        for (int j = 0; j < k; j++) sb.Append(j.ToString(CultureInfo.InvariantCulture).PadLeft(cell));
        sb.AppendLine("   accuracy");
        for (int i = 0; i < k; i++)
        {
            sb.Append($"{i} {ClassNames[i]}".PadRight(nameWidth));
            for (int j = 0; j < k; j++) sb.Append(ConfusionMatrix[i][j].ToString(CultureInfo.InvariantCulture).PadLeft(cell));
            sb.AppendLine(double.IsNaN(PerClassAccuracy[i]) ? "        -" : string.Create(CultureInfo.InvariantCulture, $"   {PerClassAccuracy[i],7:P1}"));
        }
        return sb.ToString();
    }
}

/// <summary>Top-1/top-5 error, per-class accuracy and confusion matrix of a model on a labelled image set.</summary>
public static class Evaluator
{
    /// <summary>Evaluates <paramref name="model"/> (put in eval mode) on <paramref name="data"/> prepared by <paramref name="pipeline"/>'s evaluation transform.</summary>
    public static EvaluationReport Evaluate(Models.ResNetModel model, IImageSource data, ImagePipeline pipeline, EvaluationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(pipeline);
        options ??= new EvaluationOptions();
        if (options.FlipTestTimeAugmentation && options.Mode != TestMode.Single)
            throw new ArgumentException($"{nameof(EvaluationOptions.FlipTestTimeAugmentation)} averages two views in {nameof(TestMode.Single)} mode; {options.Mode} has its own views " +
                $"({nameof(TestMode.TenCrop)} already includes the mirrors). Use one or the other.", nameof(options));
        if (options.ShiftTestTimeAugmentation != 0 && options.Mode != TestMode.Single)
            throw new ArgumentException($"{nameof(EvaluationOptions.ShiftTestTimeAugmentation)} averages shifted views in {nameof(TestMode.Single)} mode; {options.Mode} has its own views. " +
                "Use one or the other.", nameof(options));
        int half = EvaluationOptions.MaxShiftFor(pipeline.Height, pipeline.Width);
        if (options.ShiftTestTimeAugmentation < 0 || options.ShiftTestTimeAugmentation > half)
            throw new ArgumentException($"{nameof(EvaluationOptions.ShiftTestTimeAugmentation)} is {options.ShiftTestTimeAugmentation} pixels; it must be from 0 to {half} " +
                $"(half the smaller side of the {pipeline.Height}x{pipeline.Width} input). Use 1 or 2, as training's padded crops move images.", nameof(options));
        int k = model.Spec.NumClasses;
        if (data.ClassNames.Count > k)
            throw new ArgumentException($"The data has {data.ClassNames.Count} classes but {model.Spec.Name} has {k} outputs. Evaluate on data with the classes the model was trained on.", nameof(data));
        var tally = new Tally(data.ClassNames.Count, k);
        var device = model.parameters().First().device;
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var _ = no_grad();
            if (options.Mode == TestMode.Single)
            {
                var views = options.Views();
                bool several = views.Count > 1;
                // With several views, the loader gives unnormalized images: each view is normalized after its mirror and shift.
                var loader = new BatchLoader(data, several ? pipeline with { Normalization = null } : pipeline,
                    new LoaderOptions { BatchSize = options.BatchSize, Shuffle = false, Augment = false, Workers = options.Workers });
                foreach (var batch in loader.Epoch(0, 0, cancellationToken))
                {
                    using var scope = NewDisposeScope();
                    var logits = several ? ViewAveragedLogits(model, batch, pipeline.Normalization, views, device)
                        : model.forward(tensor(batch.Data, batch.Shape).to(device));
                    tally.Add(nn.functional.softmax(logits, 1).cpu(), batch.Labels);
                }
            }
            else
            {
                int[] scales = options.Scales ?? [.. new[] { 224, 256, 384, 480, 640 }.Select(s => (int)Math.Round(s * (double)Math.Min(pipeline.Height, pipeline.Width) / 224))];
                for (int i = 0; i < data.Count; i++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    using var scope = NewDisposeScope();
                    var image = data.Load(i);
                    var probabilities = options.Mode == TestMode.TenCrop
                        ? TenCrop(model, image, pipeline, device)
                        : MultiScale(model, image, pipeline, scales, device);
                    tally.Add(probabilities.unsqueeze(0).cpu(), [data.LabelOf(i)]);
                }
            }
        }
        finally
        {
            model.train(wasTraining);
        }
        return tally.Report(data.ClassNames);
    }

    /// <summary>
    /// Evaluates an ONNX model (float or quantized) on <paramref name="data"/>: each image is converted to the model's
    /// channels, resized (bilinear) to its input size and scaled to its pixel range; the normalization is in the graph.
    /// </summary>
    /// <exception cref="ArgumentException">The data has more classes than the model outputs.</exception>
    public static EvaluationReport Evaluate(ResNet.Scoring.OnnxScorer scorer, IImageSource data, int batchSize = 64, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(scorer);
        ArgumentNullException.ThrowIfNull(data);
        var info = scorer.Info;
        if (data.ClassNames.Count > info.ClassCount)
            throw new ArgumentException($"The data has {data.ClassNames.Count} classes but the model has {info.ClassCount} outputs. Evaluate on data with the classes the model was trained on.", nameof(data));
        var tally = new Tally(data.ClassNames.Count, info.ClassCount);
        float scale = info.Normalization.Range == ResNet.Scoring.PixelRange.ZeroTo255 ? 255f : 1f;
        int per = scorer.ImageLength;
        batchSize = Math.Max(1, batchSize);
        var buffer = new float[batchSize * per];
        for (int start = 0; start < data.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = Math.Min(batchSize, data.Count - start);
            var labels = new long[n];
            Parallel.For(0, n, i =>
            {
                var (chw, h, w) = ImageOps.ToFloatChw(data.Load(start + i), info.Channels);
                var resized = ImageOps.Resize(chw, info.Channels, h, w, info.Height, info.Width);
                var slot = buffer.AsSpan(i * per, per);
                for (int j = 0; j < per; j++) slot[j] = resized[j] * scale;
                labels[i] = data.LabelOf(start + i);
            });
            tally.Add(scorer.Score(buffer.AsMemory(0, n * per), n).Probabilities, labels);
        }
        return tally.Report(data.ClassNames);
    }

    // The mean of the logits of a batch of unnormalized images seen through each view (a shift, a mirror, or both), one forward
    // pass per view; each view is normalized after it is taken, as training's crops and flips are.
    private static Tensor ViewAveragedLogits(Models.ResNetModel model, Batch batch, Normalization? normalization, IReadOnlyList<(int Dy, int Dx, bool Flip)> views, Device device)
    {
        int n = batch.Count, c = batch.Channels, h = batch.Height, w = batch.Width, len = c * h * w;
        var source = new float[len];
        var view = new float[n * len];
        Tensor? sum = null;
        foreach (var (dy, dx, flip) in views)
        {
            for (int i = 0; i < n; i++)
            {
                batch.Data.AsSpan(i * len, len).CopyTo(source);
                var slot = view.AsSpan(i * len, len);
                ImageOps.ShiftedCrop(source, c, h, w, dy, dx, flip, slot, h, w);
                normalization?.Apply(slot, h, w);
            }
            var logits = model.forward(tensor(view, [n, c, h, w]).to(device));
            sum = sum is null ? logits : sum.add_(logits, HeldScalars.One);
        }
        using var count = views.Count.ToScalar(); // held through the call (HeldScalars)
        return sum!.div_(count);
    }

    private static Tensor TenCrop(Models.ResNetModel model, RawImage image, ImagePipeline p, Device device)
    {
        var (src, h, w) = ImageOps.ToFloatChw(image, p.Channels);
        var (sh, sw) = ImagePipeline.ShorterSideTo(h, w, (int)Math.Round(Math.Max(p.Height, p.Width) * 256.0 / 224.0));
        var scaled = ImageOps.Resize(src, p.Channels, h, w, sh, sw);
        int len = p.SampleLength;
        var crops = new float[10 * len];
        (int Top, int Left)[] corners = [(0, 0), (0, sw - p.Width), (sh - p.Height, 0), (sh - p.Height, sw - p.Width), ((sh - p.Height) / 2, (sw - p.Width) / 2)];
        for (int c = 0; c < 10; c++)
        {
            var slot = crops.AsSpan(c * len, len);
            ImageOps.ShiftedCrop(scaled, p.Channels, sh, sw, corners[c % 5].Top, corners[c % 5].Left, flip: c >= 5, slot, p.Height, p.Width, padded: false);
            p.Normalization?.Apply(slot, p.Height, p.Width);
        }
        var x = tensor(crops, [10, p.Channels, p.Height, p.Width]).to(device);
        return nn.functional.softmax(model.forward(x), 1).mean([0L]);
    }

    private static Tensor MultiScale(Models.ResNetModel model, RawImage image, ImagePipeline p, int[] scales, Device device)
    {
        var (src, h, w) = ImageOps.ToFloatChw(image, p.Channels);
        Tensor? sum = null;
        foreach (int s in scales)
        {
            var (sh, sw) = ImagePipeline.ShorterSideTo(h, w, s);
            var scaled = ImageOps.Resize(src, p.Channels, h, w, sh, sw);
            if (ReferenceEquals(scaled, src)) scaled = (float[])src.Clone();
            p.Normalization?.ForSize(sh, sw).Apply(scaled, sh, sw);
            var x = tensor(scaled, [1, p.Channels, sh, sw]).to(device);
            var prob = nn.functional.softmax(model.forward(x), 1)[0];
            sum = sum is null ? prob : sum.add(prob, HeldScalars.One);
        }
        using var count = scales.Length.ToScalar(); // held through the call (HeldScalars)
        return sum!.div(count);
    }

    private sealed class Tally(int classes, int outputs)
    {
        private readonly int[][] _confusion = Enumerable.Range(0, classes).Select(_ => new int[classes]).ToArray();
        private int _count, _top1Wrong, _top5Wrong;
        private double _loss;

        public void Add(Tensor probabilities, long[] labels) => Add(probabilities.data<float>().ToArray(), labels);

        public void Add(float[] p, long[] labels)
        {
            int n = labels.Length;
            int top = Math.Min(5, outputs);
            for (int i = 0; i < n; i++)
            {
                var row = p.AsSpan(i * outputs, outputs);
                int truth = (int)labels[i];
                int best = 0, higher = 0;
                for (int j = 1; j < outputs; j++) if (row[j] > row[best]) best = j;
                for (int j = 0; j < outputs; j++) if (row[j] > row[truth]) higher++;
                if (best != truth) _top1Wrong++;
                if (higher >= top) _top5Wrong++;
                _loss += -Math.Log(Math.Max(row[truth], 1e-12f));
                _confusion[truth][Math.Min(best, classes - 1)]++;
                _count++;
            }
        }

        public EvaluationReport Report(IReadOnlyList<string> names)
        {
            var perClass = _confusion.Select((row, i) => row.Sum() == 0 ? double.NaN : (double)row[i] / row.Sum()).ToArray();
            return new EvaluationReport(_count, _count == 0 ? 0 : _loss / _count,
                _count == 0 ? 0 : (double)_top1Wrong / _count, _count == 0 ? 0 : (double)_top5Wrong / _count, names, perClass, _confusion);
        }
    }
}
