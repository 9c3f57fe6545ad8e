using System.Runtime.InteropServices;
using ResNet.Cli.Hosting;
using ResNet.Trainer.Data;

namespace ResNet.Cli.Tests.BadInput;

/// <summary>The one exception-to-message mapping: every kind the code raises gives one line and the right exit code.</summary>
public class UserErrorsTests
{
    public static TheoryData<string, int, string> Kinds() => new()
    {
        { "aggregate", 2, "error: Image 'x.png' is truncated." },
        { "invalid-data", 2, "error: bad card" },
        { "unauthorized", 2, "error: Access to the path '/root/x' is denied." },
        { "io", 2, "error: disk full" },
        { "libtorch", 2, "error: Expected a non-negative number of threads" },
        { "cancelled", 130, "Interrupted." },
        { "argument", 2, "error: --lr must be finite" },
        { "bug", 1, "error: boom (NullReferenceException). This is a fault in resnet" },
    };

    private static Exception Make(string kind) => kind switch
    {
        // A decode error inside Parallel.For, beside the cancellation it caused in a sibling task.
        "aggregate" => new AggregateException(new OperationCanceledException(), new AggregateException(new CorruptDataException("Image 'x.png' is truncated.", "x.png"))),
        "invalid-data" => new InvalidDataException("bad card"),
        "unauthorized" => new UnauthorizedAccessException("Access to the path '/root/x' is denied."),
        "io" => new IOException("disk full"),
        "libtorch" => new ExternalException("Expected a non-negative number of threads\nException raised from set_num_threads at aten/src/ATen/ParallelCommon.cpp:42\nframe #0: c10::Error::Error"),
        "cancelled" => new OperationCanceledException(),
        "argument" => new ArgumentOutOfRangeException("learningRate", "--lr must be finite"),
        _ => new NullReferenceException("boom"),
    };

    [Theory]
    [MemberData(nameof(Kinds))]
    public void EachKind_OneLine_RightExitCode(string kind, int code, string line)
    {
        var error = new StringWriter();
        Assert.Equal(code, UserErrors.Report(Make(kind), error, verbose: false));
        string text = error.ToString().TrimEnd();
        Assert.StartsWith(line, text);
        Assert.DoesNotContain('\n', text);
        Assert.DoesNotContain("Parameter", text);
    }

    [Fact]
    public void Verbose_AddsTheTrace()
    {
        Exception thrown;
        try { throw new IOException("disk full"); } catch (IOException ex) { thrown = ex; }
        var error = new StringWriter();
        UserErrors.Report(thrown, error, verbose: true);
        Assert.Contains("   at ", error.ToString());
    }
}
