using System.Diagnostics;
using System.Text.Json;
using ResNet.Trainer.Data;

namespace ResNet.Cli.Tests.BadInput;

/// <summary>
/// A real <c>resnet train</c> process gets SIGINT or SIGTERM in the middle of epoch 2: it must exit 130/143 after
/// writing the checkpoint and the weights of that moment, and <c>--resume</c> must end with the per-epoch losses of
/// an uninterrupted run of the same seed.
/// </summary>
public sealed class SignalTests
{
    private const int PerEpoch = 100; // 400 images, batch 4
    // Equal to the last digit in practice (same seed, same thread count, the checkpoint holds the epoch's running sums).
    private const double LossTolerance = 1e-9;

    private static readonly Lazy<string> Data = new(() =>
    {
        string root = Directory.CreateTempSubdirectory("resnet-signal-").FullName;
        var images = InMemoryImages.From(DatasetSplit.Balanced(Idx.LoadSplit("/usr/share/datasets/fashion-mnist", train: true), 40));
        for (int i = 0; i < images.Count; i++)
            ImageDecoder.SavePng(images.Load(i), Path.Combine(root, "data", images.ClassNames[images.LabelOf(i)], $"{i:D4}.png"));
        return root;
    });

    private static string[] TrainArgs(string output) =>
        ["train", "--data", Path.Combine(Data.Value, "data"), "--output", output, "--arch", "resnet8", "--epochs", "3", "--batch-size", "4",
         "--seed", "7", "--threads", "1", "--workers", "1"];

    private static readonly Lazy<double[]> Uninterrupted = new(() =>
    {
        string output = Path.Combine(Data.Value, "uninterrupted");
        var (code, _, err) = Cli.Run(TrainArgs(output));
        Assert.True(code == 0, err);
        return Losses(output);
    });

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
        string output = Path.Combine(Data.Value, signal);
        var (code, stdout, stderr) = RunAndSignal(TrainArgs(output), signal);
        Assert.True(code == expected, $"exit {code}\n{stdout}\n{stderr}");

        string checkpoint = Path.Combine(output, "checkpoints", "last.ckpt");
        Assert.True(File.Exists(checkpoint), stdout);
        foreach (var file in new[] { "model.dat", "model.json", "model.onnx", "metrics.json" })
            Assert.True(File.Exists(Path.Combine(output, file)), file);
        using var card = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "model.json")));
        long at = card.RootElement.GetProperty("InterruptedAtIteration").GetInt64();
        Assert.InRange(at, PerEpoch + 1, 2 * PerEpoch - 1); // inside epoch 2, not at its boundary
        Assert.Contains($"Interrupted at iteration {at}", stdout);
        Assert.Contains($"--resume {Path.GetFullPath(checkpoint)}", stdout);

        var (resumed, resumedOut, resumedErr) = Cli.Run([.. TrainArgs(output), "--resume", checkpoint]);
        Assert.True(resumed == 0, resumedErr);
        Assert.Contains($"Resumed from '{checkpoint}' at epoch 2, iteration {at}.", resumedOut);
        double[] expectedLosses = Uninterrupted.Value, losses = Losses(output);
        Assert.Equal(3, losses.Length);
        for (int e = 0; e < 3; e++) Assert.InRange(losses[e], expectedLosses[e] - LossTolerance, expectedLosses[e] + LossTolerance);
    }

    [Fact]
    public void SecondSigint_ExitsAtOnce_WithoutWaitingOrCrashing()
    {
        string output = Path.Combine(Data.Value, "twice");
        var (code, _, stderr) = RunAndSignal(TrainArgs(output), "SIGINT", twice: true);
        Assert.True(code == 130, $"exit {code}\n{stderr}"); // not 139: libtorch's destructors must not run under its threads
        Assert.Contains("SIGINT again: exiting now", stderr);
    }

    /// <summary>Starts <c>dotnet resnet.dll</c>, waits for the end of epoch 1 on its output, sends the signal and waits for the exit.</summary>
    private static (int Code, string Out, string Err) RunAndSignal(string[] args, string signal, bool twice = false)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "resnet.dll");
        // A job started in the background by a shell inherits SIGINT as ignored, and exec keeps it so: python resets it
        // to the default before exec'ing dotnet, as an interactive terminal would have it.
        var start = new ProcessStartInfo("/usr/bin/python3")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in (string[])["-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp('dotnet', sys.argv[1:])", "dotnet", dll, .. args])
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = new System.Text.StringBuilder();
        var stderr = new System.Text.StringBuilder();
        var epochOne = new ManualResetEventSlim();
        double imagesPerSecond = 0;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stdout) stdout.AppendLine(e.Data);
            if (!e.Data.StartsWith("epoch   1/", StringComparison.Ordinal)) return;
            var words = e.Data.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            imagesPerSecond = double.Parse(words[Array.IndexOf(words, "img/s") - 1], System.Globalization.CultureInfo.InvariantCulture);
            epochOne.Set();
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        while (!epochOne.Wait(100))
            Assert.False(process.HasExited, $"resnet exited before the end of epoch 1:\n{stdout}\n{stderr}");
        // Into the middle of epoch 2: a third of an epoch at epoch 1's speed (past the end-of-epoch checkpoint write).
        Thread.Sleep(TimeSpan.FromSeconds(PerEpoch * 4 / imagesPerSecond / 3));
        Kill(process.Id, signal);
        if (twice)
        {
            Thread.Sleep(20); // two deliveries, not one coalesced signal; well before the checkpoint and export are written
            Kill(process.Id, signal);
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    private static void Kill(int pid, string signal)
    {
        using var kill = Process.Start("kill", ["-s", signal["SIG".Length..], pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }
}
