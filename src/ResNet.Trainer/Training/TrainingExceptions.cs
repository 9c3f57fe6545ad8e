namespace ResNet.Trainer.Training;

/// <summary>The loss became NaN or infinite. Training stopped; the last good checkpoint (if any) is untouched.</summary>
public sealed class TrainingDivergedException(string message, string? lastGoodCheckpoint) : Exception(message)
{
    /// <summary>The checkpoint written before the loss diverged, or null when none was written.</summary>
    public string? LastGoodCheckpoint { get; } = lastGoodCheckpoint;
}

/// <summary>A checkpoint or model file belongs to another architecture (or class/channel count) than the model it is loaded into.</summary>
public sealed class CheckpointMismatchException(string message, string path) : Exception(message)
{
    /// <summary>The checkpoint file.</summary>
    public string Path { get; } = path;
}

/// <summary>The requested device (e.g. <c>cuda</c>) is not available on this machine.</summary>
public sealed class DeviceUnavailableException(string message) : Exception(message);

/// <summary>A recipe or schedule name that does not exist; the message lists the valid ones.</summary>
public sealed class UnknownRecipeException(string message) : ArgumentException(message);
