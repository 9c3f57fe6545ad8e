using System.Diagnostics;

namespace ResNet.Trainer.Tests.Peers;

/// <summary>Runs a reference script in Debian's Python (python3-torch / python3-torchvision / python3-onnx).</summary>
public static class PythonPeer
{
    /// <summary>Debian's interpreter; the one on PATH may be another install without the packages.</summary>
    public static string Interpreter => Environment.GetEnvironmentVariable("RESNET_PEER_PYTHON") ?? "/usr/bin/python3";

    public static string Script(string name) => Path.Combine(AppContext.BaseDirectory, "Peers", name);

    public static string Run(string script, params string[] args)
    {
        var psi = new ProcessStartInfo(Interpreter) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start {Interpreter}.");
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException(
                $"{Interpreter} {Path.GetFileName(script)} failed (exit {p.ExitCode}): {stderr}\n" +
                "The peer tests need Debian's python3-torch, python3-torchvision and python3-onnx: " +
                "sudo apt-get install python3-torchvision python3-onnx (see README, 'Peer tests').");
        return stdout.Result;
    }

    public static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "resnet-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
