using System.Reflection;
using System.Runtime.CompilerServices;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace ResNet.Tests;

/// <summary>
/// One temporary folder per test process, removed when the tests are done. Tests write models, image folders,
/// checkpoints and exported networks (several hundred MB in a run) through <see cref="Path.GetTempPath"/> and
/// <see cref="Directory.CreateTempSubdirectory(string?)"/>; pointing TMPDIR at this folder before the first test runs
/// sends all of it here, and child processes (the CLI, the Python peers, servers) inherit it.
/// </summary>
/// <remarks>
/// The folder goes when the last test has finished, before xunit reports the assembly finished (see
/// <see cref="TestRunTempFramework"/>): the test platform may end the test host as soon as that report arrives, so a
/// process-exit handler alone left most of the folder behind. That handler stays for runs that execute no test.
/// </remarks>
internal static class TestRunTemp
{
    /// <summary>The folder every temporary path of this process lies under.</summary>
    public static string Root { get; private set; } = "";

    [ModuleInitializer]
    internal static void Initialize()
    {
        Root = Directory.CreateTempSubdirectory("resnet-test-run-").FullName;
        Environment.SetEnvironmentVariable("TMPDIR", Root);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Remove();
    }

    /// <summary>Deletes the folder and everything in it; what a lingering child process still holds is left.</summary>
    public static void Remove()
    {
        try { Directory.Delete(Root, recursive: true); }
        catch (DirectoryNotFoundException) { }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}

/// <summary>xunit's own framework, with <see cref="TestRunTemp.Remove"/> run after the last test of the assembly.</summary>
public sealed class TestRunTempFramework(IMessageSink messageSink) : XunitTestFramework(messageSink)
{
    /// <inheritdoc />
    protected override ITestFrameworkExecutor CreateExecutor(AssemblyName assemblyName) =>
        new Executor(assemblyName, SourceInformationProvider, DiagnosticMessageSink);

    private sealed class Executor(AssemblyName assemblyName, ISourceInformationProvider sourceInformation, IMessageSink diagnostics)
        : XunitTestFrameworkExecutor(assemblyName, sourceInformation, diagnostics)
    {
        protected override async void RunTestCases(IEnumerable<IXunitTestCase> testCases, IMessageSink executionMessageSink, ITestFrameworkExecutionOptions executionOptions)
        {
            using var runner = new Runner(TestAssembly, testCases, DiagnosticMessageSink, executionMessageSink, executionOptions);
            await runner.RunAsync();
        }
    }

    private sealed class Runner(ITestAssembly assembly, IEnumerable<IXunitTestCase> testCases, IMessageSink diagnostics, IMessageSink execution, ITestFrameworkExecutionOptions options)
        : XunitTestAssemblyRunner(assembly, testCases, diagnostics, execution, options)
    {
        protected override Task BeforeTestAssemblyFinishedAsync()
        {
            TestRunTemp.Remove();
            return base.BeforeTestAssemblyFinishedAsync();
        }
    }
}
