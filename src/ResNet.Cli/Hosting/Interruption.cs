using System.Runtime.InteropServices;

namespace ResNet.Cli.Hosting;

/// <summary>
/// Ctrl-C and SIGTERM for the <c>resnet</c> process: the first one cancels <see cref="Token"/> (training stops after
/// the current iteration and writes its checkpoint and weights; other commands stop cleanly), a second one exits at
/// once. System.CommandLine's own handler is off (its timeout would kill the process while a checkpoint is written).
/// </summary>
internal sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly TextWriter _error;
    private readonly PosixSignalRegistration[] _registrations;
    private int _exitCode; // 0 until a signal arrives, then 130 (SIGINT) or 143 (SIGTERM)

    public Interruption(TextWriter error)
    {
        _error = error;
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle), PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle)];
    }

    /// <summary>Cancelled by the first signal.</summary>
    public CancellationToken Token => _cts.Token;

    /// <summary>The process exit code for a command's <paramref name="code"/>: 128 + the signal's number when a signal stopped it.</summary>
    public int ExitCode(int code) => code == UserErrors.Interrupted && _exitCode != 0 ? _exitCode : code;

    private void Handle(PosixSignalContext context)
    {
        context.Cancel = true; // the run decides when to end: after the checkpoint is written
        int code = context.Signal == PosixSignal.SIGTERM ? 143 : 130;
        if (Interlocked.CompareExchange(ref _exitCode, code, 0) != 0)
        {
            _error.WriteLine($"{context.Signal} again: exiting now, without waiting for the current step.");
            _error.Flush();
            Console.Out.Flush();
            // At once: Environment.Exit would run libtorch's static destructors under its running threads (SIGSEGV).
            if (OperatingSystem.IsWindows()) Environment.Exit(code);
            _exit(code);
        }
        _error.WriteLine($"{context.Signal}: stopping after the current step and saving what there is (again to exit at once).");
        _error.Flush();
        _cts.Cancel();
    }

    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void _exit(int status);

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _cts.Dispose();
    }
}
