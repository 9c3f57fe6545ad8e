using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace ResNet.Trainer.Native;

/// <summary>
/// Makes TorchSharp's native library load on Linux distributions whose libstdc++ predates GCC 13
/// (Debian 12, Ubuntu 22.04). libLibTorchSharp.so 0.107 asks for <c>GLIBCXX_3.4.32</c> only for
/// <c>std::ios_base_library_init()</c>, which no relocation uses, so that single requirement is marked weak.
/// Runs automatically when this assembly loads; nothing is changed where libstdc++ already has the version.
/// </summary>
internal static class TorchNativeSetup
{
    /// <summary>The libstdc++ symbol version that TorchSharp 0.107 requires but does not use.</summary>
    public const string UnusedVersion = "GLIBCXX_3.4.32";

    private static readonly object Gate = new();
    private static bool _done;
    private static readonly List<string> _log = new();

    /// <summary>What the setup found and changed, one line per item (for <c>resnet info --system</c>).</summary>
    public static IReadOnlyList<string> Log { get { lock (Gate) return _log.ToArray(); } }

#pragma warning disable CA2255 // a module initializer is the one hook that runs before TorchSharp's first P/Invoke
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void OnModuleLoad()
    {
        PreferPassiveThreadWaits();
        EnsurePatched();
    }

    /// <summary>
    /// Sets <c>OMP_WAIT_POLICY=PASSIVE</c> for libtorch's OpenMP threads unless the user set it. Idle OpenMP
    /// threads then sleep instead of spinning, so the loader's worker threads and other processes do not stall
    /// every parallel region; measured on a shared 2-core machine: ResNet-20 training 2-6x faster end to end
    /// (bench/train). Must run before libtorch loads, which is why it lives in the module initializer.
    /// </summary>
    internal static void PreferPassiveThreadWaits()
    {
        try
        {
            if (RuntimeInformation.IsOSPlatform(OSPlatform.Linux) && Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null)
            {
                setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
                lock (Gate) _log.Add("OMP_WAIT_POLICY=PASSIVE (set OMP_WAIT_POLICY=ACTIVE to override)");
            }
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            lock (Gate) _log.Add($"could not set OMP_WAIT_POLICY: {ex.Message}");
        }
    }

    /// <summary>Applies <see cref="GlibcAllocator"/>'s settings once and logs what was done.</summary>
    internal static void TuneAllocator()
    {
        lock (Gate)
        {
            if (_allocatorTuned) return;
            _allocatorTuned = true;
            _log.Add(GlibcAllocator.Tune());
        }
    }

    private static bool _allocatorTuned;

    /// <summary>Adds a line to <see cref="Log"/>.</summary>
    internal static void Record(string line)
    {
        lock (Gate) _log.Add(line);
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int setenv(string name, string value, int overwrite);

    /// <summary>
    /// Patches every libLibTorchSharp.so that TorchSharp may load (the app's output, the folder TorchSharp
    /// copies natives into, the NuGet cache) when the system libstdc++ lacks <see cref="UnusedVersion"/>.
    /// Idempotent and cheap after the first call. Never throws: a failure is recorded in <see cref="Log"/>.
    /// </summary>
    public static void EnsurePatched()
    {
        lock (Gate)
        {
            if (_done) return;
            _done = true;
            try
            {
                if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return;
                string? libstdcxx = FindSystemLibStdCxx();
                if (libstdcxx is null) _log.Add("libstdc++.so.6 not found; nothing patched");
                else if (ContainsAscii(File.ReadAllBytes(libstdcxx), UnusedVersion + "\0"))
                    _log.Add($"{libstdcxx} provides {UnusedVersion}; nothing patched");
                else
                    foreach (string candidate in CandidateLibraries())
                        PatchFile(candidate);
                PreloadFromPackagesWhenNotBesideTheApp();
            }
            catch (Exception ex)
            {
                _log.Add($"native setup failed: {ex.Message}");
            }
        }
    }

    private static void PatchFile(string path)
    {
        try
        {
            byte[] bytes = File.ReadAllBytes(path);
            if (ElfVersionPatcher.MarkWeak(bytes, UnusedVersion) == 0) return;
            // A reader (another process loading the library) never sees a half-written file.
            AtomicFile.Write(path, temp =>
            {
                File.WriteAllBytes(temp, bytes);
                if (!OperatingSystem.IsWindows())
                    File.SetUnixFileMode(temp, File.GetUnixFileMode(path));
            });
            _log.Add($"marked {UnusedVersion} weak in {path}");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            _log.Add($"could not patch {path}: {ex.Message} (make the file writable, or run once as its owner)");
        }
    }

    /// <summary>
    /// Notebooks and scripts load TorchSharp.dll straight from the NuGet cache, with no natives beside it. TorchSharp
    /// then loads <c>torch_cpu</c> by bare name, which finds any system libtorch first (Debian's python3-torch installs
    /// libtorch 1.13 in /usr/lib) and fails on a symbol mismatch. Loading the package's own libraries by full path
    /// first makes every later by-name load resolve to them (the dynamic loader matches already-loaded sonames).
    /// </summary>
    private static void PreloadFromPackagesWhenNotBesideTheApp()
    {
        const string name = "libLibTorchSharp.so";
        string rid = "linux-" + RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        string? torchDir = Path.GetDirectoryName(typeof(TorchSharp.torch).Assembly.Location);
        string[] besideApp =
        [
            AppContext.BaseDirectory, Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native"),
            torchDir ?? "", Path.Combine(torchDir ?? "", "runtimes", rid, "native"),
        ];
        if (besideApp.Any(d => d.Length > 0 && File.Exists(Path.Combine(d, name)))) return;

        string? torchSharpNative = CandidateLibraries().Select(Path.GetDirectoryName)
            .FirstOrDefault(d => d is not null && d.Contains(Path.Combine("torchsharp", ""), StringComparison.OrdinalIgnoreCase) && d.EndsWith(Path.Combine(rid, "native"), StringComparison.Ordinal));
        string? libtorchNative = FindLibTorchPackage(rid);
        if (torchSharpNative is null || libtorchNative is null)
        {
            _log.Add("TorchSharp natives are not beside the app and the NuGet packages were not found; leaving the load to TorchSharp");
            return;
        }
        foreach (string lib in new[] { "libc10.so", "libtorch_cpu.so", "libtorch.so" }.Select(l => Path.Combine(libtorchNative, l)).Append(Path.Combine(torchSharpNative, name)))
        {
            if (!File.Exists(lib)) continue;
            if (!NativeLibrary.TryLoad(lib, out _))
            {
                _log.Add($"could not preload {lib}");
                return;
            }
        }
        _log.Add($"preloaded libtorch from {libtorchNative} and LibTorchSharp from {torchSharpNative}");
    }

    private static string? FindLibTorchPackage(string rid)
    {
        string nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string? torchDir = Path.GetDirectoryName(typeof(TorchSharp.torch).Assembly.Location);
        // In the interactive layout TorchSharp.dll sits at <packages>/torchsharp/<version>/lib/<tfm>/.
        var roots = new List<string> { nugetRoot };
        if (torchDir is not null) roots.Insert(0, Path.GetFullPath(Path.Combine(torchDir, "..", "..", "..", "..")));
        // The libtorch version TorchSharp was built against is a constant in its assembly.
        string? wanted = typeof(TorchSharp.torch).GetField("libtorchPackageVersion",
            System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)?.GetRawConstantValue() as string;
        foreach (string root in roots.Distinct())
        {
            string pkg = Path.Combine(root, "libtorch-cpu-" + rid);
            if (!Directory.Exists(pkg)) continue;
            var versions = Directory.GetDirectories(pkg).Select(Path.GetFileName).OfType<string>().ToList();
            string? version = wanted is not null && versions.Contains(wanted) ? wanted
                : versions.OrderByDescending(v => Version.TryParse(v, out var parsed) ? parsed : new Version()).FirstOrDefault();
            if (version is null) continue;
            string native = Path.Combine(pkg, version, "runtimes", rid, "native");
            if (File.Exists(Path.Combine(native, "libtorch_cpu.so"))) return native;
        }
        return null;
    }

    private static IEnumerable<string> CandidateLibraries()
    {
        const string name = "libLibTorchSharp.so";
        string rid = "linux-" + RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        var dirs = new List<string> { AppContext.BaseDirectory, Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native") };

        string? torchDir = Path.GetDirectoryName(typeof(TorchSharp.torch).Assembly.Location);
        if (!string.IsNullOrEmpty(torchDir))
        {
            dirs.Add(torchDir);
            dirs.Add(Path.Combine(torchDir, "runtimes", rid, "native"));
            // TorchSharp's fallback copies the natives into these folders beside TorchSharp.dll.
            dirs.Add(Path.Combine(torchDir, "cpu"));
            dirs.Add(Path.Combine(torchDir, "cuda"));
            // Loaded straight from the NuGet cache (notebooks): <pkg>/lib/<tfm>/TorchSharp.dll.
            dirs.Add(Path.GetFullPath(Path.Combine(torchDir, "..", "..", "runtimes", rid, "native")));
        }

        // The NuGet cache copy is the source TorchSharp's fallback copies from.
        string nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string torchPkg = Path.Combine(nugetRoot, "torchsharp");
        if (Directory.Exists(torchPkg))
            foreach (string version in Directory.EnumerateDirectories(torchPkg))
                dirs.Add(Path.Combine(version, "runtimes", rid, "native"));

        return dirs.Select(d => Path.Combine(d, name)).Where(File.Exists)
                   .Select(Path.GetFullPath).Distinct(StringComparer.Ordinal);
    }

    private static string? FindSystemLibStdCxx()
    {
        // Prefer the copy already mapped into this process: that is the one the loader will bind to.
        try
        {
            foreach (string line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/');
                if (slash >= 0 && line.Contains("libstdc++.so.6", StringComparison.Ordinal))
                    return line[slash..].Trim();
            }
        }
        catch (IOException) { }

        string[] dirs =
        [
            "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
            "/lib64", "/usr/lib64", "/lib", "/usr/lib",
        ];
        return dirs.Select(d => Path.Combine(d, "libstdc++.so.6")).FirstOrDefault(File.Exists);
    }

    private static bool ContainsAscii(byte[] haystack, string needle) =>
        haystack.AsSpan().IndexOf(Encoding.ASCII.GetBytes(needle)) >= 0;
}
