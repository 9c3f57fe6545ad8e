using System.Runtime.InteropServices;

namespace ResNet.Scoring;

/// <summary>
/// Lists folders for every reader of image folders (the trainer's scan, the ML.NET loader, <c>resnet predict</c>):
/// no directory is visited twice (compared by real path, so symbolic-link loops end), and links that lead out of the
/// folder being listed are not followed unless asked.
/// </summary>
public static class FolderListing
{
    /// <summary>The visible subfolders of <paramref name="root"/> (names not starting with '.'), ordered by name.</summary>
    /// <param name="root">The folder to list.</param>
    /// <param name="followLinksOutOfRoot">Also return linked folders whose target lies outside <paramref name="root"/>.</param>
    public static IReadOnlyList<string> Subfolders(string root, bool followLinksOutOfRoot = false) =>
        Walk(root, recursive: false, followLinksOutOfRoot).Folders;

    /// <summary>The files in <paramref name="folder"/> (and, when <paramref name="recursive"/>, in its subfolders), ordered by path.</summary>
    /// <param name="folder">The folder to list.</param>
    /// <param name="recursive">Descend into subfolders, each real folder once.</param>
    /// <param name="followLinksOutOfRoot">Descend into linked folders whose target lies outside <paramref name="folder"/>.</param>
    public static IReadOnlyList<string> Files(string folder, bool recursive, bool followLinksOutOfRoot = false) =>
        Walk(folder, recursive, followLinksOutOfRoot).Files;

    /// <summary>The files of <see cref="Files"/> whose extension is one of <see cref="ImageDecoder.Extensions"/>.</summary>
    public static IReadOnlyList<string> Images(string folder, bool recursive, bool followLinksOutOfRoot = false) =>
        Files(folder, recursive, followLinksOutOfRoot).Where(f => ImageDecoder.Extensions.Contains(Path.GetExtension(f))).ToList();

    private static (List<string> Folders, List<string> Files) Walk(string root, bool recursive, bool follow)
    {
        string full = Path.GetFullPath(root);
        string realRoot = RealPath(full);
        var visited = new HashSet<string>(StringComparer.Ordinal) { realRoot };
        var folders = new List<string>();
        var files = new List<string>();
        var pending = new Stack<string>();
        pending.Push(full);
        while (pending.Count > 0)
        {
            string dir = pending.Pop();
            files.AddRange(Directory.EnumerateFiles(dir).Where(f => !Path.GetFileName(f).StartsWith('.')));
            foreach (string sub in Directory.EnumerateDirectories(dir))
            {
                if (Path.GetFileName(sub).StartsWith('.')) continue; // hidden folders (.git, .ipynb_checkpoints) are not data
                string real = RealPath(sub);
                bool inside = real == realRoot || real.StartsWith(realRoot.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal);
                if (!inside && !follow) continue;
                if (!visited.Add(real)) continue; // a link back to a folder already listed: a loop or a duplicate
                if (dir == full) folders.Add(sub);
                if (recursive) pending.Push(sub);
            }
        }
        folders.Sort(StringComparer.Ordinal);
        files.Sort(StringComparer.Ordinal);
        return (folders, files);
    }

    // The canonical path with every link resolved: libc's realpath on Unix; on Windows, the final target of the folder's own link.
    private static string RealPath(string path)
    {
        if (!OperatingSystem.IsWindows() && s_realpath)
        {
            try
            {
                IntPtr resolved = realpath(path, IntPtr.Zero);
                if (resolved != IntPtr.Zero)
                {
                    try { return Marshal.PtrToStringUTF8(resolved)!; }
                    finally { free(resolved); }
                }
            }
            catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
            {
                s_realpath = false; // a libc without realpath: the managed resolution below
            }
        }
        var target = new DirectoryInfo(path).ResolveLinkTarget(returnFinalTarget: true);
        return Path.GetFullPath(target?.FullName ?? path).TrimEnd(Path.DirectorySeparatorChar);
    }

    private static bool s_realpath = true;

    [DllImport("libc", SetLastError = true)]
    private static extern IntPtr realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

    [DllImport("libc")]
    private static extern void free(IntPtr pointer);
}
