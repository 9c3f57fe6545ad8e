using TorchSharp;
using static TorchSharp.torch;

namespace ResNet.Trainer.Native;

/// <summary>
/// oneDNN's blocked activation layout (libtorch's <c>Mkldnn</c> layout: channels in blocks of 16, <c>nChw16c</c>), kept
/// from one convolution to the next so that libtorch does not reorder every activation from NCHW to the blocked layout
/// before each convolution and back after it.
/// </summary>
/// <remarks>
/// On a plain NCHW float32 tensor, each oneDNN convolution (forward, backward data, backward weights) reorders its input
/// and output: measured with <c>ONEDNN_VERBOSE</c> on a ResNet-56 step at batch 128, the reorders took 29% of oneDNN's time.
/// libtorch's convolution, batch norm, max pooling, ReLU and sum all run on blocked tensors, forward and backward (batch
/// norm's backward in training mode only), so a network only leaves the layout where it needs strided views (option A's
/// subsampling and zero channels) and before the global mean.
/// TorchSharp 0.107 has no <c>to_mkldnn</c>; libtorch's own is reached through a one-line TorchScript function, which
/// records the conversion on the autograd tape like any other operation. The layout exists for float32 on the CPU only.
/// </remarks>
internal static class BlockedLayout
{
    private static readonly Lazy<jit.CompilationUnit> Unit = new(() => jit.compile(
        "def to_blocked(x: Tensor) -> Tensor:\n    return x.to_mkldnn()\n" +
        "def is_blocked(x: Tensor) -> bool:\n    return x.is_mkldnn\n"), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// Whether a network whose convolutions have this weight runs in the layout: allowed by its owner, float32 weights on
    /// the CPU, no separate compute type (bfloat16 keeps NCHW) and padding done by the convolutions themselves (CNTK-style
    /// padding is a separate <c>pad</c> of the activations, which stays in NCHW), on a CPU whose caches oneDNN can read
    /// (<see cref="CpuFeatures.OneDnnReadsCaches"/>).
    /// </summary>
    public static bool Applies(bool allowed, Tensor weight, ScalarType? compute, Models.PaddingStyle padding) =>
        allowed && CpuFeatures.OneDnnReadsCaches && compute is null && padding == Models.PaddingStyle.Symmetric
        && weight.dtype == ScalarType.Float32 && weight.device_type == DeviceType.CPU;

    /// <summary>Whether the tensor is in the blocked layout.</summary>
    public static bool IsBlocked(Tensor x)
    {
        using var answer = (Scalar)Unit.Value.invoke("is_blocked", x);
        return answer.ToBoolean();
    }

    /// <summary>The tensor in the blocked layout (autograd sees the conversion: gradients come back as NCHW).</summary>
    public static Tensor ToBlocked(Tensor x) => (Tensor)Unit.Value.invoke("to_blocked", x);

    /// <summary>A blocked tensor back in NCHW (autograd sees this conversion too).</summary>
    public static Tensor ToDense(Tensor x) => x.to_dense();
}
