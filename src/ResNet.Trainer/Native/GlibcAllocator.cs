using System.Runtime.InteropServices;

namespace ResNet.Trainer.Native;

/// <summary>
/// Keeps glibc's malloc from handing activation memory back to the kernel after every training step.
/// </summary>
/// <remarks>
/// A training step allocates and frees hundreds of megabytes of activations and gradients in blocks of a few
/// megabytes. glibc's defaults serve blocks above a (dynamic) threshold with <c>mmap</c> and trim the heap once
/// its free top passes twice that threshold, so each step returned its memory to the kernel and faulted it back
/// in page by page: ResNet-56 at batch 128 took 32,000-36,000 minor page faults per step, PyTorch 1.13 on the same
/// machine 0-8,000. With blocks up to 32 MiB served from the heap and trimming left to the end of training, our
/// step takes under 4,000 and went from 0.91-0.98x PyTorch's speed to parity or better (bench/train). The same
/// holds on threads other than the main one (ML.NET's Fit, test runners) through <see cref="TopPad"/>. Blocks above
/// 32 MiB (ImageNet-sized activations) still use <c>mmap</c>: 32 MiB is the largest threshold glibc accepts on
/// 64-bit systems.
/// Applied once, when TorchSharp is first made ready (<see cref="TorchNative.EnsureReady"/>: building a model,
/// importing one, resolving a device), so ONNX-only scoring keeps glibc's defaults; only on glibc, and never when
/// the user set any glibc malloc variable (<c>MALLOC_MMAP_THRESHOLD_</c>, <c>MALLOC_TRIM_THRESHOLD_</c>,
/// <c>MALLOC_TOP_PAD_</c>, <c>MALLOC_MMAP_MAX_</c>, or a <c>glibc.malloc</c> tunable): their choice stands. Setting
/// only one of them switches glibc's dynamic threshold off, which can make training 10x slower (measured), so set
/// both thresholds or neither.
/// </remarks>
internal static class GlibcAllocator
{
    /// <summary>Largest block served from the heap rather than by mmap: glibc's ceiling on 64-bit.</summary>
    internal const int MmapThreshold = 32 << 20;

    /// <summary>Free heap top kept rather than returned to the kernel; <see cref="ReleaseFreeMemory"/> returns it.</summary>
    internal const int TrimThreshold = int.MaxValue;

    /// <summary>
    /// Free memory kept at the top of each heap. Threads other than the main one allocate from 64 MiB heaps that glibc
    /// unmaps as soon as they are empty, whatever the trim threshold, unless this much padding is to be kept.
    /// </summary>
    internal const int TopPad = 64 << 20;

    private const int M_TRIM_THRESHOLD = -1, M_TOP_PAD = -2, M_MMAP_THRESHOLD = -3;

    internal static readonly string[] UserVariables =
        ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_"];

    /// <summary>Whether <see cref="Tune"/> changed the allocator's settings in this process.</summary>
    internal static bool Tuned { get; private set; }

    /// <summary>Applies the settings; returns a line for the setup log.</summary>
    internal static string Tune()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return "malloc settings left alone (not Linux)";
        string? userSet = UserVariables.FirstOrDefault(v => Environment.GetEnvironmentVariable(v) is not null);
        if (userSet is null && Environment.GetEnvironmentVariable("GLIBC_TUNABLES") is string t && t.Contains("glibc.malloc.", StringComparison.Ordinal))
            userSet = "GLIBC_TUNABLES";
        if (userSet is not null) return $"malloc settings left alone ({userSet} is set)";
        try
        {
            _ = gnu_get_libc_version(); // throws where the C library is not glibc (musl)
            if (mallopt(M_MMAP_THRESHOLD, MmapThreshold) == 0 || mallopt(M_TRIM_THRESHOLD, TrimThreshold) == 0 || mallopt(M_TOP_PAD, TopPad) == 0)
                return "malloc settings could not be changed (mallopt refused)";
            Tuned = true;
            return $"malloc: blocks up to {MmapThreshold >> 20} MiB from the heap, heap trimmed after training (set MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ to override)";
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return "malloc settings left alone (not glibc)";
        }
    }

    /// <summary>Returns the free heap memory that <see cref="TrimThreshold"/> kept back to the kernel (after training).</summary>
    internal static void ReleaseFreeMemory()
    {
        if (!Tuned) return;
        try { _ = malloc_trim(0); }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException) { }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int mallopt(int param, int value);

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);

    [DllImport("libc", EntryPoint = "gnu_get_libc_version")]
    private static extern IntPtr gnu_get_libc_version();
}
