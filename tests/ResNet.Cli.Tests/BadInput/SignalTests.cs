using System.Diagnostics;
using System.Text.Json;
using ResNet.Trainer.Data;

namespace ResNet.Cli.Tests.BadInput;

/// <summary>
/// A real <c>resnet train</c> process, on a terminal as a user's is, gets SIGINT or SIGTERM in the middle of epoch 2: it must
/// exit 130/143 after writing the checkpoint and the weights of that moment, and <c>--resume</c> must end with the
/// per-epoch losses of an uninterrupted run of the same seed.
/// </summary>
/// <remarks>
/// The terminal's launcher sends the signal the moment the progress bar shows iteration 110 (of 100 per epoch), not after a sleep: an epoch
/// of this run takes under a second, and on a busy machine its length varied 2x from one epoch to the next, which put
/// timed signals into the wrong epoch or onto its boundary.
/// </remarks>
public sealed class SignalTests(SignalTests.Workspace workspace) : IClassFixture<SignalTests.Workspace>
{
    private const int PerEpoch = 100; // 400 images, batch 4
    private const int SignalAt = PerEpoch + 10; // the first progress report of epoch 2 (the bar is redrawn every 10 iterations)
    // Equal to the last digit in practice (same seed, same thread count, the checkpoint holds the epoch's running sums).
    private const double LossTolerance = 1e-9;

    /// <summary>The class's folder: 400 Fashion-MNIST PNGs in class folders, the runs' outputs; deleted after the last test.</summary>
    public sealed class Workspace : IDisposable
    {
        public Workspace()
        {
            var images = InMemoryImages.From(DatasetSplit.Balanced(Idx.LoadSplit("/usr/share/datasets/fashion-mnist", train: true), 40));
            for (int i = 0; i < images.Count; i++)
                ImageDecoder.SavePng(images.Load(i), Path.Combine(Root, "data", images.ClassNames[images.LabelOf(i)], $"{i:D4}.png"));
            Uninterrupted = new(() =>
            {
                string output = Path.Combine(Root, "uninterrupted");
                var (code, _, err) = Cli.Run(TrainArgs(output));
                Assert.True(code == 0, err);
                return Losses(output);
            });
        }

        public string Root { get; } = Directory.CreateTempSubdirectory("resnet-signal-").FullName;

        /// <summary>The per-epoch training losses of the same run, not interrupted.</summary>
        public Lazy<double[]> Uninterrupted { get; }

        public string[] TrainArgs(string output) =>
            ["train", "--data", Path.Combine(Root, "data"), "--output", output, "--arch", "resnet8", "--epochs", "3", "--batch-size", "4",
             "--seed", "7", "--threads", "1", "--workers", "1"];

        public void Dispose() => Directory.Delete(Root, recursive: true);
    }

    private static double[] Losses(string output)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "metrics.json")));
        return doc.RootElement.GetProperty("epochs").EnumerateArray().Select(e => e.GetProperty("TrainLoss").GetDouble()).ToArray();
    }

    [Theory]
    [InlineData("SIGINT", 130)]
    [InlineData("SIGTERM", 143)]
    public void SignalMidEpoch_SavesCheckpointAndModel_ExitsWithTheSignalsCode_AndResumeEndsLikeAnUninterruptedRun(string signal, int expected)
    {
        string output = Path.Combine(workspace.Root, signal);
        var (code, terminal) = RunAndSignal(workspace.TrainArgs(output), signal);
        Assert.True(code == expected, $"exit {code}\n{terminal}");

        string checkpoint = Path.Combine(output, "checkpoints", "last.ckpt");
        Assert.True(File.Exists(checkpoint), terminal);
        foreach (var file in new[] { "model.dat", "model.json", "model.onnx", "metrics.json" })
            Assert.True(File.Exists(Path.Combine(output, file)), file);
        using var card = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "model.json")));
        long at = card.RootElement.GetProperty("InterruptedAtIteration").GetInt64();
        Assert.True(at >= SignalAt && at < 2 * PerEpoch, $"interrupted at iteration {at}, not inside epoch 2 after the signal\n{terminal}");
        Assert.Contains($"Interrupted at iteration {at}", terminal);
        Assert.Contains($"--resume {Path.GetFullPath(checkpoint)}", terminal);

        var (resumed, resumedOut, resumedErr) = Cli.Run([.. workspace.TrainArgs(output), "--resume", checkpoint]);
        Assert.True(resumed == 0, resumedErr);
        Assert.Contains($"Resumed from '{checkpoint}' at epoch 2, iteration {at}.", resumedOut);
        double[] expectedLosses = workspace.Uninterrupted.Value, losses = Losses(output);
        Assert.Equal(3, losses.Length);
        for (int e = 0; e < 3; e++) Assert.InRange(losses[e], expectedLosses[e] - LossTolerance, expectedLosses[e] + LossTolerance);
    }

    [Fact]
    public void SecondSigint_ExitsAtOnce_WithoutWaitingOrCrashing()
    {
        string output = Path.Combine(workspace.Root, "twice");
        var (code, terminal) = RunAndSignal(workspace.TrainArgs(output), "SIGINT", twice: true);
        Assert.True(code == 130, $"exit {code}\n{terminal}"); // not 139: libtorch's destructors must not run under its threads
        Assert.Contains("SIGINT again: exiting now", terminal);
    }

    // Runs the command on a new pseudo-terminal (stdout and stderr both) and copies the terminal to stdout. When the progress
    // bar shows iteration argv[3] or later it sends the signal argv[1], argv[2] times (20 ms apart), at once: the launcher
    // blocks on the terminal, so nothing between the bar and the signal waits for a scheduler (an earlier version watched
    // the output from the test's thread pool, which a busy test run starved until the child had finished). Exits with the
    // child's code; says on stderr when the bar never got there. SIGINT is reset to the default first: a job started in
    // the background by a shell inherits it as ignored, and exec would keep it so.
    private const string OnATerminal = """
        import os, pty, re, signal, sys, time
        sig, times, at, command = getattr(signal, sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        pid, fd = pty.fork()
        if pid == 0:
            os.execvp(command[0], command)
        bar = re.compile(rb" it (\d+)/\d+ ")
        tail, sent = b"", False
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            os.write(1, data)
            if not sent:
                tail = (tail + data)[-512:]
                if any(int(m.group(1)) >= at for m in bar.finditer(tail)):
                    for i in range(times):
                        if i:
                            time.sleep(0.02)
                        os.kill(pid, sig)
                    sent = True
        if not sent:
            print(f"launcher: the progress bar never showed iteration {at}; no signal sent", file=sys.stderr)
        sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        """;

    /// <summary>Runs <c>dotnet resnet.dll</c> on a terminal, has <see cref="SignalAt"/> signalled, and waits for the exit.</summary>
    private static (int Code, string Terminal) RunAndSignal(string[] args, string signal, bool twice = false)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "resnet.dll");
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["-c", OnATerminal, signal, twice ? "2" : "1", SignalAt.ToString(System.Globalization.CultureInfo.InvariantCulture), "dotnet", dll, .. args])
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var launcher = process.StandardError.ReadToEndAsync();
        string terminal = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, terminal + launcher.Result);
    }
}
