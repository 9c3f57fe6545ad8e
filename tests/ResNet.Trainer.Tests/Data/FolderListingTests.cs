using ResNet.Trainer.Data;

namespace ResNet.Trainer.Tests.Data;

public class FolderListingTests
{
    private static string Tree()
    {
        string root = TestData.TempDir();
        foreach (var f in new[] { "a/1.png", "a/deep/2.png", "b/3.png", "b/.hidden.png", ".git/x.png" })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(root, f))!);
            File.WriteAllText(Path.Combine(root, f), "x");
        }
        return root;
    }

    [Fact]
    public void LinkLoops_AreListedOnce()
    {
        string root = Tree();
        Directory.CreateSymbolicLink(Path.Combine(root, "a", "up"), "..");
        Directory.CreateSymbolicLink(Path.Combine(root, "b", "self"), ".");
        Directory.CreateSymbolicLink(Path.Combine(root, "b", "again"), Path.Combine(root, "a"));
        var files = FolderListing.Files(root, recursive: true);
        Assert.Equal(["a/1.png", "a/deep/2.png", "b/3.png"], files.Select(f => Path.GetRelativePath(root, f)).ToArray());
        Assert.Equal(["a", "b"], FolderListing.Subfolders(root).Select(d => Path.GetFileName(d)!).ToArray());
    }

    [Fact]
    public void LinksOutOfTheRoot_AreFollowedOnlyWhenAsked()
    {
        string root = Tree();
        string outside = Tree();
        Directory.CreateSymbolicLink(Path.Combine(root, "a", "out"), Path.Combine(outside, "b"));
        Assert.Equal(3, FolderListing.Files(root, recursive: true).Count);
        Assert.Equal(4, FolderListing.Files(root, recursive: true, followLinksOutOfRoot: true).Count);
    }

    [Fact]
    public void AutomaticSize_IsTheMostCommon_NotTheFirst_AndCapped()
    {
        var sizes = new Dictionary<(int W, int H), int> { [(8000, 8000)] = 1, [(28, 28)] = 49 };
        var (w, h, rule) = ImageFolderSource.CommonSize(sizes);
        Assert.Equal((28, 28), (w, h));
        Assert.Contains("49 of 50", rule);

        var (cw, ch, capped) = ImageFolderSource.CommonSize(new Dictionary<(int W, int H), int> { [(8000, 4000)] = 3 });
        Assert.Equal((ImageFolderSource.MaxAutomaticSize, ImageFolderSource.MaxAutomaticSize / 2), (cw, ch));
        Assert.Contains("scaled down", capped);
    }
}
