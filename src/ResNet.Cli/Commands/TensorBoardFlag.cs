using System.CommandLine;
using ResNet.Trainer.Training;

namespace ResNet.Cli.Commands;

/// <summary><c>--tensorboard &lt;dir&gt;</c>: the run's progress and confusion matrix as TensorBoard event files.</summary>
internal static class TensorBoardFlag
{
    public static readonly Option<string?> Option = new("--tensorboard") { Description = "Also write TensorBoard logs (loss, errors, learning rate, images/s, confusion matrix) to this folder." };

    /// <summary>The writer when the flag was given (and the command has it), else null.</summary>
    public static TensorBoardWriter? Open(ParseResult parse) =>
        parse.GetResult(Option) is not null && parse.GetValue(Option) is { Length: > 0 } folder ? new TensorBoardWriter(folder) : null;
}
