using ResNet.Trainer.Data;

namespace ResNet.Trainer.Onnx;

/// <summary>Bridges the trainer's normalization statistics to the form the exporter folds into the graph.</summary>
public static class OnnxNormalization
{
    /// <summary>
    /// The ONNX input normalization equivalent to <paramref name="normalization"/>: pixels in 0..1, RGB, minus the
    /// per-channel mean or the mean image, divided by the per-channel std.
    /// </summary>
    public static InputNormalization FromTraining(Normalization normalization)
    {
        ArgumentNullException.ThrowIfNull(normalization);
        int c = normalization.Channels;
        return normalization.Kind switch
        {
            NormalizationKind.None => InputNormalization.Identity(c),
            NormalizationKind.PerChannel => new InputNormalization(PixelRange.ZeroToOne, normalization.Mean, normalization.Std),
            _ => new InputNormalization(PixelRange.ZeroToOne, new float[c], normalization.Std, ChannelOrder.Rgb, normalization.Mean),
        };
    }
}
