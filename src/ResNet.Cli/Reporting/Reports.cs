using System.Globalization;
using System.Text;
using System.Text.Json;
using ResNet.Scoring;
using ResNet.Trainer.Training;

namespace ResNet.Cli.Reporting;

/// <summary>Metrics files (CSV, JSON) and plots (SVG, written directly: no plotting dependency, no SkiaSharp version pull).</summary>
/// <remarks>
/// PNG was weighed and left out (2026-12-02): OxyPlot.SkiaSharp 2.2.0 resolves on SkiaSharp 2.88.9, but it shapes text with
/// SkiaSharp.HarfBuzz, whose Linux native library it does not bring (its PngExporter throws DllNotFoundException for
/// libHarfBuzzSharp until HarfBuzzSharp.NativeAssets.Linux is added), and its labels depend on the fonts installed.
/// SVG leaves fonts to the viewer, opens in any browser and adds nothing to the tool's size.
/// </remarks>
internal static class Reports
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static void WriteHistoryCsv(string path, IReadOnlyList<EpochStats> history)
    {
        var sb = new StringBuilder("epoch,iteration,train_loss,train_error,validation_loss,validation_error,learning_rate,seconds\n");
        foreach (var h in history)
            sb.AppendLine(string.Create(Inv, $"{h.Epoch},{h.Iteration},{h.TrainLoss:G6},{h.TrainError:G6},{h.ValidationLoss:G6},{h.ValidationError:G6},{h.LearningRate:G6},{h.Seconds:F2}"));
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    // Every report goes through the one atomic writer: Ctrl-C or a full disk never leaves half a metrics file.
    public static void WriteJson<T>(string path, T value) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(value, Json));

    public static object Summary(EvaluationReport r) => new
    {
        images = r.Count,
        accuracy = r.Accuracy,
        top1_error = r.Top1Error,
        top5_error = r.Top5Error,
        loss = r.Loss,
        classes = r.ClassNames,
        per_class_accuracy = r.PerClassAccuracy.Select(a => double.IsNaN(a) ? (double?)null : a).ToArray(),
        confusion_matrix = r.ConfusionMatrix,
    };

    /// <summary>Training loss and errors per epoch as an SVG line chart.</summary>
    public static void WriteCurvesSvg(string path, IReadOnlyList<EpochStats> history, double? testError = null)
    {
        const int W = 720, H = 400, L = 60, R = 170, T = 30, B = 50;
        double maxLoss = Math.Max(1e-9, history.Max(h => Math.Max(h.TrainLoss, h.ValidationLoss ?? 0)));
        int n = history.Count;
        double X(int epoch) => L + (n <= 1 ? 0 : (epoch - 1) * (W - L - R) / (double)(n - 1));
        double Y(double frac) => T + (1 - frac) * (H - T - B);
        var sb = new StringBuilder();
        sb.AppendLine($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"12\">");
        sb.AppendLine($"<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>");
        sb.AppendLine($"<text x=\"{L}\" y=\"18\" font-size=\"14\">Training curves (left axis: error 0-100%; loss scaled to its maximum {maxLoss.ToString("G3", Inv)})</text>");
        for (int i = 0; i <= 10; i++)
        {
            double y = Y(i / 10.0);
            sb.AppendLine(string.Create(Inv, $"<line x1=\"{L}\" x2=\"{W - R}\" y1=\"{y:F1}\" y2=\"{y:F1}\" stroke=\"#e0e0e0\"/><text x=\"{L - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">{i * 10}%</text>"));
        }
        sb.AppendLine(string.Create(Inv, $"<text x=\"{(L + W - R) / 2}\" y=\"{H - 12}\" text-anchor=\"middle\">epoch (1 to {n})</text>"));
        void Line(string name, string colour, Func<EpochStats, double?> value, int row)
        {
            var points = history.Where(h => value(h) is not null).Select(h => string.Create(Inv, $"{X(h.Epoch):F1},{Y(value(h)!.Value):F1}")).ToArray();
            if (points.Length == 0) return;
            sb.AppendLine($"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{string.Join(' ', points)}\"/>");
            sb.AppendLine(string.Create(Inv, $"<line x1=\"{W - R + 10}\" x2=\"{W - R + 30}\" y1=\"{T + 20 * row}\" y2=\"{T + 20 * row}\" stroke=\"{colour}\" stroke-width=\"2\"/><text x=\"{W - R + 36}\" y=\"{T + 20 * row + 4}\">{name}</text>"));
        }
        Line("train loss (scaled)", "#1f77b4", h => h.TrainLoss / maxLoss, 0);
        Line("train error", "#ff7f0e", h => h.TrainError, 1);
        Line("validation error", "#2ca02c", h => h.ValidationError, 2);
        if (testError is double e)
            sb.AppendLine(string.Create(Inv, $"<line x1=\"{L}\" x2=\"{W - R}\" y1=\"{Y(e):F1}\" y2=\"{Y(e):F1}\" stroke=\"#d62728\" stroke-dasharray=\"6 4\"/><text x=\"{W - R + 10}\" y=\"{T + 64}\" fill=\"#d62728\">test error {e:P1}</text>"));
        sb.AppendLine("</svg>");
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    /// <summary>The confusion matrix as an SVG heat map with counts.</summary>
    public static void WriteConfusionSvg(string path, EvaluationReport r)
    {
        int k = r.ClassNames.Count, cell = Math.Clamp(480 / Math.Max(k, 1), 14, 48), left = 120, top = 110;
        int width = left + k * cell + 20, height = top + k * cell + 40;
        var sb = new StringBuilder();
        sb.AppendLine($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">");
        sb.AppendLine($"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>");
        sb.AppendLine(string.Create(Inv, $"<text x=\"10\" y=\"18\" font-size=\"14\">Confusion matrix: {r.Count} images, accuracy {r.Accuracy:P1} (rows: true class, columns: predicted)</text>"));
        for (int i = 0; i < k; i++)
        {
            int rowTotal = Math.Max(1, r.ConfusionMatrix[i].Sum());
            sb.AppendLine($"<text x=\"{left - 6}\" y=\"{top + i * cell + cell / 2 + 4}\" text-anchor=\"end\">{Escape(r.ClassNames[i])}</text>");
            sb.AppendLine($"<text transform=\"translate({left + i * cell + cell / 2 + 4},{top - 6}) rotate(-60)\">{Escape(r.ClassNames[i])}</text>");
            for (int j = 0; j < k; j++)
            {
                double share = (double)r.ConfusionMatrix[i][j] / rowTotal;
                int shade = (int)Math.Round(255 * (1 - share));
                sb.AppendLine(string.Create(Inv, $"<rect x=\"{left + j * cell}\" y=\"{top + i * cell}\" width=\"{cell}\" height=\"{cell}\" fill=\"rgb({shade},{shade},255)\" stroke=\"#ccc\"/>"));
                if (r.ConfusionMatrix[i][j] > 0 && cell >= 18)
                    sb.AppendLine($"<text x=\"{left + j * cell + cell / 2}\" y=\"{top + i * cell + cell / 2 + 4}\" text-anchor=\"middle\" fill=\"{(share > 0.5 ? "white" : "black")}\">{r.ConfusionMatrix[i][j]}</text>");
            }
        }
        sb.AppendLine("</svg>");
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    private static string Escape(string s) => s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);
}
