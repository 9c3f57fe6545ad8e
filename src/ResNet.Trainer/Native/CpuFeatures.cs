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
    /// The warning for bfloat16 training on a CPU that lacks native bfloat16 dot products (oneDNN then emulates them), or null
    /// when there is nothing to warn about (float32, another device, a CPU with them, or one whose flags are unknown).
    /// </summary>
    public static string? Bf16Warning(string precision, bool onCpu, bool? hasBf16) =>
        precision == Training.TrainingOptions.Bf16 && onCpu && hasBf16 == false
            ? "precision bf16 on a CPU without AVX512_BF16: oneDNN emulates bfloat16 arithmetic there, which makes the step slower " +
              "than float32. Train with precision fp32 (--precision fp32) on this machine."
            : null;
}
