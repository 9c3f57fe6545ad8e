using System.Runtime.InteropServices;
using System.Threading.Channels;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace ResNet.Scoring;

/// <summary>Which ONNX Runtime execution provider a scorer should use.</summary>
public enum ExecutionProviderPreference
{
    /// <summary>The CPU provider.</summary>
    Cpu,
    /// <summary>CUDA when it is present and loads; otherwise CPU, with the reason in <see cref="OnnxScorer.FallbackMessage"/>.</summary>
    Cuda,
    /// <summary>CUDA, or an <see cref="ExecutionProviderUnavailableException"/> when it cannot be used.</summary>
    CudaOnly,
}

/// <summary>Options of <see cref="OnnxScorer"/>.</summary>
public sealed class OnnxScorerOptions
{
    /// <summary>Execution provider; default CPU.</summary>
    public ExecutionProviderPreference ExecutionProvider { get; init; } = ExecutionProviderPreference.Cpu;

    /// <summary>CUDA device index when CUDA is used.</summary>
    public int CudaDeviceId { get; init; }

    /// <summary>Threads inside one operator (0 = ONNX Runtime's default, one per core).</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>Threads across independent operators (0 = ONNX Runtime's default). ResNets are a chain, so 1 is usually best.</summary>
    public int InterOpThreads { get; init; } = 1;

    /// <summary>Largest batch handed to ONNX Runtime at once; bigger requests are split. Default 32.</summary>
    public int MaxBatchSize { get; init; } = 32;

    /// <summary>
    /// How long <see cref="OnnxScorer.ScoreAsync"/> waits for more requests to fill a batch after the first one arrives.
    /// Default zero: a batch holds what is already waiting, and nothing waits for company.
    /// </summary>
    public TimeSpan MaxQueueDelay { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// Most images <see cref="OnnxScorer.ScoreAsync"/> holds waiting at once; a request that would go past it fails at
    /// once with <see cref="ScorerQueueFullException"/> instead of growing the queue. Default 0: unbounded.
    /// </summary>
    public int MaxQueuedImages { get; init; }

    /// <summary>Called after each batch <see cref="OnnxScorer.ScoreAsync"/> runs (for metrics); default none.</summary>
    public Action<BatchStats>? BatchCompleted { get; init; }

    /// <summary>Class names to use instead of the model's (or for a model without metadata); must match its class count.</summary>
    public IReadOnlyList<string>? ClassNames { get; init; }

    /// <summary>Receives notices such as the CUDA-to-CPU fallback; default none (the notice is also in <see cref="OnnxScorer.FallbackMessage"/>).</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>What one batch of <see cref="OnnxScorer.ScoreAsync"/> held.</summary>
/// <param name="Images">Images in the batch.</param>
/// <param name="Requests">Requests merged into it.</param>
/// <param name="OldestWait">How long its oldest request waited in the queue.</param>
/// <param name="RunTime">How long ONNX Runtime took.</param>
public readonly record struct BatchStats(int Images, int Requests, TimeSpan OldestWait, TimeSpan RunTime);

/// <summary>One class and its probability.</summary>
/// <param name="Index">Output index of the class.</param>
/// <param name="Label">Class name.</param>
/// <param name="Probability">Softmax probability.</param>
public readonly record struct ClassScore(int Index, string Label, float Probability);

/// <summary>The shape of one image's last-stage activations: channels x height x width.</summary>
/// <param name="Channels">Channels (the classifier's input features).</param>
/// <param name="Height">Rows of the activation map.</param>
/// <param name="Width">Columns of the activation map.</param>
public readonly record struct ActivationShape(int Channels, int Height, int Width)
{
    /// <summary>Floats per image.</summary>
    public int Length => Channels * Height * Width;
}

/// <summary>Scores of a batch, row-major: image <c>i</c>'s values start at <c>i * ClassCount</c>.</summary>
public sealed class ScoreResult
{
    internal ScoreResult(int count, int classes, int features, bool withFeatures, ActivationShape activations = default)
    {
        Count = count;
        ClassCount = classes;
        FeatureCount = withFeatures ? features : 0;
        Logits = new float[count * classes];
        Probabilities = new float[count * classes];
        Features = withFeatures ? new float[count * features] : null;
        ActivationShape = activations;
        Activations = activations.Length > 0 ? new float[count * activations.Length] : null;
    }

    /// <summary>Number of images.</summary>
    public int Count { get; }
    /// <summary>Number of classes.</summary>
    public int ClassCount { get; }
    /// <summary>Length of one feature vector (0 when features were not requested).</summary>
    public int FeatureCount { get; }
    /// <summary>Logits, [Count, ClassCount].</summary>
    public float[] Logits { get; }
    /// <summary>Softmax probabilities, [Count, ClassCount].</summary>
    public float[] Probabilities { get; }
    /// <summary>Pooled features, [Count, FeatureCount], when requested.</summary>
    public float[]? Features { get; }
    /// <summary>The shape of one image's activations (all zero when they were not requested).</summary>
    public ActivationShape ActivationShape { get; }
    /// <summary>Last-stage activations, [Count, Channels, Height, Width], when requested.</summary>
    public float[]? Activations { get; }

    /// <summary>The activations of image <paramref name="i"/>, [Channels, Height, Width].</summary>
    /// <exception cref="InvalidOperationException">Activations were not requested.</exception>
    public ReadOnlySpan<float> ActivationsOf(int i) => Activations is null
        ? throw new InvalidOperationException("This result has no activations; score with activations: true on a model that has the activations output.")
        : Activations.AsSpan(i * ActivationShape.Length, ActivationShape.Length);

    /// <summary>The probabilities of image <paramref name="i"/>.</summary>
    public ReadOnlySpan<float> ProbabilitiesOf(int i) => Probabilities.AsSpan(i * ClassCount, ClassCount);
    /// <summary>The logits of image <paramref name="i"/>.</summary>
    public ReadOnlySpan<float> LogitsOf(int i) => Logits.AsSpan(i * ClassCount, ClassCount);
    /// <summary>The index of the most probable class of image <paramref name="i"/>.</summary>
    public int ArgMax(int i)
    {
        var p = ProbabilitiesOf(i);
        int best = 0;
        for (int c = 1; c < p.Length; c++) if (p[c] > p[best]) best = c;
        return best;
    }
}

/// <summary>
/// Scores images with an exported ResNet (or another ONNX image classifier) on ONNX Runtime. Requests are
/// split into batches of at most <see cref="OnnxScorerOptions.MaxBatchSize"/> and run without copying the
/// input; <see cref="Score(ReadOnlyMemory{float}, int, bool, bool)"/> may be called from several threads at once.
/// <see cref="ScoreAsync"/> also coalesces small concurrent requests (e.g. one image per caller) into one batch.
/// </summary>
public sealed class OnnxScorer : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string _inputName;
    private readonly string? _probabilitiesName, _logitsName, _featuresName, _activationsName;
    // The classifier's weights [classes, channels] for class-activation maps, or why they could not be read.
    private readonly float[]? _classWeights;
    private readonly string? _classWeightsProblem;
    private readonly int _maxBatch;
    private readonly string _source;
    private int _disposed;
    private long _runs;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>();
    private readonly Lazy<Task> _batcher;
    private readonly TimeSpan _maxDelay;
    private readonly int _maxQueued;
    private readonly Action<BatchStats>? _batchCompleted;
    private int _queuedImages;

    private sealed record Pending(ReadOnlyMemory<float> Images, int Count, bool Features, TaskCompletionSource<ScoreResult> Done, long Enqueued);

    /// <summary>Images waiting in the <see cref="ScoreAsync"/> queue now.</summary>
    public int QueuedImages => Volatile.Read(ref _queuedImages);

    /// <summary>How many times ONNX Runtime has been run (batches), for diagnostics.</summary>
    public long RunCount => Interlocked.Read(ref _runs);

    /// <summary>What the model says about itself (class names, input size, normalization).</summary>
    public OnnxModelInfo Info { get; }

    /// <summary>The execution provider in use: <c>CPUExecutionProvider</c> or <c>CUDAExecutionProvider</c>.</summary>
    public string ExecutionProvider { get; }

    /// <summary>Why CUDA was asked for but CPU is used; null when there was no fallback.</summary>
    public string? FallbackMessage { get; }

    /// <summary>Floats per image: channels x height x width.</summary>
    public int ImageLength => Info.PixelCount;

    /// <summary>The graph input the images go to.</summary>
    public string InputName => _inputName;

    /// <summary>The graph output with softmax probabilities, or null when the model only has logits.</summary>
    public string? ProbabilitiesName => _probabilitiesName;

    /// <summary>The graph output with logits (or a foreign classifier's scores), or null.</summary>
    public string? LogitsName => _logitsName;

    /// <summary>The graph output with pooled features, or null.</summary>
    public string? FeaturesName => _featuresName;

    /// <summary>True when the model has a features output.</summary>
    public bool HasFeatures => _featuresName is not null;

    /// <summary>Length of the features output (0 when absent).</summary>
    public int FeatureCount { get; }

    /// <summary>The graph output with the last stage's activations (<see cref="OnnxNames.ActivationsOutput"/>), or null.</summary>
    public string? ActivationsName => _activationsName;

    /// <summary>True when the model has the activations output, so <see cref="ClassActivationMap"/> can be used.</summary>
    public bool HasActivations => _activationsName is not null;

    /// <summary>The shape of one image's activations (all zero when the model has no activations output).</summary>
    public ActivationShape ActivationShape { get; }

    /// <summary>Opens an ONNX file.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="OnnxModelFormatException">The file is not ONNX, is truncated, or is not an image classifier.</exception>
    /// <exception cref="ClassCountMismatchException">Given class names do not match the model's outputs.</exception>
    /// <exception cref="ExecutionProviderUnavailableException">CUDA only was asked for and cannot be used.</exception>
    public OnnxScorer(string path, OnnxScorerOptions? options = null)
        : this(ReadFile(path), options, $"ONNX model '{path}'") { }

    /// <summary>Opens an ONNX model held in memory; <paramref name="source"/> names it in error messages.</summary>
    public OnnxScorer(byte[] model, OnnxScorerOptions? options = null, string source = "ONNX model")
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new OnnxScorerOptions();
        if (options.MaxBatchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxBatchSize, "MaxBatchSize must be at least 1.");
        if (options.MaxQueueDelay < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxQueueDelay, "MaxQueueDelay cannot be negative; use TimeSpan.Zero for no waiting.");
        if (options.MaxQueuedImages < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxQueuedImages, "MaxQueuedImages cannot be negative; use 0 for an unbounded queue.");
        _maxDelay = options.MaxQueueDelay;
        _maxQueued = options.MaxQueuedImages;
        _batchCompleted = options.BatchCompleted;
        _source = source;
        _batcher = new Lazy<Task>(() => Task.Run(BatchLoop));

        var (sessionOptions, provider, fallback) = CreateSessionOptions(options);
        ExecutionProvider = provider;
        FallbackMessage = fallback;
        if (fallback is not null) options.Log?.Invoke(fallback);
        try
        {
            _session = new InferenceSession(model, sessionOptions);
        }
        catch (OnnxRuntimeException ex)
        {
            throw new OnnxModelFormatException(
                $"{source} could not be loaded by ONNX Runtime: it is not a valid ONNX file, or it is truncated ({ex.Message.Trim()}). " +
                "Export it again with `resnet export` or OnnxNames.Export.", ex);
        }
        finally
        {
            sessionOptions.Dispose();
        }

        try
        {
            (_inputName, var dims) = FindImageInput();
            _probabilitiesName = FindOutput(OnnxNames.ProbabilitiesOutput);
            _logitsName = FindOutput(OnnxNames.LogitsOutput);
            _featuresName = FindOutput(OnnxNames.FeaturesOutput);
            if (_probabilitiesName is null && _logitsName is null)
            {
                // A foreign classifier: its one rank-2 output holds the scores.
                var rank2 = _session.OutputMetadata.Where(o => o.Value.IsTensor && o.Value.Dimensions.Length == 2 && o.Value.ElementDataType == TensorElementType.Float).ToList();
                if (rank2.Count != 1)
                    throw NotAClassifier();
                _logitsName = rank2[0].Key;
            }
            int classes = _session.OutputMetadata[_probabilitiesName ?? _logitsName!].Dimensions[1];
            FeatureCount = _featuresName is null ? 0 : _session.OutputMetadata[_featuresName].Dimensions[1];
            if (_session.OutputMetadata.TryGetValue(OnnxNames.ActivationsOutput, out var a) && a.IsTensor &&
                a.ElementDataType == TensorElementType.Float && a.Dimensions.Length == 4 && a.Dimensions.Skip(1).All(d => d > 0))
            {
                _activationsName = OnnxNames.ActivationsOutput;
                ActivationShape = new ActivationShape(a.Dimensions[1], a.Dimensions[2], a.Dimensions[3]);
                try
                {
                    _classWeights = _logitsName is null
                        ? throw new OnnxModelFormatException($"{source}: class-activation maps need the '{OnnxNames.LogitsOutput}' output, which this model does not have. Export it with `resnet export`.")
                        : ClassifierWeights.Read(global::Onnx.ModelProto.Parser.ParseFrom(model), _logitsName, classes, ActivationShape.Channels, source);
                }
                catch (OnnxModelFormatException ex) { _classWeightsProblem = ex.Message; }
            }
            Info = ReadInfo(dims, classes, options.ClassNames);
            _maxBatch = dims[0] > 0 ? Math.Min(dims[0], options.MaxBatchSize) : options.MaxBatchSize;
            if (dims[0] > 1)
                throw new OnnxModelFormatException($"{source} has a fixed batch size of {dims[0]}; this scorer needs a dynamic (or 1) batch dimension. Re-export it with a dynamic batch.");
        }
        catch
        {
            _session.Dispose();
            throw;
        }
    }

    private static byte[] ReadFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"ONNX model '{path}' does not exist. Check the path, or create one with `resnet export`.", path);
        return File.ReadAllBytes(path);
    }

    private static (SessionOptions, string Provider, string? Fallback) CreateSessionOptions(OnnxScorerOptions options)
    {
        var so = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = options.IntraOpThreads,
            InterOpNumThreads = options.InterOpThreads,
        };
        if (options.ExecutionProvider == ExecutionProviderPreference.Cpu)
            return (so, "CPUExecutionProvider", null);

        if (TryAppendCuda(so, options.CudaDeviceId) is not { } reason)
            return (so, "CUDAExecutionProvider", null);
        if (options.ExecutionProvider == ExecutionProviderPreference.CudaOnly)
        {
            so.Dispose();
            throw new ExecutionProviderUnavailableException($"CUDA was required but cannot be used: {reason}. Choose CUDA with CPU fallback, or the CPU, instead.") { Reason = reason };
        }
        return (so, "CPUExecutionProvider", FallbackNotice(reason));
    }

    /// <summary>The notice every CUDA-to-CPU fallback gives (<c>resnet predict --device cuda</c>, and ML.NET's <c>FallbackToCpu</c>).</summary>
    internal static string FallbackNotice(string reason) => $"CUDA was requested but cannot be used: {reason}. Falling back to the CPU execution provider.";

    /// <summary>Why CUDA device <paramref name="deviceId"/> cannot be used here, or null when it can.</summary>
    internal static string? CudaUnavailableReason(int deviceId)
    {
        using var so = new SessionOptions();
        return TryAppendCuda(so, deviceId);
    }

    // Adds the CUDA provider to the options; returns why it cannot be added, or null when it was.
    private static string? TryAppendCuda(SessionOptions so, int deviceId)
    {
        if (!OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider"))
            return "this ONNX Runtime build has no CUDA execution provider (reference Microsoft.ML.OnnxRuntime.Gpu)";
        try
        {
            so.AppendExecutionProvider_CUDA(deviceId);
            return null;
        }
        catch (Exception ex) when (ex is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException)
        {
            return $"the CUDA execution provider did not load for device {deviceId} ({ex.Message.Trim()}); " +
                   "the bundled ONNX Runtime 1.31 CUDA provider needs an NVIDIA GPU with its driver (libcuda.so.1), the CUDA 13 runtime libraries " +
                   "(libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10) and cuDNN 9 on the library path";
        }
    }

    private (string Name, int[] Dims) FindImageInput()
    {
        var inputs = _session.InputMetadata;
        if (inputs.Count != 1)
            throw NotAClassifier();
        var (name, meta) = (inputs.Keys.First(), inputs.Values.First());
        if (!meta.IsTensor || meta.ElementDataType != TensorElementType.Float || meta.Dimensions.Length != 4 ||
            meta.Dimensions.Skip(1).Any(d => d < 1))
            throw NotAClassifier();
        return (name, meta.Dimensions);
    }

    private string? FindOutput(string name) =>
        _session.OutputMetadata.TryGetValue(name, out var m) && m.IsTensor && m.Dimensions.Length == 2 && m.ElementDataType == TensorElementType.Float ? name : null;

    private OnnxModelFormatException NotAClassifier()
    {
        static string Describe(IReadOnlyDictionary<string, NodeMetadata> values) => string.Join(", ",
            values.Select(v => $"'{v.Key}' {(v.Value.IsTensor ? v.Value.ElementDataType.ToString().ToLowerInvariant() : v.Value.OnnxValueType.ToString())} [{string.Join(", ", v.Value.Dimensions.Select(d => d < 0 ? "N" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)))}]"));
        return new OnnxModelFormatException(
            $"{_source} is not an image classifier: expected one float input of shape [N, C, H, W] ('{OnnxNames.Input}') and a float output " +
            $"'{OnnxNames.ProbabilitiesOutput}' or '{OnnxNames.LogitsOutput}' of shape [N, classes]; it has inputs {Describe(_session.InputMetadata)} " +
            $"and outputs {Describe(_session.OutputMetadata)}. Use a model exported with `resnet export`.");
    }

    private OnnxModelInfo ReadInfo(int[] dims, int classes, IReadOnlyList<string>? classNames)
    {
        var info = OnnxModelInfo.FromMetadata(_session.ModelMetadata.CustomMetadataMap, dims[1], dims[2], dims[3], classes, _source);
        if (classNames is null) return info;
        if (classNames.Count != classes)
            throw new ClassCountMismatchException($"{classNames.Count} class names were given, but {_source} outputs {classes} classes. Give one name per class, in output order.");
        return info with { ClassNames = classNames.ToArray() };
    }

    /// <summary>
    /// Scores <paramref name="count"/> images laid out as [count, C, H, W] RGB floats in the model's pixel range
    /// (<see cref="InputNormalization.Range"/> of <see cref="Info"/>). Thread-safe.
    /// </summary>
    /// <exception cref="InputShapeException">The buffer does not hold <paramref name="count"/> images of the model's shape.</exception>
    /// <param name="images">The images, [count, C, H, W].</param>
    /// <param name="count">How many images the buffer holds.</param>
    /// <param name="features">Also return the pooled features (the model must have them).</param>
    /// <param name="activations">Also return the last stage's activations (the model must have them; see <see cref="HasActivations"/>).</param>
    public ScoreResult Score(ReadOnlyMemory<float> images, int count, bool features = false, bool activations = false)
    {
        Check(images, count, features, activations);
        int per = ImageLength;
        var result = new ScoreResult(count, Info.ClassCount, FeatureCount, features, activations ? ActivationShape : default);
        using var runOptions = new RunOptions();
        for (int start = 0; start < count; start += _maxBatch)
        {
            int n = Math.Min(_maxBatch, count - start);
            RunChunk(runOptions, MemoryMarshal.AsMemory(images.Slice(start * per, n * per)), n, start, result);
        }
        return result;
    }

    private void Check(ReadOnlyMemory<float> images, int count, bool features, bool activations = false)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "The image count cannot be negative.");
        int per = ImageLength;
        if (images.Length != (long)count * per)
            throw new InputShapeException(
                $"{_source} takes images of {Info.Channels}x{Info.Height}x{Info.Width} ({per} floats each, NCHW); got {images.Length} floats for {count} image(s). " +
                "Resize the images and convert them to the model's channel count first (ImageTensors.Load does both).");
        if (features && _featuresName is null)
            throw new InvalidOperationException($"{_source} has no '{OnnxNames.FeaturesOutput}' output; export it with IncludeFeatures = true.");
        if (activations && _activationsName is null)
            throw MissingActivations();
    }

    /// <summary>
    /// Scores like <see cref="Score(ReadOnlyMemory{float}, int, bool, bool)"/>, but requests that arrive while a batch is
    /// running are queued and run together as the next batch (up to <see cref="OnnxScorerOptions.MaxBatchSize"/>
    /// images), so many callers with one image each get batch throughput. With <see cref="OnnxScorerOptions.MaxQueueDelay"/>
    /// a batch also waits that long for more requests. The buffer must stay unchanged until the task ends.
    /// </summary>
    /// <exception cref="ScorerQueueFullException">The queue holds <see cref="OnnxScorerOptions.MaxQueuedImages"/> images already.</exception>
    public Task<ScoreResult> ScoreAsync(ReadOnlyMemory<float> images, int count, bool features = false)
    {
        Check(images, count, features);
        if (count >= _maxBatch) return Task.Run(() => Score(images, count, features));
        if (_maxQueued > 0 && Interlocked.Add(ref _queuedImages, count) > _maxQueued)
        {
            Interlocked.Add(ref _queuedImages, -count);
            throw new ScorerQueueFullException(
                $"{_source}: the scoring queue is full ({_maxQueued} images waiting). Retry shortly, or raise MaxQueuedImages.", _maxQueued);
        }
        if (_maxQueued == 0) Interlocked.Add(ref _queuedImages, count);
        var pending = new Pending(images, count, features, new TaskCompletionSource<ScoreResult>(TaskCreationOptions.RunContinuationsAsynchronously),
            System.Diagnostics.Stopwatch.GetTimestamp());
        if (!_queue.Writer.TryWrite(pending))
        {
            Interlocked.Add(ref _queuedImages, -count);
            throw new ObjectDisposedException(nameof(OnnxScorer));
        }
        _ = _batcher.Value;
        return pending.Done.Task;
    }

    // One reader: takes what has queued up, waits up to MaxQueueDelay for more while the batch has room,
    // runs it as one batch, hands out the rows.
    private async Task BatchLoop()
    {
        var reader = _queue.Reader;
        var batch = new List<Pending>();
        int per = ImageLength;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            int images = Take(reader, batch, 0);
            long deadline = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(_maxDelay.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
            while (images < _maxBatch && _maxDelay > TimeSpan.Zero)
            {
                var left = System.Diagnostics.Stopwatch.GetElapsedTime(System.Diagnostics.Stopwatch.GetTimestamp(), deadline);
                if (System.Diagnostics.Stopwatch.GetTimestamp() >= deadline) break;
                var more = reader.WaitToReadAsync().AsTask();
                if (await Task.WhenAny(more, Task.Delay(left)).ConfigureAwait(false) != more || !await more.ConfigureAwait(false)) break;
                int before = images;
                images = Take(reader, batch, images);
                if (images == before) break; // the next request does not fit: run what we have
            }
            Interlocked.Add(ref _queuedImages, -images);
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                bool features = batch.Any(p => p.Features);
                var packed = new float[images * per];
                int offset = 0;
                foreach (var p in batch)
                {
                    p.Images.Span.CopyTo(packed.AsSpan(offset * per));
                    offset += p.Count;
                }
                var all = Score(packed, images, features);
                // Stats go out before the results, so a caller that has its result also sees its batch counted.
                _batchCompleted?.Invoke(new BatchStats(images, batch.Count,
                    System.Diagnostics.Stopwatch.GetElapsedTime(batch.Min(p => p.Enqueued), started), System.Diagnostics.Stopwatch.GetElapsedTime(started)));
                offset = 0;
                foreach (var p in batch)
                {
                    var r = new ScoreResult(p.Count, all.ClassCount, FeatureCount, p.Features);
                    all.Logits.AsSpan(offset * r.ClassCount, p.Count * r.ClassCount).CopyTo(r.Logits);
                    all.Probabilities.AsSpan(offset * r.ClassCount, p.Count * r.ClassCount).CopyTo(r.Probabilities);
                    if (r.Features is not null) all.Features!.AsSpan(offset * FeatureCount, p.Count * FeatureCount).CopyTo(r.Features);
                    offset += p.Count;
                    p.Done.TrySetResult(r);
                }
            }
            catch (Exception ex)
            {
                foreach (var p in batch) p.Done.TrySetException(ex);
            }
        }
    }

    // Moves waiting requests into the batch while they fit (the first always does); returns the batch's image count.
    private int Take(ChannelReader<Pending> reader, List<Pending> batch, int images)
    {
        while (reader.TryPeek(out var next) && (batch.Count == 0 || images + next.Count <= _maxBatch) && reader.TryRead(out next))
        {
            batch.Add(next);
            images += next.Count;
        }
        return images;
    }

    /// <summary>Scores images given one array per image (each C x H x W floats).</summary>
    /// <param name="images">The images.</param>
    /// <param name="features">Also return the pooled features (the model must have them).</param>
    /// <param name="activations">Also return the last stage's activations (the model must have them; see <see cref="HasActivations"/>).</param>
    public ScoreResult Score(IReadOnlyList<float[]> images, bool features = false, bool activations = false)
    {
        ArgumentNullException.ThrowIfNull(images);
        int per = ImageLength;
        var packed = new float[images.Count * per];
        for (int i = 0; i < images.Count; i++)
        {
            if (images[i].Length != per)
                throw new InputShapeException($"Image {i} has {images[i].Length} floats; {_source} takes {Info.Channels}x{Info.Height}x{Info.Width} = {per}. Resize it and convert its channels first.");
            images[i].CopyTo(packed, i * per);
        }
        return Score(packed, images.Count, features, activations);
    }

    private InvalidOperationException MissingActivations() => new(
        $"{_source} has no '{OnnxNames.ActivationsOutput}' output, which class-activation maps need. Export it again with the activations " +
        "(OnnxExportOptions.IncludeActivations = true; `resnet export` and `resnet train` write them by default).");

    /// <summary>
    /// The class-activation map (CAM; Zhou et al. 2016) of class <paramref name="classIndex"/> for image
    /// <paramref name="image"/> of <paramref name="result"/>: the last stage's activations weighted by the class's row of
    /// the classifier, <c>sum_c W[class, c] * A[c, y, x]</c>, as [Height, Width] row-major. Its mean is the class's logit
    /// less the bias. For a global average pool followed by one fully connected layer, Grad-CAM gives the same map.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model has no activations output, or <paramref name="result"/> was scored without activations.</exception>
    /// <exception cref="OnnxModelFormatException">The classifier's weights cannot be read from the model.</exception>
    public float[] ClassActivationMap(ScoreResult result, int image, int classIndex)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (_activationsName is null) throw MissingActivations();
        if (_classWeights is null) throw new OnnxModelFormatException(_classWeightsProblem!);
        ArgumentOutOfRangeException.ThrowIfNegative(image);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(image, result.Count);
        ArgumentOutOfRangeException.ThrowIfNegative(classIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(classIndex, Info.ClassCount);
        var a = result.ActivationsOf(image);
        var shape = ActivationShape;
        int pixels = shape.Height * shape.Width;
        var map = new float[pixels];
        var w = _classWeights.AsSpan(classIndex * shape.Channels, shape.Channels);
        for (int c = 0; c < shape.Channels; c++)
        {
            float weight = w[c];
            var plane = a.Slice(c * pixels, pixels);
            for (int p = 0; p < pixels; p++) map[p] += weight * plane[p];
        }
        return map;
    }

    private void RunChunk(RunOptions runOptions, Memory<float> input, int n, int start, ScoreResult result)
    {
        int k = result.ClassCount;
        var names = new List<string>(3);
        var outputs = new List<OrtValue>(3);
        var info = OrtMemoryInfo.DefaultInstance;
        try
        {
            // Outputs are written straight into the result arrays.
            if (_logitsName is not null)
            {
                names.Add(_logitsName);
                outputs.Add(OrtValue.CreateTensorValueFromMemory(info, result.Logits.AsMemory(start * k, n * k), [n, k]));
            }
            if (_probabilitiesName is not null)
            {
                names.Add(_probabilitiesName);
                outputs.Add(OrtValue.CreateTensorValueFromMemory(info, result.Probabilities.AsMemory(start * k, n * k), [n, k]));
            }
            if (result.Features is not null)
            {
                names.Add(_featuresName!);
                outputs.Add(OrtValue.CreateTensorValueFromMemory(info, result.Features.AsMemory(start * FeatureCount, n * FeatureCount), [n, FeatureCount]));
            }
            if (result.Activations is not null)
            {
                var a = ActivationShape;
                names.Add(_activationsName!);
                outputs.Add(OrtValue.CreateTensorValueFromMemory(info, result.Activations.AsMemory(start * a.Length, n * a.Length), [n, a.Channels, a.Height, a.Width]));
            }
            using var x = OrtValue.CreateTensorValueFromMemory(info, input, [n, Info.Channels, Info.Height, Info.Width]);
            _session.Run(runOptions, [_inputName], [x], names, outputs);
            Interlocked.Increment(ref _runs);
        }
        finally
        {
            foreach (var o in outputs) o.Dispose();
        }
        if (_probabilitiesName is null) Softmax(result.Logits.AsSpan(start * k, n * k), result.Probabilities.AsSpan(start * k, n * k), k);
        if (_logitsName is null) result.Probabilities.AsSpan(start * k, n * k).CopyTo(result.Logits.AsSpan(start * k, n * k));
    }

    private static void Softmax(ReadOnlySpan<float> logits, Span<float> probabilities, int k)
    {
        for (int row = 0; row < logits.Length / k; row++)
        {
            var l = logits.Slice(row * k, k);
            var p = probabilities.Slice(row * k, k);
            float max = float.NegativeInfinity;
            foreach (float v in l) max = Math.Max(max, v);
            double sum = 0;
            for (int c = 0; c < k; c++) sum += p[c] = MathF.Exp(l[c] - max);
            for (int c = 0; c < k; c++) p[c] = (float)(p[c] / sum);
        }
    }

    /// <summary>The <paramref name="k"/> most probable classes of image <paramref name="i"/>, best first.</summary>
    public IReadOnlyList<ClassScore> TopK(ScoreResult result, int i, int k)
    {
        ArgumentNullException.ThrowIfNull(result);
        var p = result.ProbabilitiesOf(i).ToArray();
        return Enumerable.Range(0, p.Length).OrderByDescending(c => p[c]).ThenBy(c => c)
            .Take(Math.Max(1, k)).Select(c => new ClassScore(c, Info.ClassNames[c], p[c])).ToArray();
    }

    /// <summary>Finishes queued <see cref="ScoreAsync"/> requests, then releases the ONNX Runtime session.</summary>
    public void Dispose()
    {
        _queue.Writer.TryComplete();
        if (_batcher.IsValueCreated) _batcher.Value.GetAwaiter().GetResult();
        if (Interlocked.Exchange(ref _disposed, 1) == 0) _session.Dispose();
    }
}
