using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace ResNet.MLNet;

/// <summary>
/// The caller's ML.NET environment, and the catalogs every inner chain (decode, resize, pixels, ONNX) is built from,
/// so that the user's MLContext settings reach each transform a ResNet component makes: its log, and its
/// <c>GpuDeviceId</c> / <c>FallbackToCpu</c>, which also choose the execution provider of the batched scorer.
/// ML.NET keeps these behind internal members (the catalogs' constructors, <c>IHostEnvironmentInternal</c>); they are
/// reached by reflection here, and only here.
/// </summary>
internal sealed class MLEnvironment
{
    private const BindingFlags Members = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;

    private MLEnvironment(IHostEnvironment host, TransformsCatalog transforms, DataOperationsCatalog data)
    {
        Host = host;
        Transforms = transforms;
        Data = data;
    }

    /// <summary>The environment: messages written to its channels arrive in <c>mlContext.Log</c>.</summary>
    public IHostEnvironment Host { get; }

    /// <summary>The transforms catalog on <see cref="Host"/>.</summary>
    public TransformsCatalog Transforms { get; }

    /// <summary>The data catalog on <see cref="Host"/>.</summary>
    public DataOperationsCatalog Data { get; }

    /// <summary>The environment of <paramref name="env"/>, with ResNet's custom mappings registered in it.</summary>
    public static MLEnvironment Of(IHostEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(env);
        env.RegisterResNet();
        return env is MLContext ml
            ? new MLEnvironment(ml, ml.Transforms, ml.Data)
            : new MLEnvironment(env, Catalog<TransformsCatalog>(env), Catalog<DataOperationsCatalog>(env));
    }

    /// <summary><c>mlContext.GpuDeviceId</c>: the CUDA device to score on, or null for the CPU.</summary>
    public int? GpuDeviceId => Setting<int?>(nameof(MLContext.GpuDeviceId));

    /// <summary><c>mlContext.FallbackToCpu</c>: score on the CPU, with a warning, when the CUDA device cannot be used.</summary>
    public bool FallbackToCpu => Setting<bool>(nameof(MLContext.FallbackToCpu));

    /// <summary>Writes a warning to <c>mlContext.Log</c>.</summary>
    public void Warning(string message)
    {
        using var ch = Host.Start("ResNet");
        ch.Warning(MessageSensitivity.None, "{0}", message);
    }

    /// <summary>
    /// Opens the batched scorer on the device the context asks for: CPU when <c>GpuDeviceId</c> is null; CUDA with a
    /// fallback to the CPU (and the same warning as <c>resnet predict --device cuda</c>, in <c>mlContext.Log</c>) when
    /// <c>FallbackToCpu</c> is set; CUDA or a <see cref="ExecutionProviderUnavailableException"/> that names the setting otherwise.
    /// </summary>
    public OnnxScorer OpenScorer(byte[] onnx, string source, int batchSize, IReadOnlyList<string>? classNames = null, int threads = 0)
    {
        int? device = GpuDeviceId;
        var options = new OnnxScorerOptions
        {
            MaxBatchSize = Math.Max(1, batchSize),
            ClassNames = classNames,
            IntraOpThreads = threads,
            ExecutionProvider = device is null ? ExecutionProviderPreference.Cpu
                : FallbackToCpu ? ExecutionProviderPreference.Cuda : ExecutionProviderPreference.CudaOnly,
            CudaDeviceId = device ?? 0,
            Log = Warning,
        };
        try
        {
            return new OnnxScorer(onnx, options, source);
        }
        catch (ExecutionProviderUnavailableException ex) when (device is int id)
        {
            throw DeviceUnavailable(id, ex.Reason ?? ex.Message, ex);
        }
    }

    /// <summary>
    /// Fails now, with the message <see cref="OpenScorer"/> would give, when the context asks for a CUDA device without
    /// a fallback and that device cannot be used; ML.NET's own loader would otherwise fail first, with its own words.
    /// </summary>
    public void EnsureDeviceUsable()
    {
        if (GpuDeviceId is int id && !FallbackToCpu && OnnxScorer.CudaUnavailableReason(id) is { } reason)
            throw DeviceUnavailable(id, reason, null);
    }

    private static ExecutionProviderUnavailableException DeviceUnavailable(int id, string reason, Exception? inner) => new(
        $"mlContext.GpuDeviceId is {id} and mlContext.FallbackToCpu is false, but CUDA cannot be used: {reason}. " +
        "Set mlContext.FallbackToCpu = true to score on the CPU when CUDA is missing (with a warning in mlContext.Log), " +
        "or leave mlContext.GpuDeviceId null to score on the CPU.", inner);

    // MLContext and ML.NET's environments expose these as properties of IHostEnvironmentInternal, which is internal.
    private T? Setting<T>(string name) =>
        Host.GetType().GetProperty(name, Members) is { } p && p.GetValue(Host) is T value ? value : default;

    private static T Catalog<T>(IHostEnvironment env) where T : class =>
        typeof(T).GetConstructor(Members, [typeof(IHostEnvironment)])?.Invoke([env]) as T
        ?? throw new InvalidOperationException(
            $"Could not build ML.NET's {typeof(T).Name} on this environment (a different ML.NET version?); create the estimator directly: new ResNetClassifierEstimator(mlContext, options).");
}
