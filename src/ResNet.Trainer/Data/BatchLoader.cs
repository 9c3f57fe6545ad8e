using System.Collections.Concurrent;

namespace ResNet.Trainer.Data;

/// <summary>How a <see cref="BatchLoader"/> forms batches.</summary>
public sealed record LoaderOptions
{
    /// <summary>Images per batch (the paper uses 128 on CIFAR, 256 on ImageNet).</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>Reshuffle the images every epoch (training) or keep source order (evaluation).</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Apply the pipeline's training augmentation; false applies its evaluation transform.</summary>
    public bool Augment { get; init; } = true;

    /// <summary>Leave out the last, smaller batch (keeps BatchNorm statistics from a handful of images out of training).</summary>
    public bool DropLast { get; init; }

    /// <summary>Threads that decode and augment; 0 does the work on the consuming thread.</summary>
    public int Workers { get; init; } = Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>Batches prepared ahead of the consumer (bounds memory).</summary>
    public int Prefetch { get; init; } = 4;

    /// <summary>Seed of the shuffle and of every random augmentation: an epoch's batches depend only on (seed, epoch).</summary>
    public long Seed { get; init; }
}

/// <summary>One batch of images as CHW floats, ready for <c>torch.tensor(Data, [Count, C, H, W])</c>.</summary>
/// <param name="Data">Count * Channels * Height * Width floats.</param>
/// <param name="Labels">Count labels.</param>
/// <param name="Indices">The source indices of the images.</param>
/// <param name="Channels">Channels per image.</param>
/// <param name="Height">Image height.</param>
/// <param name="Width">Image width.</param>
public sealed record Batch(float[] Data, long[] Labels, int[] Indices, int Channels, int Height, int Width)
{
    /// <summary>Number of images.</summary>
    public int Count => Labels.Length;

    /// <summary>The tensor shape [Count, Channels, Height, Width].</summary>
    public long[] Shape => [Count, Channels, Height, Width];
}

/// <summary>
/// Streams batches from an <see cref="IImageSource"/> through an <see cref="ImagePipeline"/>. Worker threads
/// decode and augment ahead of the consumer into bounded queues, so at most about
/// <see cref="LoaderOptions.Prefetch"/> batches are in memory however large the source is. Batches come out
/// in a fixed order that depends only on the seed and the epoch, whatever the number of workers.
/// </summary>
public sealed class BatchLoader
{
    private readonly IImageSource _source;

    /// <summary>A loader over <paramref name="source"/>.</summary>
    public BatchLoader(IImageSource source, ImagePipeline pipeline, LoaderOptions? options = null)
    {
        _source = source ?? throw new ArgumentNullException(nameof(source));
        Pipeline = pipeline ?? throw new ArgumentNullException(nameof(pipeline));
        Options = options ?? new LoaderOptions();
        if (Options.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), Options.BatchSize, "The batch size must be at least 1.");
        if (source.Count == 0) throw new InvalidDatasetException("The dataset has no images to load.", source.ToString() ?? "");
    }

    /// <summary>The transform applied to each image.</summary>
    public ImagePipeline Pipeline { get; }

    /// <summary>Batching options.</summary>
    public LoaderOptions Options { get; }

    /// <summary>Batches in one epoch.</summary>
    public int BatchesPerEpoch => Options.DropLast && _source.Count >= Options.BatchSize
        ? _source.Count / Options.BatchSize
        : (_source.Count + Options.BatchSize - 1) / Options.BatchSize;

    /// <summary>The order of the images in <paramref name="epoch"/>.</summary>
    public int[] Order(int epoch)
    {
        var order = Enumerable.Range(0, _source.Count).ToArray();
        if (Options.Shuffle) new Random(Seeds.Mix(Options.Seed, epoch, -1)).Shuffle(order);
        return order;
    }

    /// <summary>The batches of <paramref name="epoch"/>, starting at batch <paramref name="skip"/> (to resume mid-epoch).</summary>
    public IEnumerable<Batch> Epoch(int epoch, int skip = 0, CancellationToken cancellationToken = default)
    {
        int[] order = Order(epoch);
        int batches = BatchesPerEpoch;
        if (Options.Workers <= 0)
        {
            for (int b = skip; b < batches; b++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                yield return Make(order, epoch, b);
            }
            yield break;
        }

        int workers = Math.Min(Options.Workers, Math.Max(1, batches - skip));
        int capacity = Math.Max(1, Options.Prefetch / workers);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var queues = new BlockingCollection<Batch>[workers];
        var errors = new Exception?[workers];
        var threads = new Thread[workers];
        for (int w = 0; w < workers; w++)
        {
            queues[w] = new BlockingCollection<Batch>(capacity);
            int worker = w;
            threads[w] = new Thread(() =>
            {
                try
                {
                    // Worker w makes batches skip+w, skip+w+W, ...: the consumer reads them round-robin, in order.
                    for (int b = skip + worker; b < batches; b += workers)
                        queues[worker].Add(Make(order, epoch, b), stop.Token);
                }
                catch (OperationCanceledException) { }
                catch (Exception ex) { errors[worker] = ex; }
                finally { queues[worker].CompleteAdding(); }
            }) { IsBackground = true, Name = $"BatchLoader worker {w}" };
            threads[w].Start();
        }
        try
        {
            for (int b = skip; b < batches; b++)
            {
                int w = (b - skip) % workers;
                Batch? batch;
                try
                {
                    if (!queues[w].TryTake(out batch, Timeout.Infinite, cancellationToken)) batch = null;
                }
                catch (OperationCanceledException) { throw; }
                if (batch is null)
                {
                    if (errors[w] is { } error) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
                    throw new InvalidOperationException("A loader worker stopped early.");
                }
                yield return batch;
            }
        }
        finally
        {
            stop.Cancel();
            foreach (var t in threads) t.Join();
            foreach (var q in queues) q.Dispose();
        }
    }

    private Batch Make(int[] order, int epoch, int b)
    {
        int start = b * Options.BatchSize;
        int count = Math.Min(Options.BatchSize, order.Length - start);
        int len = Pipeline.SampleLength;
        var data = new float[count * len];
        var labels = new long[count];
        var indices = new int[count];
        for (int i = 0; i < count; i++)
        {
            int index = order[start + i];
            indices[i] = index;
            labels[i] = _source.LabelOf(index);
            var image = _source.Load(index);
            var slot = data.AsSpan(i * len, len);
            if (Options.Augment) Pipeline.Train(image, slot, new Random(Seeds.Mix(Options.Seed, epoch, start + i)));
            else Pipeline.Eval(image, slot);
        }
        return new Batch(data, labels, indices, Pipeline.Channels, Pipeline.Height, Pipeline.Width);
    }
}

/// <summary>Deterministic seed derivation (SplitMix64), independent of process and thread.</summary>
internal static class Seeds
{
    public static int Mix(long seed, long a, long b)
    {
        ulong z = (ulong)seed;
        z = Step(z ^ (ulong)a);
        z = Step(z ^ (ulong)b);
        return (int)(z & 0x7fffffff);
    }

    private static ulong Step(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
