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

/// <summary>
/// A training option is out of range (a learning rate that is not a positive number, zero epochs, ...). Thrown before any
/// data is read or any file is written; the message names the option, the value and what to give instead.
/// </summary>
public sealed class InvalidTrainingOptionException : ArgumentException
{
    /// <summary>Creates the exception for <paramref name="option"/> holding <paramref name="value"/>.</summary>
    /// <param name="option">The option's name as <see cref="TrainingOptions"/> and <see cref="TrainingOverrides"/> spell it (e.g. <c>LearningRate</c>).</param>
    /// <param name="value">The refused value, as text.</param>
    /// <param name="requirement">What a valid value is, e.g. "give a finite number above 0".</param>
    public InvalidTrainingOptionException(string option, string value, string requirement)
        : base($"{option} = {value} is not valid: {requirement}.")
    {
        Option = option;
        Value = value;
        Requirement = requirement;
    }

    /// <summary>The option's property name (e.g. <c>LearningRate</c>); a command line maps it to its flag.</summary>
    public string Option { get; }

    /// <summary>The refused value, as text.</summary>
    public string Value { get; }

    /// <summary>What a valid value is.</summary>
    public string Requirement { get; }

    /// <summary>The message with the option spelled as <paramref name="optionName"/> (e.g. a command-line flag).</summary>
    public string MessageFor(string optionName) => $"{optionName} {Value} is not valid: {Requirement}.";
}
