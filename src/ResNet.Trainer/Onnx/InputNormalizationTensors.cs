using static TorchSharp.torch;

namespace ResNet.Trainer.Onnx;

/// <summary>Applies an <see cref="InputNormalization"/> to TorchSharp tensors, exactly as the exported graph applies it.</summary>
public static class InputNormalizationTensors
{
    /// <summary>Applies the normalization to a batch [N, C, H, W] of RGB pixels in <see cref="InputNormalization.Range"/>, as the exported graph does.</summary>
    public static Tensor Apply(this InputNormalization normalization, Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input;
        if (normalization.NetworkOrder == ChannelOrder.Bgr)
            x = x.index_select(1, tensor(new long[] { 2, 1, 0 }, device: x.device));
        if (normalization.MeanImage is not null)
            x = x - tensor(normalization.MeanImage.ToArray(), [1, normalization.Channels, x.shape[2], x.shape[3]], device: x.device);
        else if (normalization.Mean.Any(m => m != 0f))
            x = x - tensor(normalization.Mean.ToArray(), [1, normalization.Channels, 1, 1], device: x.device);
        if (normalization.Std.Any(s => s != 1f))
            x = x / tensor(normalization.Std.ToArray(), [1, normalization.Channels, 1, 1], device: x.device);
        return ReferenceEquals(x, input) ? input.alias() : x.MoveToOuterDisposeScope();
    }
}
