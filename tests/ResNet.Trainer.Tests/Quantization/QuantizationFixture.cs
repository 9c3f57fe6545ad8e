using ResNet.Scoring.Quantization;
using ResNet.Trainer.Data;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using ResNet.Trainer.Training;

namespace ResNet.Trainer.Tests.Quantization;

/// <summary>
/// One ResNet-20 trained once on the embedded Fashion-MNIST sample (samples/data: 1,000 training images, 28x28 gray,
/// fast-cpu recipe, 8 epochs), exported to ONNX with batch norms unfolded and every optional output, then quantized
/// with its own training images at the default settings.
/// </summary>
public sealed class QuantizationFixture : IDisposable
{
    public string Folder { get; } = TestData.TempDir();
    public string FloatModel { get; }
    public string QuantizedModel { get; }
    public QuantizationSummary Summary { get; }
    public List<string> Log { get; } = [];

    public static string Samples
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "samples", "data", "fashion-mnist-small");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException("samples/data/fashion-mnist-small was not found above " + AppContext.BaseDirectory);
        }
    }

    public static string Train => Path.Combine(Samples, "train");
    public static string Test => Path.Combine(Samples, "test");

    public QuantizationFixture()
    {
        var data = InMemoryImages.From(ImageFolderSource.Scan(Train, new ImageFolderOptions { Channels = 1 }));
        var spec = ResNetSpec.Parse("resnet20") with { InputChannels = 1, NumClasses = data.ClassNames.Count };
        var options = Recipes.FastCpu() with { Length = TrainingLength.Epochs(8), BatchSize = 64, ImageSize = 28, Seed = 1, Threads = 2 };
        using var model = new ResNetModel(spec, seed: options.Seed);
        var result = ResNetTrainer.Train(model, data, options: options);
        FloatModel = Path.Combine(Folder, "model.onnx");
        OnnxExporter.Export(model, FloatModel, new OnnxExportOptions
        {
            ClassNames = result.Card.ClassNames,
            ImageHeight = 28,
            Normalization = result.Card.Normalization.ToInputNormalization(),
            IncludePredictedIndex = true,
        });
        QuantizedModel = Path.Combine(Folder, "model.int8.onnx");
        Summary = OnnxQuantizer.Quantize(FloatModel, [Train], QuantizedModel, new QuantizationOptions { Log = Log.Add });
    }

    public void Dispose() => Directory.Delete(Folder, recursive: true);
}
