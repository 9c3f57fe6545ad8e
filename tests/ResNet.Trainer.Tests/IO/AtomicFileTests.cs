namespace ResNet.Trainer.Tests.IO;

public class AtomicFileTests
{
    [Fact]
    public void AWriteThatFailsHalfway_LeavesTheOldFileAndNoTemporary()
    {
        string dir = TestData.TempDir();
        string path = Path.Combine(dir, "metrics.json");
        File.WriteAllText(path, "old");
        var ex = Assert.Throws<IOException>(() => AtomicFile.Write(path, temp =>
        {
            File.WriteAllText(temp, "half of the new con");
            throw new IOException("disk full");
        }));
        Assert.Equal("disk full", ex.Message);
        Assert.Equal("old", File.ReadAllText(path));
        Assert.Equal(["metrics.json"], Directory.GetFiles(dir).Select(Path.GetFileName));
    }

    [Fact]
    public void AWrite_ReplacesTheFile_AndCreatesItsFolder()
    {
        string path = Path.Combine(TestData.TempDir(), "new", "sub", "card.json");
        AtomicFile.WriteAllText(path, "first");
        AtomicFile.WriteAllText(path, "second");
        AtomicFile.WriteStream(path + ".bin", s => s.Write([1, 2, 3]));
        Assert.Equal("second", File.ReadAllText(path));
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(path + ".bin"));
        Assert.Equal(2, Directory.GetFiles(Path.GetDirectoryName(path)!).Length);
    }
}
