using System.Globalization;
using ResNet.Trainer.Training;

namespace ResNet.Cli.Reporting;

/// <summary>Prints training progress: a live bar on a terminal, one line per epoch everywhere.</summary>
internal sealed class ProgressPrinter(TextWriter output, bool live) : IProgress<TrainingProgress>
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private bool _lineOpen;

    public static bool IsTerminal(TextWriter output) => ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;

    public void Report(TrainingProgress p)
    {
        switch (p.Kind)
        {
            case ProgressKind.Iteration when live:
                double share = p.TotalIterations == 0 ? 0 : (double)p.Iteration / p.TotalIterations;
                int filled = (int)(share * 24);
                output.Write(string.Create(Inv,
                    $"\r[{new string('#', filled)}{new string('-', 24 - filled)}] epoch {p.Epoch}/{p.Epochs} it {p.Iteration}/{p.TotalIterations} loss {p.Loss:F3} err {p.TrainError:P1} lr {p.LearningRate:G3} {p.ImagesPerSecond:F0} img/s ETA {Eta(p.Eta)}   "));
                _lineOpen = true;
                break;
            case ProgressKind.Epoch:
                EndLine();
                output.WriteLine(string.Create(Inv,
                    $"epoch {p.Epoch,3}/{p.Epochs}  loss {p.Loss:F4}  train err {p.TrainError,6:P1}{(p.ValidationError is double v ? $"  val err {v,6:P1}" : "")}  lr {p.LearningRate:G3}  {p.ImagesPerSecond:F0} img/s  ETA {Eta(p.Eta)}"));
                break;
            case ProgressKind.Message:
                EndLine();
                output.WriteLine(p.Message);
                break;
            case ProgressKind.Warning:
                EndLine();
                output.WriteLine("warning: " + p.Message);
                break;
        }
    }

    public void EndLine()
    {
        if (_lineOpen) { output.WriteLine(); _lineOpen = false; }
    }

    private static string Eta(TimeSpan t) => t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss", Inv) : t.ToString(@"m\:ss", Inv);
}
