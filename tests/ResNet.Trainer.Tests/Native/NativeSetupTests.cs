using ResNet.Trainer.Native;
using static TorchSharp.torch;

namespace ResNet.Trainer.Tests.Native;

public class NativeSetupTests
{
    private static string TorchSharpLibrary =>
        Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    [Fact]
    public void TorchSharpLoads_AndRunsATrainingStep()
    {
        TorchNative.EnsureReady();
        using var lin = nn.Linear(4, 2);
        using var opt = optim.SGD(lin.parameters(), 0.1);
        using var x = ones(3, 4);
        using var target = tensor(new long[] { 0, 1, 0 });
        using var loss = nn.functional.cross_entropy(lin.forward(x), target);
        loss.backward();
        opt.step();
        Assert.True(float.IsFinite(loss.item<float>()));
    }

    [Fact]
    public void ElfReader_FindsTheGlibcxxRequirementOfLibTorchSharp()
    {
        Assert.True(File.Exists(TorchSharpLibrary), TorchSharpLibrary);
        var reqs = ElfVersionPatcher.ReadRequirements(File.ReadAllBytes(TorchSharpLibrary));
        Assert.Contains(reqs, r => r.File == "libstdc++.so.6" && r.Version == "GLIBCXX_3.4.30");
        Assert.Contains(reqs, r => r.File == "libc.so.6" && r.Version.StartsWith("GLIBC_2."));
        var unused = Assert.Single(reqs, r => r.Version == TorchNativeSetup.UnusedVersion);
        // Where the system lacks the version, setup has marked it weak in the loaded copy; elsewhere it is untouched.
        bool systemHasIt = TorchNativeSetup.Log.Any(l => l.Contains("provides"));
        Assert.Equal(!systemHasIt, unused.IsWeak);
    }

    [Fact]
    public void MarkWeak_ChangesOnlyTheNamedRequirement_AndIsIdempotent()
    {
        byte[] bytes = File.ReadAllBytes(TorchSharpLibrary);
        var before = ElfVersionPatcher.ReadRequirements(bytes);
        // Clear the flag first so the test does not depend on whether setup already ran on this file.
        var target = before.Single(r => r.Version == TorchNativeSetup.UnusedVersion);
        bytes[target.FlagsOffset] &= unchecked((byte)~2);
        var cleared = ElfVersionPatcher.ReadRequirements(bytes);
        Assert.False(cleared.Single(r => r.Version == TorchNativeSetup.UnusedVersion).IsWeak);

        byte[] original = (byte[])bytes.Clone();
        Assert.Equal(1, ElfVersionPatcher.MarkWeak(bytes, TorchNativeSetup.UnusedVersion));
        Assert.Equal(0, ElfVersionPatcher.MarkWeak(bytes, TorchNativeSetup.UnusedVersion));
        var after = ElfVersionPatcher.ReadRequirements(bytes);
        Assert.True(after.Single(r => r.Version == TorchNativeSetup.UnusedVersion).IsWeak);
        Assert.Equal(cleared.Count(r => r.IsWeak) + 1, after.Count(r => r.IsWeak));
        // Exactly one byte differs: the flags field.
        Assert.Equal(1, original.Zip(bytes).Count(p => p.First != p.Second));
    }

    [Fact]
    public void ElfReader_RejectsAFileThatIsNotElf()
    {
        var ex = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.ReadRequirements("not a library at all, just text"u8.ToArray().Concat(new byte[64]).ToArray()));
        Assert.Contains("Not an ELF file", ex.Message);
    }
}
