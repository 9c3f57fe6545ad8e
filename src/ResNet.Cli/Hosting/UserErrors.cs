using System.CommandLine;
using System.CommandLine.Parsing;
using System.Runtime.InteropServices;
using System.Text.Json;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using ResNet.Trainer.Training;

namespace ResNet.Cli.Hosting;

/// <summary>
/// The one place where an exception becomes what a user reads: "error: " and the message (which names the input and
/// the fix), no stack trace unless --verbose, and the exit code. Every command runs its body through <see cref="Run"/>.
/// </summary>
internal static class UserErrors
{
    /// <summary>Exit code for a user mistake (bad option, missing or corrupt input, unwritable output).</summary>
    public const int BadInput = 2;

    /// <summary>Exit code for a failure that is not the user's (a bug): the message asks for --verbose and a report.</summary>
    public const int Internal = 1;

    /// <summary>Exit code for a run stopped by Ctrl-C (128 + SIGINT); <see cref="Interruption"/> turns it into 143 for SIGTERM.</summary>
    public const int Interrupted = 130;

    /// <summary><c>--verbose</c>, on every command: print the stack trace of an error.</summary>
    public static readonly Option<bool> Verbose = new("--verbose") { Description = "On an error, also print the exception's stack trace.", Recursive = true };

    /// <summary>Runs a command body; any exception is reported and mapped to an exit code.</summary>
    public static int Run(ParseResult parse, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception ex)
        {
            return Report(ex, parse.InvocationConfiguration.Error, parse.GetValue(Verbose));
        }
    }

    /// <summary>Writes <paramref name="ex"/> for a user and returns the exit code.</summary>
    public static int Report(Exception ex, TextWriter error, bool verbose)
    {
        var inner = Unwrap(ex);
        int code = Classify(inner);
        if (code == Interrupted)
            error.WriteLine("Interrupted.");
        else if (code == Internal)
            error.WriteLine($"error: {FirstLines(inner.Message)} ({inner.GetType().Name}). This is a fault in resnet, not in your input; run again with --verbose and report the trace.");
        else
            error.WriteLine("error: " + FirstLines(inner switch
            {
                InvalidTrainingOptionException bad => ResNet.Cli.Reporting.OptionFlags.Message(bad), // the flag, not the property
                ArgumentException arg => WithoutParameter(arg),
                _ => inner.Message,
            }));
        if (verbose) error.WriteLine(ex.ToString());
        return code;
    }

    /// <summary>
    /// Reports what the parser refused (an unknown option, a value that is not a number, a missing required option) as the
    /// other user mistakes are: one <c>error:</c> line each, naming the input and the fix, then where the options are listed;
    /// exit code <see cref="BadInput"/>. <paramref name="refused"/> is <see cref="ParseErrors"/> of the same parse.
    /// </summary>
    public static int ReportParseErrors(ParseResult parse, IReadOnlyList<string> refused, TextWriter error)
    {
        foreach (var message in refused) error.WriteLine("error: " + message);
        var names = new List<string>();
        for (SymbolResult? r = parse.CommandResult; r is System.CommandLine.Parsing.CommandResult c && c.Command is not RootCommand; r = r.Parent)
            names.Insert(0, c.Command.Name);
        error.WriteLine($"The options are listed by `resnet {string.Join(' ', names)}{(names.Count > 0 ? " " : "")}--help`.");
        return BadInput;
    }

    /// <summary>
    /// What the parser refused, and the decimal commas it took: the parser reads numbers in the invariant culture, where
    /// <c>--lr 0,5</c> is 5 (a thousands separator), so a comma in a number is refused rather than read as a different value.
    /// </summary>
    public static IReadOnlyList<string> ParseErrors(ParseResult parse)
    {
        var messages = parse.Errors.Select(ParseMessage).ToList();
        for (SymbolResult? r = parse.CommandResult; r is System.CommandLine.Parsing.CommandResult c; r = r.Parent)
            foreach (var o in c.Children.OfType<OptionResult>())
                if ((Nullable.GetUnderlyingType(o.Option.ValueType) ?? o.Option.ValueType) == typeof(double) && o.Tokens is [var t] && t.Value.Contains(','))
                    messages.Add($"{o.Option.Name} {t.Value} is not valid: {DecimalFix}");
        return messages;
    }

    private const string DecimalFix = "give a number, with a point for decimals (e.g. 0.5)";

    // A value that does not parse as its option's number type is named as our own checks name values: "--threads abc is not valid: ...".
    private static string ParseMessage(ParseError e)
    {
        if (e.SymbolResult is OptionResult { Option: var option, Tokens: [var token] })
        {
            var type = Nullable.GetUnderlyingType(option.ValueType) ?? option.ValueType;
            var inv = System.Globalization.CultureInfo.InvariantCulture;
            if ((type == typeof(int) || type == typeof(long)) && !long.TryParse(token.Value, System.Globalization.NumberStyles.Integer, inv, out _))
                return $"{option.Name} {token.Value} is not valid: give a whole number";
            if (type == typeof(double) && !double.TryParse(token.Value, System.Globalization.NumberStyles.Float, inv, out _))
                return $"{option.Name} {token.Value} is not valid: {DecimalFix}";
        }
        return e.Message;
    }

    /// <summary>The exception that says what went wrong: aggregates (parallel loops) and invocation wrappers removed.</summary>
    public static Exception Unwrap(Exception ex)
    {
        while (true)
        {
            switch (ex)
            {
                case AggregateException agg:
                    var flat = agg.Flatten().InnerExceptions;
                    // A user mistake (e.g. a corrupt file) wins over the cancellations it caused in sibling tasks.
                    ex = flat.FirstOrDefault(e => e is not OperationCanceledException) ?? flat.FirstOrDefault() ?? agg;
                    if (ex == agg) return ex;
                    continue;
                case System.Reflection.TargetInvocationException { InnerException: { } i }:
                    ex = i;
                    continue;
                case TypeInitializationException { InnerException: { } t }:
                    ex = t;
                    continue;
                default:
                    return ex;
            }
        }
    }

    private static int Classify(Exception ex) => ex switch
    {
        OperationCanceledException => Interrupted,
        // Kinds of user mistake the libraries raise; each message names the input and the fix.
        InvalidDatasetException or CorruptDataException or CheckpointMismatchException or DeviceUnavailableException
            or TrainingDivergedException or UnknownArchitectureException or WeightsMismatchException
            or OnnxModelFormatException or ExecutionProviderUnavailableException => BadInput,
        // The file system and the formats: missing or corrupt files, no permission, a full disk.
        IOException or UnauthorizedAccessException or InvalidDataException or JsonException => BadInput,
        // Bad values of options (ArgumentOutOfRange and the library's argument-derived exceptions included).
        ArgumentException => BadInput,
        // libtorch reports its checks (bad values, shapes, out of memory) as SEHException/ExternalException.
        ExternalException => BadInput,
        Microsoft.ML.OnnxRuntime.OnnxRuntimeException => BadInput,
        _ => Internal,
    };

    // ArgumentException appends " (Parameter 'name')", the name of a C# parameter a command-line user never saw.
    private static string WithoutParameter(ArgumentException ex) =>
        ex.ParamName is null ? ex.Message : ex.Message.Replace($" (Parameter '{ex.ParamName}')", "", StringComparison.Ordinal);

    // libtorch appends C++ frames ("Exception raised from ...", "frame #0: ...") to its messages; a user needs the first line.
    private static string FirstLines(string message)
    {
        int cut = message.IndexOf("Exception raised from", StringComparison.Ordinal);
        if (cut < 0) cut = message.IndexOf("\nframe #", StringComparison.Ordinal);
        return (cut >= 0 ? message[..cut] : message).Trim();
    }
}
