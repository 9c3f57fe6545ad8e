namespace ResNet.Scoring.Quantization;

/// <summary>How the range of an activation tensor is chosen from the calibration images.</summary>
public enum CalibrationMethod
{
    /// <summary>The smallest and largest value seen (with 0 included): no clipping, coarser steps.</summary>
    MinMax,
    /// <summary>
    /// The <see cref="QuantizationOptions.Percentile"/> percentile of the absolute values: the rare largest values
    /// are clipped so that the common ones get finer steps.
    /// </summary>
    Percentile,
    /// <summary>The clipping threshold whose 8-bit histogram is closest to the float one (least KL divergence).</summary>
    Entropy,
}

/// <summary>Choices for <see cref="OnnxQuantizer"/>. The defaults were chosen by measurement (bench/quant/README.md).</summary>
public sealed class QuantizationOptions
{
    /// <summary>The fewest decodable calibration images accepted.</summary>
    public const int MinimumCalibrationImages = 20;

    /// <summary>
    /// How activation ranges are chosen; default <see cref="CalibrationMethod.Percentile"/> (99.99): on the sample ResNet-20
    /// it matched min-max within one image of 300 (99.0% against 98.7% agreement); entropy clipped the first layers far
    /// too hard there (74.7% agreement). Figures: bench/quant/README.md.
    /// </summary>
    public CalibrationMethod Method { get; init; } = CalibrationMethod.Percentile;

    /// <summary>Percentile of absolute values used by <see cref="CalibrationMethod.Percentile"/>; default 99.99.</summary>
    public double Percentile { get; init; } = 99.99;

    /// <summary>
    /// Keep the first convolution in float (its input is the normalized image, and with 1-3 input channels each output
    /// sums only 9-147 products, so rounding errors do not average out). Default true: on the sample ResNet-20 it raised
    /// top-1 agreement with the float model from 96.7% to 98.7-99.0%, and on Fashion-MNIST's 10,000 test images from
    /// 99.5% to 99.8%. Quantizing it too is faster (about 1.3x more ResNet-18 images/s on a quiet machine: the float
    /// stem convolution is a fifth of the INT8 graph's time), at that cost in agreement (bench/quant/README.md).
    /// </summary>
    public bool KeepFirstConvFloat { get; init; } = true;

    /// <summary>Keep the classifier (Gemm or MatMul) in float. Default true: it is a tiny share of the work.</summary>
    public bool KeepClassifierFloat { get; init; } = true;

    /// <summary>
    /// At most this many calibration images are used, spread evenly over the sorted file list; default 1000.
    /// </summary>
    public int MaxCalibrationImages { get; init; } = 1000;

    /// <summary>Images per ONNX Runtime run during calibration; default 16.</summary>
    public int CalibrationBatchSize { get; init; } = 16;

    /// <summary>ONNX Runtime threads during calibration (0 = one per core).</summary>
    public int Threads { get; init; }

    /// <summary>Receives warnings (skipped images) and progress notes; default none.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>What <see cref="OnnxQuantizer"/> did.</summary>
/// <param name="CalibrationImages">Images the activation ranges were measured on.</param>
/// <param name="SkippedImages">Calibration files that could not be read and were skipped.</param>
/// <param name="QuantizedNodes">Operators that now run on 8-bit inputs (Conv, Add, Gemm, MatMul).</param>
/// <param name="FloatNodes">Convolutions and classifiers left in float, by name.</param>
/// <param name="FoldedBatchNorms">Batch norms folded into the convolution before them.</param>
/// <param name="QuantizedTensors">Activation tensors given a QuantizeLinear/DequantizeLinear pair.</param>
/// <param name="Settings">The settings as written to the model's metadata (<see cref="OnnxQuantizer.MetadataKey"/>).</param>
public sealed record QuantizationSummary(
    int CalibrationImages,
    int SkippedImages,
    int QuantizedNodes,
    IReadOnlyList<string> FloatNodes,
    int FoldedBatchNorms,
    int QuantizedTensors,
    string Settings);
