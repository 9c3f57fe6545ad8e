using System.CommandLine;
using ResNet.Cli.Commands;
using ResNet.Cli.Hosting;

namespace ResNet.Cli;

/// <summary>The <c>resnet</c> command line.</summary>
public static class Program
{
    /// <summary>Builds the command tree; each subcommand lives in its own file under <c>Commands/</c>.</summary>
    public static RootCommand BuildRoot(TextWriter output)
    {
        var root = new RootCommand("resnet: deep residual networks (He et al. 2015) for .NET: train, evaluate, export, inspect.");
        root.Options.Add(UserErrors.Verbose);
        root.Subcommands.Add(InfoCommand.Create(output));
        root.Subcommands.Add(ExportCommand.Create(output));
        root.Subcommands.Add(PredictCommand.Create(output));
        root.Subcommands.Add(TrainCommand.Create(output));
        root.Subcommands.Add(EvaluateCommand.Create(output));
        root.Subcommands.Add(QuantizeCommand.Create(output));
        root.Subcommands.Add(DemoCommand.Create(output));
        root.Subcommands.Add(ExperimentCommand.Create(output));
        root.Subcommands.Add(ServeCommand.Create(output));
        return root;
    }

    /// <summary>Runs the command line and returns the process exit code; <paramref name="cancellationToken"/> stops it as Ctrl-C does.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var root = BuildRoot(output);
        // Signals are ours (Interruption): System.CommandLine's handler would end the process 2 s after Ctrl-C, mid-checkpoint.
        var config = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null };
        try
        {
            var parse = root.Parse(args);
            // With no arguments at all, System.CommandLine shows the help, which is what a first-time user wants.
            if (args.Length > 0 && UserErrors.ParseErrors(parse) is { Count: > 0 } refused) return UserErrors.ReportParseErrors(parse, refused, error);
            return parse.InvokeAsync(config, cancellationToken).GetAwaiter().GetResult();
        }
        catch (Exception ex)
        {
            return UserErrors.Report(ex, error, args.Contains("--verbose"));
        }
    }

    private static int Main(string[] args)
    {
        using var interruption = new Interruption(Console.Error);
        return interruption.ExitCode(Run(args, Console.Out, Console.Error, interruption.Token));
    }
}
