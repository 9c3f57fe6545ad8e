using System.Runtime.Intrinsics.X86;

namespace ResNet.Trainer.Native;

/// <summary>What the processor offers libtorch's CPU kernels, as far as the operating system says.</summary>
internal static class CpuFeatures
{
    private static readonly Lazy<IReadOnlySet<string>?> Flags = new(() => ReadFlags("/proc/cpuinfo"));

    /// <summary>
    /// Whether the CPU computes bfloat16 dot products natively (AVX512_BF16 or AMX); null where the operating system does not
    /// list x86 flags (not Linux, or not x86).
    /// </summary>
    public static bool? HasBf16 => Flags.Value is { } flags ? HasBf16Flag(flags) : null;

    /// <summary>Whether a set of x86 flags, as <c>/proc/cpuinfo</c> spells them, has native bfloat16 dot products.</summary>
    public static bool HasBf16Flag(IReadOnlySet<string> flags) => flags.Contains("avx512_bf16") || flags.Contains("amx_bf16");

    /// <summary>The x86 flags of the first processor in a <c>/proc/cpuinfo</c>-style file; null when it is absent or lists none.</summary>
    public static IReadOnlySet<string>? ReadFlags(string path)
    {
        try
        {
            if (!File.Exists(path)) return null;
            foreach (var line in File.ReadLines(path))
            {
                int colon = line.IndexOf(':');
                if (colon > 0 && line[..colon].Trim() == "flags")
                    return line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>
    /// Whether oneDNN (libtorch 2.10's oneDNN 3.7) reads a usable cache hierarchy from this CPU. Where it does not, the
    /// blocked activation layout is not used, and <see cref="OneDnnGuard"/> turns oneDNN off for networks whose channel
    /// counts oneDNN then gets wrong.
    /// </summary>
    /// <remarks>
    /// oneDNN sizes its work by the per-core cache sizes that its bundled Xbyak reads from cpuid. On AMD processors Xbyak
    /// reads leaf 0x8000001D without checking that the leaf lists a cache. Some virtual machines answer that leaf with
    /// zeros: seen on an "AMD EPYC" guest on 2026-12-03, whose leaves 4, 0xB and 0x8000001D were all zero. Xbyak then
    /// computes caches of 1 byte. On that guest:
    /// <list type="bullet">
    /// <item>oneDNN's float32 sum primitive split its work into blocks of half the L1, 0 elements, and died with SIGFPE.
    /// The blocked layout sums residuals and updates batch-norm statistics with it.</item>
    /// <item>Its float32 convolutions gave wrong outputs (20-35% of the largest value off, or NaN) for channel counts that
    /// are not multiples of 16, such as 20, 24 and 40, even with the ISA capped at AVX2.</item>
    /// </list>
    /// With oneDNN off, libtorch's own kernels agreed with float64 on the same shapes; <see cref="OneDnnGuard"/> has the
    /// sweep. Intel processors take leaf 4, and oneDNN guesses the sizes when that lists no cache, so only AMD is checked.
    /// </remarks>
    public static bool OneDnnReadsCaches { get; } = !X86Base.IsSupported || !IsAmd() || OneDnnSumBlock(L1DataCacheLeaf()) > 0;

    /// <summary>
    /// At most the number of float32 elements per block of oneDNN's sum primitive on an AMD CPU whose cpuid leaf 0x8000001D
    /// sub-leaf 0 (the L1 data cache) reads as given: Xbyak's cache size (ways x partitions x line size x sets), divided by the
    /// logical processors that share the cache (Xbyak divides by fewer), halved, in 4-byte elements. Zero means the primitive
    /// divides by zero: oneDNN has no usable cache sizes.
    /// </summary>
    public static long OneDnnSumBlock((uint Eax, uint Ebx, uint Ecx) leaf)
    {
        static long Bits(uint v, int from, int to) => (v >> from) & ((1u << (to - from + 1)) - 1);
        long size = (Bits(leaf.Ebx, 22, 31) + 1) * (Bits(leaf.Ebx, 12, 21) + 1) * (Bits(leaf.Ebx, 0, 11) + 1) * ((long)leaf.Ecx + 1);
        long sharing = Bits(leaf.Eax, 14, 25) + 1;
        return size / sharing / 2 / sizeof(float);
    }

    private static bool IsAmd()
    {
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<byte> vendor = stackalloc byte[12];
        BitConverter.TryWriteBytes(vendor, ebx);
        BitConverter.TryWriteBytes(vendor[4..], edx);
        BitConverter.TryWriteBytes(vendor[8..], ecx);
        return System.Text.Encoding.ASCII.GetString(vendor) == "AuthenticAMD";
    }

    // Leaf 0x8000001D sub-leaf 0, or zeros where the processor has no such leaf (what Xbyak then reads is not defined).
    private static (uint Eax, uint Ebx, uint Ecx) L1DataCacheLeaf()
    {
        if ((uint)X86Base.CpuId(unchecked((int)0x80000000), 0).Eax < 0x8000001D) return (0, 0, 0);
        var (eax, ebx, ecx, _) = X86Base.CpuId(unchecked((int)0x8000001D), 0);
        return ((uint)eax, (uint)ebx, (uint)ecx);
    }

    /// <summary>
    /// The warning for bfloat16 training on a CPU that lacks native bfloat16 dot products (oneDNN then emulates them), or null
    /// when there is nothing to warn about (float32, another device, a CPU with them, or one whose flags are unknown).
    /// </summary>
    public static string? Bf16Warning(string precision, bool onCpu, bool? hasBf16) =>
        precision == Training.TrainingOptions.Bf16 && onCpu && hasBf16 == false
            ? "precision bf16 on a CPU without AVX512_BF16: oneDNN emulates bfloat16 arithmetic there, which makes the step slower " +
              "than float32. Train with precision fp32 (--precision fp32) on this machine."
            : null;
}
