using ResNet.Trainer.Training;

namespace ResNet.Cli.Reporting;

/// <summary>
/// The command line's spelling of the library's option names: library messages name <see cref="TrainingOverrides"/>
/// properties (<c>LearningRate</c>), a CLI user reads the flag (<c>--lr</c>).
/// </summary>
internal static class OptionFlags
{
    // Flags that are not the kebab-case of their property's name.
    private static readonly Dictionary<string, string> Irregular = new()
    {
        [nameof(TrainingOverrides.LearningRate)] = "--lr",
        [nameof(TrainingOverrides.Augmentation)] = "--augment",
        [nameof(TrainingOverrides.Normalization)] = "--normalize",
        [nameof(TrainingOverrides.ValidationFraction)] = "--validation",
        [nameof(TrainingOverrides.EarlyStoppingPatience)] = "--early-stopping",
        [nameof(TrainingOverrides.CheckpointDirectory)] = "--output",
        [nameof(TrainingOverrides.EmaDecay)] = "--ema",
        [nameof(DegradationOptions.TrainingImages)] = "--subset",
    };

    /// <summary>The flag of a <see cref="TrainingOverrides"/> property, e.g. <c>--batch-size</c> for <c>BatchSize</c>.</summary>
    public static string For(string property)
    {
        if (Irregular.TryGetValue(property, out var flag)) return flag;
        var sb = new System.Text.StringBuilder("--");
        for (int i = 0; i < property.Length; i++)
        {
            if (char.IsUpper(property[i]) && i > 0) sb.Append('-');
            sb.Append(char.ToLowerInvariant(property[i]));
        }
        return sb.ToString();
    }

    /// <summary>The message to show a CLI user: a bad training value is named by its flag.</summary>
    public static string Message(Exception ex) =>
        ex is InvalidTrainingOptionException bad ? bad.MessageFor(For(bad.Option)) : ex.Message;
}
