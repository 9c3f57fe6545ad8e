namespace ResNet.Scoring;

/// <summary>
/// The file is not a usable ONNX model for this purpose: truncated, not ONNX at all, or an ONNX model of the
/// wrong kind (e.g. not an image classifier). The message names the file and what was expected.
/// </summary>
public sealed class OnnxModelFormatException : IOException
{
    /// <summary>Creates the exception with a message that names the input and the fix.</summary>
    public OnnxModelFormatException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the low-level cause.</summary>
    public OnnxModelFormatException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>The model's class count and the class names (labels) given with it differ.</summary>
public sealed class ClassCountMismatchException(string message) : ArgumentException(message);

/// <summary>Images or tensors handed to a scorer do not have the model's input shape (channels, height, width).</summary>
public sealed class InputShapeException(string message) : ArgumentException(message);

/// <summary>The execution provider the user required (e.g. CUDA only) is not available on this machine.</summary>
public sealed class ExecutionProviderUnavailableException(string message, Exception? inner = null)
    : InvalidOperationException(message, inner)
{
    /// <summary>Why the provider cannot be used, without the advice (for callers that word the fix in their own terms).</summary>
    internal string? Reason { get; init; }
}

/// <summary>
/// <see cref="OnnxScorer.ScoreAsync"/> was called while its queue already held
/// <see cref="OnnxScorerOptions.MaxQueuedImages"/> images: the caller should retry shortly (a server answers 503).
/// </summary>
public sealed class ScorerQueueFullException(string message, int capacity) : InvalidOperationException(message)
{
    /// <summary>The queue's capacity in images.</summary>
    public int Capacity { get; } = capacity;
}
