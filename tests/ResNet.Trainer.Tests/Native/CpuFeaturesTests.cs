using ResNet.Trainer.Native;
using ResNet.Trainer.Training;

namespace ResNet.Trainer.Tests.Native;

public class CpuFeaturesTests
{
    // /proc/cpuinfo as Linux writes it on x86 (one "flags" line per processor) and on ARM (a "Features" line instead).
    private static string CpuInfo(string flagsLine) =>
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: Test CPU\n" + flagsLine + "\nbugs\t\t: sysret_ss_attrs\n\n" +
        "processor\t: 1\n" + flagsLine.Replace("avx512_bf16", "", StringComparison.Ordinal) + "\n";

    private static IReadOnlySet<string>? Read(string text)
    {
        var path = Path.Combine(Path.GetTempPath(), $"cpuinfo-{Guid.NewGuid():N}");
        File.WriteAllText(path, text);
        try { return CpuFeatures.ReadFlags(path); }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ReadFlags_TakesTheFirstProcessorsFlags()
    {
        var flags = Read(CpuInfo("flags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16 sha_ni"))!;
        Assert.Equal(7, flags.Count);
        Assert.Contains("avx512_vnni", flags);
        Assert.True(CpuFeatures.HasBf16Flag(flags));
    }

    [Fact]
    public void HasBf16Flag_IsFalseWithoutAvx512Bf16OrAmx_AndTrueWithAmx()
    {
        Assert.False(CpuFeatures.HasBf16Flag(Read(CpuInfo("flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni"))!));
        Assert.True(CpuFeatures.HasBf16Flag(Read(CpuInfo("flags\t\t: fpu avx512f amx_tile amx_bf16 amx_int8"))!));
    }

    [Fact]
    public void ReadFlags_IsNullWhereNoX86FlagsAreListed()
    {
        Assert.Null(Read("processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 bf16\nCPU implementer\t: 0x41\n"));
        Assert.Null(CpuFeatures.ReadFlags(Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}")));
    }

    [Fact]
    public void Bf16Warning_OnlyForBf16OnACpuKnownToLackIt()
    {
        var warning = CpuFeatures.Bf16Warning(TrainingOptions.Bf16, onCpu: true, hasBf16: false);
        Assert.NotNull(warning);
        Assert.Contains("AVX512_BF16", warning);
        Assert.Contains("--precision fp32", warning);
        Assert.Null(CpuFeatures.Bf16Warning(TrainingOptions.Bf16, onCpu: true, hasBf16: true));
        Assert.Null(CpuFeatures.Bf16Warning(TrainingOptions.Bf16, onCpu: true, hasBf16: null));
        Assert.Null(CpuFeatures.Bf16Warning(TrainingOptions.Bf16, onCpu: false, hasBf16: false));
        Assert.Null(CpuFeatures.Bf16Warning(TrainingOptions.Fp32, onCpu: true, hasBf16: false));
    }

    /// <summary>
    /// cpuid leaf 0x8000001D sub-leaf 0 as an AMD Zen 4 core answers it (a 32 KiB L1 data cache: 8 ways, one partition,
    /// 64-byte lines, 64 sets, shared by the core's two threads) and as a virtual machine seen here answered it (zeros).
    /// </summary>
    [Fact]
    public void OneDnnSumBlock_IsHalfTheL1PerThreadInFloats_AndZeroWhereTheLeafListsNoCache()
    {
        uint eax = 1 | (1 << 5) | (1 << 8) | (1 << 14); // data cache, level 1, self-initializing, 2 logical processors share it
        uint ebx = 63 | (0 << 12) | (7u << 22);         // line size - 1, partitions - 1, ways - 1
        Assert.Equal(32 * 1024 / 2 / 2 / 4, CpuFeatures.OneDnnSumBlock((eax, ebx, 63)));
        Assert.Equal(0, CpuFeatures.OneDnnSumBlock((0, 0, 0)));
    }
}
