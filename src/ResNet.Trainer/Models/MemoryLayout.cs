using static TorchSharp.torch;

namespace ResNet.Trainer.Models;

/// <summary>
/// Channels-last (NHWC) memory layout for image batches. TorchSharp 0.107 has no <c>memory_format</c> argument, so
/// the layout is made from standard operations: the values and the logical shape [N, C, H, W] stay the same, only the
/// strides change to [H·W·C, 1, W·C, C], and libtorch's oneDNN convolutions, batch norms and ReLUs then keep that
/// layout through the whole network (PyTorch's <c>x.contiguous(memory_format=torch.channels_last)</c>).
/// </summary>
public static class MemoryLayout
{
    /// <summary>A copy of a 4-D batch in channels-last layout; a batch already in that layout is returned as is.</summary>
    /// <exception cref="ArgumentException">The tensor is not 4-D.</exception>
    public static Tensor ToChannelsLast(Tensor batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.dim() != 4)
            throw new ArgumentException($"Channels-last needs a 4-D batch [N, C, H, W]; this tensor has shape [{string.Join(", ", batch.shape)}].", nameof(batch));
        if (IsChannelsLast(batch)) return batch;
        // [N, C, H, W] -> contiguous [N, H, W, C] -> a [N, C, H, W] view with channels-last strides.
        using var nhwc = batch.permute(0, 2, 3, 1).contiguous();
        return nhwc.permute(0, 3, 1, 2);
    }

    /// <summary>Whether a 4-D tensor's strides are the dense channels-last ones ([H·W·C, 1, W·C, C]).</summary>
    public static bool IsChannelsLast(Tensor batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.dim() != 4) return false;
        var (c, h, w) = (batch.shape[1], batch.shape[2], batch.shape[3]);
        var s = batch.stride();
        return s[1] == 1 && s[3] == c && s[2] == w * c && s[0] == h * w * c;
    }
}
