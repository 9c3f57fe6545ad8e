using System.CommandLine;
using ResNet.Cli.Commands;

namespace ResNet.Cli;

/// <summary>The <c>resnet</c> command line.</summary>
public static class Program
{
    /// <summary>Builds the command tree; each subcommand lives in its own file under <c>Commands/</c>.</summary>
    public static RootCommand BuildRoot(TextWriter output)
    {
        var root = new RootCommand("resnet: deep residual networks (He et al. 2015) for .NET: train, evaluate, export, inspect.");
        root.Subcommands.Add(InfoCommand.Create(output));
        root.Subcommands.Add(ExportCommand.Create(output));
        root.Subcommands.Add(PredictCommand.Create(output));
        root.Subcommands.Add(TrainCommand.Create(output));
        root.Subcommands.Add(EvaluateCommand.Create(output));
        root.Subcommands.Add(QuantizeCommand.Create(output));
        root.Subcommands.Add(DemoCommand.Create(output));
        root.Subcommands.Add(ExperimentCommand.Create(output));
        return root;
    }

    /// <summary>Runs the command line and returns the process exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = BuildRoot(output);
        var config = new InvocationConfiguration { Output = output, Error = error };
        return root.Parse(args).Invoke(config);
    }

    private static int Main(string[] args) => Run(args, Console.Out, Console.Error);
}
