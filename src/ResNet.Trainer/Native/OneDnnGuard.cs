using ResNet.Trainer.Models;

namespace ResNet.Trainer.Native;

/// <summary>
/// Keeps libtorch off oneDNN for networks whose convolutions oneDNN computes wrongly on a CPU whose caches it cannot read
/// (<see cref="CpuFeatures.OneDnnReadsCaches"/>).
/// </summary>
/// <remarks>
/// Measured on such a CPU (an "AMD EPYC" virtual machine, 2026-12-03): 480 float32 convolution shapes (1-256 channels,
/// 4-32 pixels, stride 1 and 2, 1x1 and 3x3) against float64, forward with and without gradients, backward to the input and
/// to the weight. Every shape whose channel counts were 16 or multiples of 32 agreed; 109 others did not: forward passes off
/// by 20-35% of the largest output (or NaN) for counts that are not multiples of 16 (20, 24, 28, 40, 56), and gradients to
/// the input off for 48, 80 and 112 channels and for 1-12. A network's own input never needs a gradient, so the stem's input
/// channels do not count. Turning oneDNN off costs a ResNet-20 step 12x there (40 and 43 against 489 and 532 images/s),
/// so it is turned off only for the networks that need it, and stays off for the rest of the process: a global switch
/// flipped back and forth would race with models on other threads.
/// </remarks>
internal static class OneDnnGuard
{
    private static int _acted; // 1 once oneDNN was turned off (or could not be): it is done once per process

    /// <summary>Whether oneDNN's convolutions were measured right for this channel count on such a CPU.</summary>
    public static bool SafeChannels(int channels) => channels == 16 || channels % 32 == 0;

    /// <summary>The first convolution of the network whose channels are not <see cref="SafeChannels"/>, or null.</summary>
    public static ConvPlan? FirstUnsafe(ResNetSpec spec)
    {
        var stem = ResNetPlan.Stem(spec);
        if (!SafeChannels(stem.OutChannels)) return stem;
        foreach (var block in ResNetPlan.Blocks(spec))
            foreach (var conv in block.Downsample is { } d ? block.Convs.Append(d) : block.Convs)
                if (!SafeChannels(conv.InChannels) || !SafeChannels(conv.OutChannels)) return conv;
        return null;
    }

    /// <summary>
    /// Before a network is built: on a CPU whose caches oneDNN cannot read, turns oneDNN off in libtorch if the network has a
    /// convolution with unsafe channel counts, and records why in <see cref="TorchNative.SetupLog"/>.
    /// </summary>
    public static void Check(ResNetSpec spec)
    {
        if (CpuFeatures.OneDnnReadsCaches || FirstUnsafe(spec) is not { } conv || Interlocked.Exchange(ref _acted, 1) == 1) return;
        TorchNativeSetup.Record(LibtorchSwitches.TryDisableOneDnn()
            ? $"oneDNN off for the rest of this process: this CPU's cpuid lists no caches, and oneDNN then computes convolutions with {conv.InChannels} -> {conv.OutChannels} channels ({spec.Name}'s {conv.Key}) wrongly; libtorch's own kernels are slower but right"
            : $"oneDNN could not be turned off: this CPU's cpuid lists no caches, and {spec.Name}'s {conv.Key} ({conv.InChannels} -> {conv.OutChannels} channels) may be computed wrongly");
    }

    /// <summary>
    /// The warning for training on the CPU while oneDNN is off for this reason, or null: training then runs on libtorch's
    /// own kernels, several times slower.
    /// </summary>
    public static string? Warning(bool onCpu) =>
        onCpu && !CpuFeatures.OneDnnReadsCaches && LibtorchSwitches.OneDnnEnabled == false
            ? "oneDNN is off in this process: this CPU's cpuid lists no caches, and oneDNN then computes convolutions whose channel " +
              "counts are not 16 or a multiple of 32 wrongly. Training runs on libtorch's own kernels, about 10x slower; networks " +
              "whose widths are 16 or multiples of 32 (resnet20, resnet56, resnet18, resnet50 and their -w32, -w64 variants) keep oneDNN."
            : null;
}
