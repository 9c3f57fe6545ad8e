using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace ResNet.Scoring.Quantization;

/// <summary>The float range an activation tensor is mapped onto 0..255.</summary>
internal readonly record struct ActivationRange(float Min, float Max)
{
    /// <summary>Scale and zero point of the uint8 encoding; 0 is always exactly representable (zero padding, ReLU).</summary>
    public (float Scale, byte ZeroPoint) ToUint8()
    {
        float lo = Math.Min(Min, 0f), hi = Math.Max(Max, 0f);
        if (!(hi > lo) || !float.IsFinite(hi - lo)) return (1f, 0);
        float scale = (hi - lo) / 255f;
        return (scale, (byte)Math.Clamp(MathF.Round(-lo / scale, MidpointRounding.ToEven), 0, 255));
    }
}

/// <summary>
/// Runs the float model on calibration images with the chosen tensors as extra outputs and turns what it sees into
/// ranges: min-max directly; percentile and entropy from a histogram of absolute values (a second run).
/// </summary>
internal static class Calibrator
{
    private const int Bins = 2048;

    public static Dictionary<string, ActivationRange> Measure(ModelProto model, IReadOnlyList<string> tensors, IReadOnlyList<float[]> images,
        int[] shape, QuantizationOptions options)
    {
        var probe = model.Clone();
        var declared = probe.Graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var t in tensors.Where(t => !declared.Contains(t)))
            probe.Graph.Output.Add(new ValueInfoProto
            {
                Name = t,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            });
        using var so = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC,
            IntraOpNumThreads = options.Threads,
            InterOpNumThreads = 1,
        };
        using var session = new InferenceSession(probe.ToByteArray(), so);
        string input = session.InputMetadata.Keys.Single();
        // The extra outputs of one run hold every activation: keep a run to about 64 MB of them at 224x224.
        int batch = Math.Max(1, Math.Min(options.CalibrationBatchSize, 150_000 / (shape[1] * shape[2])));

        var min = tensors.ToDictionary(t => t, _ => float.PositiveInfinity, StringComparer.Ordinal);
        var max = tensors.ToDictionary(t => t, _ => float.NegativeInfinity, StringComparer.Ordinal);
        Run(session, input, tensors, images, shape, batch, (name, values) =>
        {
            float lo = min[name], hi = max[name];
            foreach (float v in values) { if (v < lo) lo = v; if (v > hi) hi = v; }
            min[name] = lo; max[name] = hi;
        });
        var minMax = tensors.ToDictionary(t => t, t => new ActivationRange(min[t], max[t]), StringComparer.Ordinal);
        if (options.Method == CalibrationMethod.MinMax) return minMax;

        var histograms = tensors.ToDictionary(t => t, _ => new long[Bins], StringComparer.Ordinal);
        var top = tensors.ToDictionary(t => t, t => Math.Max(Math.Abs(min[t]), Math.Abs(max[t])), StringComparer.Ordinal);
        Run(session, input, tensors, images, shape, batch, (name, values) =>
        {
            var h = histograms[name];
            float perBin = top[name] > 0 ? Bins / top[name] : 0;
            foreach (float v in values) h[Math.Min(Bins - 1, (int)(Math.Abs(v) * perBin))]++;
        });
        return tensors.ToDictionary(t => t, t =>
        {
            var r = minMax[t];
            float width = top[t] / Bins;
            float threshold = options.Method == CalibrationMethod.Percentile
                ? PercentileThreshold(histograms[t], options.Percentile) * width
                : EntropyThreshold(histograms[t], r.Min >= 0 ? 256 : 128) * width;
            return new ActivationRange(Math.Max(r.Min, -threshold), Math.Min(r.Max, threshold));
        }, StringComparer.Ordinal);
    }

    private static void Run(InferenceSession session, string input, IReadOnlyList<string> tensors, IReadOnlyList<float[]> images,
        int[] shape, int batch, Action<string, ReadOnlySpan<float>> observe)
    {
        int per = shape[0] * shape[1] * shape[2];
        var buffer = new float[batch * per];
        using var runOptions = new RunOptions();
        for (int start = 0; start < images.Count; start += batch)
        {
            int n = Math.Min(batch, images.Count - start);
            for (int i = 0; i < n; i++) images[start + i].CopyTo(buffer, i * per);
            using var x = OrtValue.CreateTensorValueFromMemory(buffer, [n, shape[0], shape[1], shape[2]]);
            using var outputs = session.Run(runOptions, [input], [x], tensors);
            for (int i = 0; i < tensors.Count; i++)
                observe(tensors[i], outputs[i].GetTensorDataAsSpan<float>());
        }
    }

    /// <summary>Bins (counted from 0, as a count of bin widths) below which <paramref name="percentile"/> % of the values lie.</summary>
    internal static float PercentileThreshold(long[] histogram, double percentile)
    {
        long total = histogram.Sum(), target = (long)Math.Ceiling(total * Math.Clamp(percentile, 0, 100) / 100.0), seen = 0;
        for (int i = 0; i < histogram.Length; i++)
            if ((seen += histogram[i]) >= target) return i + 1;
        return histogram.Length;
    }

    /// <summary>
    /// The clipping threshold, in bin widths, whose histogram re-binned to <paramref name="levels"/> levels loses the
    /// least information (KL divergence of clipped-and-requantized against clipped), as TensorRT's entropy calibration.
    /// </summary>
    /// <remarks>
    /// The first bin (values next to 0; half of every ReLU output) is left out: 0 is exactly representable whatever the
    /// threshold, and its spike would otherwise make every merge look costly and pick the narrowest range.
    /// </remarks>
    internal static float EntropyThreshold(long[] histogram, int levels) => 1 + EntropyThresholdOf(histogram[1..], levels);

    private static float EntropyThresholdOf(long[] histogram, int levels)
    {
        int bins = histogram.Length;
        if (bins <= levels) return bins;
        double best = double.PositiveInfinity;
        int bestEnd = bins;
        var p = new double[bins];
        var q = new double[bins];
        for (int end = levels; end <= bins; end++)
        {
            // Reference: the first `end` bins with everything beyond folded into the last one.
            double outliers = 0;
            for (int i = end; i < bins; i++) outliers += histogram[i];
            for (int i = 0; i < end; i++) p[i] = histogram[i];
            p[end - 1] += outliers;
            // Candidate: the same bins merged into `levels` groups, each group's mass spread over its non-empty bins.
            for (int g = 0; g < levels; g++)
            {
                int from = g * end / levels, to = (g + 1) * end / levels;
                double mass = 0; int nonEmpty = 0;
                for (int i = from; i < to; i++) { mass += histogram[i]; if (histogram[i] > 0) nonEmpty++; }
                for (int i = from; i < to; i++) q[i] = histogram[i] > 0 ? mass / nonEmpty : 0;
            }
            double kl = Divergence(p.AsSpan(0, end), q.AsSpan(0, end));
            if (kl < best) { best = kl; bestEnd = end; }
        }
        return bestEnd;
    }

    private static double Divergence(ReadOnlySpan<double> p, ReadOnlySpan<double> q)
    {
        double sp = 0, sq = 0;
        foreach (double v in p) sp += v;
        foreach (double v in q) sq += v;
        if (sp == 0) return 0;
        double kl = 0;
        for (int i = 0; i < p.Length; i++)
        {
            if (p[i] == 0) continue;
            double pi = p[i] / sp, qi = q[i] > 0 ? q[i] / sq : 1e-12; // an empty candidate bin where the reference has mass: heavy penalty
            kl += pi * Math.Log(pi / qi);
        }
        return kl;
    }
}
