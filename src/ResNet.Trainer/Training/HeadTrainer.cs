using System.Diagnostics;
using ResNet.Trainer.Data;
using static TorchSharp.torch;

namespace ResNet.Trainer.Training;

/// <summary>Options of <see cref="HeadTrainer"/>.</summary>
public sealed record HeadTrainingOptions
{
    /// <summary>Passes over the cached features, or SGD steps on them.</summary>
    public TrainingLength Length { get; init; } = TrainingLength.Epochs(30);

    /// <summary>Feature vectors per SGD step.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Learning rate (constant, cosine-decayed to zero over the run).</summary>
    public double LearningRate { get; init; } = 0.05;

    /// <summary>SGD momentum.</summary>
    public double Momentum { get; init; } = 0.9;

    /// <summary>L2 weight decay on the classifier.</summary>
    public double WeightDecay { get; init; } = 1e-4;

    /// <summary>Seed of the shuffling.</summary>
    public int Seed { get; init; }

    /// <summary>Images per forward pass when the features are computed.</summary>
    public int FeatureBatchSize { get; init; } = 64;

    /// <summary>
    /// Folder that keeps the computed features between runs: a run on the same images, with the same trunk and
    /// preprocessing, reads them instead of computing them; a damaged file is computed again, with a warning.
    /// Default: none (the features are computed for every run).
    /// </summary>
    public string? FeatureCacheFolder { get; init; }
}

/// <summary>
/// Transfer learning with a frozen trunk: the pooled features of every training image are computed once (eval mode,
/// no augmentation), then only the final fully connected layer is trained on the cached features, as ML.NET's image
/// classification trainer does with its bottleneck cache.
/// </summary>
public static class HeadTrainer
{
    /// <summary>Trains <paramref name="model"/>'s classifier on cached trunk features; the trunk is not changed.</summary>
    /// <returns>The per-epoch statistics (train loss and error on the cached features).</returns>
    public static IReadOnlyList<EpochStats> Train(Models.ResNetModel model, IImageSource train, ImagePipeline pipeline, HeadTrainingOptions? options = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(pipeline);
        var o = options ?? new HeadTrainingOptions();
        if (o.Length is not { Count: >= 1 })
            throw new InvalidTrainingOptionException(nameof(o.Length), o.Length?.ToString() ?? "null", "train for at least 1 epoch or iteration");
        int n = train.Count;
        int steps = Math.Max(1, (n + o.BatchSize - 1) / o.BatchSize);
        long total = o.Length.TotalIterations(steps), iteration = 0;
        int epochs = (int)((total + steps - 1) / steps);
        using var features = Features(model, train, pipeline, o, epochs, progress, cancellationToken);

        using var labels = tensor(Enumerable.Range(0, train.Count).Select(i => (long)train.LabelOf(i)).ToArray());
        var fc = model.Classifier;
        using var sgd = new Sgd(fc.parameters(), o.Momentum, o.WeightDecay, nesterov: false);
        var rng = new Random(o.Seed);
        var history = new List<EpochStats>();
        fc.train();
        for (int epoch = 1; epoch <= epochs && !cancellationToken.IsCancellationRequested; epoch++)
        {
            var order = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).Select(i => (long)i).ToArray();
            double lossSum = 0, lr = o.LearningRate;
            long wrong = 0, seen = 0;
            var epochWatch = Stopwatch.StartNew();
            for (int start = 0; start < n && iteration < total; start += o.BatchSize)
            {
                using var scope = NewDisposeScope();
                var idx = tensor(order.AsSpan(start, Math.Min(o.BatchSize, n - start)).ToArray());
                lr = o.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * iteration / total)); // cosine to zero
                var (loss, batchWrong) = TrainingStep.Run(fc, sgd, features.index_select(0, idx), labels.index_select(0, idx), lr, labelSmoothing: 0);
                if (!double.IsFinite(loss))
                    throw new TrainingDivergedException($"The classifier's training loss became {loss} at iteration {iteration + 1} (learning rate {lr:G4}). Try a lower learning rate (e.g. {lr / 10:G4}).", null);
                iteration++;
                lossSum += loss * idx.shape[0];
                wrong += batchWrong;
                seen += idx.shape[0];
            }
            var stats = new EpochStats(epoch, iteration, lossSum / seen, (double)wrong / seen, null, null, lr, epochWatch.Elapsed.TotalSeconds);
            history.Add(stats);
            progress?.Report(TrainingProgress.EpochDone(stats, epochs, total, seen / Math.Max(epochWatch.Elapsed.TotalSeconds, 1e-9),
                TimeSpan.FromSeconds(epochWatch.Elapsed.TotalSeconds * (epochs - epoch))));
        }
        ResNetTrainer.EnsureFinite(model, "head training", null);
        model.eval();
        return history;
    }

    // The features of every training image: read from the cache folder when it holds them for these inputs, else computed (and stored there).
    private static Tensor Features(Models.ResNetModel model, IImageSource train, ImagePipeline pipeline, HeadTrainingOptions o, int epochs,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        int n = train.Count, width = model.Spec.FeatureCount;
        void Report(string what) => progress?.Report(TrainingProgress.Note($"{what} in {watch.Elapsed.TotalSeconds:F1} s")
            with { Epochs = epochs, ImagesPerSecond = n / Math.Max(watch.Elapsed.TotalSeconds, 1e-9) });
        if (o.FeatureCacheFolder is null)
        {
            var computed = CacheFeatures(model, train, pipeline, o.FeatureBatchSize, cancellationToken);
            Report($"cached {n} feature vectors of {width}");
            return computed;
        }
        byte[] key = FeatureCache.Key(model, train, pipeline);
        string path = FeatureCache.PathFor(o.FeatureCacheFolder, key);
        if (FeatureCache.Read(path, key, n, width, out string? problem) is { } stored)
        {
            var read = tensor(stored, [n, width]);
            Report($"read {n} cached feature vectors of {width} from '{path}'");
            return read;
        }
        if (problem is not null)
            progress?.Report(TrainingProgress.Warning($"the feature cache '{path}' is damaged ({problem}); computing the features again."));
        var features = CacheFeatures(model, train, pipeline, o.FeatureBatchSize, cancellationToken);
        FeatureCache.Write(path, key, features);
        Report($"cached {n} feature vectors of {width} and saved them to '{path}'");
        return features;
    }

    /// <summary>The pooled trunk features of every image, [N, FeatureCount], computed in eval mode.</summary>
    public static Tensor CacheFeatures(Models.ResNetModel model, IImageSource images, ImagePipeline pipeline, int batchSize, CancellationToken cancellationToken = default)
    {
        model.eval();
        int n = images.Count, len = pipeline.SampleLength;
        var result = zeros(n, model.Spec.FeatureCount);
        using var _ = no_grad();
        var buffer = new float[Math.Min(batchSize, n) * len];
        for (int start = 0; start < n; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(batchSize, n - start);
            Parallel.For(0, count, i => pipeline.Eval(images.Load(start + i), buffer.AsSpan(i * len, len)));
            using var scope = NewDisposeScope();
            var x = tensor(buffer.AsSpan(0, count * len).ToArray(), [count, pipeline.Channels, pipeline.Height, pipeline.Width]);
            result[TensorIndex.Slice(start, start + count)] = model.Features(x);
        }
        return result;
    }
}
