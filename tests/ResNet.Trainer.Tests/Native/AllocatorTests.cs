using System.Globalization;
using System.Runtime.InteropServices;
using ResNet.Trainer.Native;

namespace ResNet.Trainer.Tests.Native;

/// <summary>Tests that read process-wide counters (page faults, resident memory): no other test runs beside them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideCounters
{
    public const string Name = "process-wide counters";
}

[Collection(ProcessWideCounters.Name)]
public class AllocatorTests
{
    [Fact]
    public void OnGlibc_MallocIsTuned_UnlessTheUserSetAMallocVariable()
    {
        string? userSet = GlibcAllocator.UserVariables.FirstOrDefault(v => Environment.GetEnvironmentVariable(v) is not null);
        if (userSet is not null)
        {
            Assert.False(GlibcAllocator.Tuned);
            Assert.Contains(TorchNativeSetup.Log, l => l.Contains($"left alone ({userSet} is set)"));
        }
        else
        {
            Assert.True(OperatingSystem.IsLinux());
            Assert.True(GlibcAllocator.Tuned, string.Join("; ", TorchNativeSetup.Log));
            Assert.Contains(TorchNativeSetup.Log, l => l.StartsWith("malloc: blocks up to 32 MiB from the heap", StringComparison.Ordinal));
        }
    }

    /// <summary>
    /// The pattern of a training step: a few hundred MiB in activation-sized blocks, written, then all freed. With glibc's
    /// defaults the freed heap top is trimmed and every later round faults each page back in (65,536 faults per round
    /// here, checked by running this test with MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ at glibc's defaults);
    /// tuned, later rounds reuse the memory the first one faulted in (or that earlier tests left in the heap).
    /// </summary>
    [Fact]
    public void FreedActivationSizedBlocks_AreReused_NotFaultedBackIn()
    {
        const int blocks = 64, blockBytes = 4 << 20, page = 4096;
        long Round()
        {
            long before = MinorFaults();
            var pointers = new IntPtr[blocks];
            for (int b = 0; b < blocks; b++)
            {
                pointers[b] = Marshal.AllocHGlobal(blockBytes); // malloc on Linux
                for (int o = 0; o < blockBytes; o += page) Marshal.WriteByte(pointers[b], o, 1); // touch every page, as a kernel writing an activation
            }
            for (int b = blocks - 1; b >= 0; b--) Marshal.FreeHGlobal(pointers[b]);
            return MinorFaults() - before;
        }
        long first = Round(), second = Round(), third = Round();
        long pages = (long)blocks * blockBytes / page;
        if (!GlibcAllocator.Tuned)
        {
            // A user's MALLOC_* variable decides instead of ours; the test above checks that it was honoured.
            Assert.NotNull(GlibcAllocator.UserVariables.FirstOrDefault(v => Environment.GetEnvironmentVariable(v) is not null));
            return;
        }
        Assert.True(second < pages / 10 && third < pages / 10, $"faults per round: {first}, {second}, {third} for {pages} pages");
    }

    internal static long MinorFaults() =>
        long.Parse(File.ReadAllText("/proc/self/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[7], CultureInfo.InvariantCulture);
}
