using System.Diagnostics;
using ResNet.Tests;

namespace ResNet.Trainer.Tests;

/// <summary>The test harness's temporary folder (tests/TestRunTemp.cs): everything temporary lands under it.</summary>
public class TestRunTempTests
{
    [Fact]
    public void Temporary_paths_of_this_process_and_its_children_lie_under_the_run_folder()
    {
        string root = Path.TrimEndingDirectorySeparator(TestRunTemp.Root);
        Assert.StartsWith("resnet-test-run-", Path.GetFileName(root));
        Assert.Equal(root, Path.TrimEndingDirectorySeparator(Path.GetTempPath()));
        Assert.Equal(root, Path.GetDirectoryName(Directory.CreateTempSubdirectory("probe-").FullName));
        Assert.StartsWith(root + "/", TestData.TempDir());

        var start = new ProcessStartInfo("/bin/sh", ["-c", "mktemp -d"]) { RedirectStandardOutput = true };
        using var child = Process.Start(start)!;
        string childDir = child.StandardOutput.ReadToEnd().Trim();
        child.WaitForExit();
        Assert.Equal(root, Path.GetDirectoryName(childDir));
    }
}
