using System.Diagnostics;

namespace ResNet.Trainer.Tests.Onnx;

/// <summary>ONNX's own validator (Debian's python3-onnx), run on files the tests wrote.</summary>
internal static class OnnxChecker
{
    /// <summary>Asserts that <c>onnx.checker.check_model(full_check=True)</c> passes on every file.</summary>
    public static void AssertFullCheckPasses(IReadOnlyList<string> files)
    {
        const string script = "import sys, onnx\nfor f in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(f), full_check=True)\n    print('ok', f)\n";
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var f in files) psi.ArgumentList.Add(f);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"onnx.checker failed (needs Debian's python3-onnx): {stderr}");
        Assert.Equal(files.Count, stdout.Split('\n').Count(l => l.StartsWith("ok ", StringComparison.Ordinal)));
    }
}
