using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet.Transforms;

namespace ResNet.MLNet.Tests;

/// <summary>ApplyResNet on the ONNX file a fitted ResNetClassifier exported, with each kind of image column.</summary>
public sealed class ApplyResNetTests(TrainedPipelineFixture f) : IClassFixture<TrainedPipelineFixture>
{
    private string ExportedModel()
    {
        string path = Path.Combine(f.Folder, "apply.onnx");
        if (!File.Exists(path)) File.WriteAllBytes(path, f.Scorer.OnnxModel.ToArray());
        return path;
    }

    private List<float[]> Reference() => f.Model.Transform(f.Test).GetColumn<float[]>("Score").ToList();

    private static void AssertSame(List<float[]> expected, IDataView scored, double tolerance = 1e-6)
    {
        var actual = scored.GetColumn<float[]>("Score").ToList();
        Assert.Equal(expected.Count, actual.Count);
        double max = expected.Zip(actual).Max(p => p.First.Zip(p.Second).Max(q => Math.Abs(q.First - q.Second)));
        Assert.True(max <= tolerance, $"max difference {max}");
    }

    [Fact]
    public void ApplyResNet_OnAnImageColumn_MatchesTheFittedModel()
    {
        var ml = new MLContext();
        var pipeline = ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.ApplyResNet(ExportedModel()));
        AssertSame(Reference(), pipeline.Fit(f.Test).Transform(f.Test));
    }

    [Fact]
    public void ApplyResNet_OnAPathColumn_MatchesTheFittedModel()
    {
        var ml = new MLContext();
        var scored = ml.Transforms.ApplyResNet(ExportedModel(), imageColumnName: "ImagePath").Fit(f.Test).Transform(f.Test);
        AssertSame(Reference(), scored);
        VBuffer<ReadOnlyMemory<char>> names = default;
        scored.Schema["PredictedLabel"].GetKeyValues(ref names);
        Assert.Equal("Sneaker", names.GetItemOrDefault(7).ToString());
    }

    [Fact]
    public void ApplyResNet_OnEncodedBytes_MatchesTheFittedModel_AndSavesAndLoads()
    {
        var ml = new MLContext();
        var pipeline = ml.Transforms.LoadRawImageBytes("Bytes", null, "ImagePath")
            .Append(ml.Transforms.ApplyResNet(ExportedModel(), imageColumnName: "Bytes"));
        var model = pipeline.Fit(f.Test);
        AssertSame(Reference(), model.Transform(f.Test));

        string zip = Path.Combine(f.Folder, "bytes.zip");
        ml.Model.Save(model, f.Test.Schema, zip);
        var loaded = new MLContext().RegisterResNet().Model.Load(zip, out _);
        AssertSame(Reference(), loaded.Transform(f.Test));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(64)]
    public void BatchSize_DoesNotChangeScores(int batchSize)
    {
        var ml = new MLContext();
        var scored = ml.Transforms.ApplyResNet(ExportedModel(), imageColumnName: "ImagePath", batchSize: batchSize).Fit(f.Test).Transform(f.Test);
        AssertSame(Reference(), scored);
    }

    [Fact]
    public void ApplyResNet_OnAQuantizedModel_PredictsLikeTheFloatOne_EvaluatesAndSavesAndLoads()
    {
        string int8 = Path.Combine(f.Folder, "apply.int8.onnx");
        var summary = ResNet.Scoring.Quantization.OnnxQuantizer.Quantize(ExportedModel(), [Samples.Train], int8);
        Assert.Equal(1000, summary.CalibrationImages);
        var ml = new MLContext();
        var floatScored = ml.Transforms.ApplyResNet(ExportedModel(), imageColumnName: "ImagePath").Fit(f.Test).Transform(f.Test);
        var model = ml.Transforms.ApplyResNet(int8, imageColumnName: "ImagePath").Fit(f.Test);
        var scored = model.Transform(f.Test);
        var a = floatScored.GetColumn<uint>("PredictedLabel").ToArray();
        var b = scored.GetColumn<uint>("PredictedLabel").ToArray();
        Assert.Equal(300, b.Length);
        Assert.True(a.Zip(b).Count(p => p.First == p.Second) >= 0.95 * a.Length, $"agreement {a.Zip(b).Count(p => p.First == p.Second)} of {a.Length}");

        var labelled = ml.Transforms.Conversion.MapValueToKey("Label", keyData: f.Keys).Fit(f.Test).Transform(f.Test);
        double Accuracy(string path) => ml.MulticlassClassification.Evaluate(
            ml.Transforms.ApplyResNet(path, imageColumnName: "ImagePath").Fit(labelled).Transform(labelled)).MicroAccuracy;
        Assert.InRange(Accuracy(int8) - Accuracy(ExportedModel()), -0.02, 1.0);

        string zip = Path.Combine(f.Folder, "int8.zip");
        ml.Model.Save(model, f.Test.Schema, zip);
        var loaded = new MLContext().RegisterResNet().Model.Load(zip, out _);
        AssertSame(scored.GetColumn<float[]>("Score").ToList(), loaded.Transform(f.Test), 1e-5);
    }

    [Fact]
    public void SaveQuantizedOnnx_FromTheFittedPipeline_ScoresThroughApplyResNet_WithinOnePointAndAgreeingOn97Percent()
    {
        // The fitted ResNetClassifier of the pipeline writes its INT8 copy, calibrated on the training rows' path column.
        string int8 = Path.Combine(f.Folder, "pipeline.int8.onnx");
        var log = new List<string>();
        var summary = f.Scorer.SaveQuantizedOnnx(int8, f.Train, imageColumnName: "ImagePath", new ResNet.Scoring.Quantization.QuantizationOptions { Log = log.Add });
        Assert.Equal(1000, summary.CalibrationImages);
        Assert.Equal(["conv1", "fc"], summary.FloatNodes);
        Assert.Contains(log, l => l.Contains("1000 images from the data's column 'ImagePath'"));
        Assert.True(ResNet.Scoring.Quantization.OnnxQuantizer.IsQuantized(int8));
        Assert.InRange((double)new FileInfo(int8).Length / f.Scorer.OnnxModel.Length, 0.2, 0.3);

        // Calibration through ML.NET's preprocessing sees the pixels the file route (ImageDecoder) sees: the same file.
        string fromFolder = Path.Combine(f.Folder, "folder.int8.onnx");
        ResNet.Scoring.Quantization.OnnxQuantizer.Quantize(ExportedModel(), [Samples.Train], fromFolder);
        Assert.Equal(File.ReadAllBytes(fromFolder), File.ReadAllBytes(int8));

        // Scored in a pipeline of the same shape as the trained one, with the label mapped for Evaluate.
        var ml = new MLContext();
        var pipeline = ml.Transforms.LoadImages("Image", null, "ImagePath")
            .Append(ml.Transforms.Conversion.MapValueToKey("Label", keyData: f.Keys))
            .Append(ml.Transforms.ApplyResNet(int8))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel"));
        var scored = pipeline.Fit(f.Test).Transform(f.Test);
        var reference = f.Model.Transform(f.Test);
        double quantized = ml.MulticlassClassification.Evaluate(scored).MicroAccuracy;
        double original = ml.MulticlassClassification.Evaluate(reference).MicroAccuracy;
        Assert.InRange(original, 0.6, 1.0);
        Assert.True(quantized - original >= -0.01, $"float {original:P2}, int8 {quantized:P2}");
        var a = reference.GetColumn<string>("PredictedClass").ToArray();
        var b = scored.GetColumn<string>("PredictedClass").ToArray();
        Assert.Equal(300, b.Length);
        int agree = a.Zip(b).Count(p => p.First == p.Second);
        Assert.True(agree >= 0.97 * a.Length, $"agreement {agree} of {a.Length}");
    }

    [Fact]
    public void SaveQuantizedOnnx_BadInput_IsRefusedBeforeAnyFileIsWritten()
    {
        string output = Path.Combine(f.Folder, "refused.int8.onnx");
        var ml = new MLContext();
        // No such column: named, with the columns there are.
        var ex = Assert.Throws<SchemaMismatchException>(() => f.Scorer.SaveQuantizedOnnx(output, f.Train));
        Assert.Contains("'Image'", ex.Message);
        Assert.Contains("ImagePath", ex.Message);
        // Too few rows: says how many it needs.
        var few = ml.Data.TakeRows(f.Train, 10);
        var tiny = Assert.Throws<ResNet.Scoring.Quantization.CalibrationDataException>(() => f.Scorer.SaveQuantizedOnnx(output, few, "ImagePath"));
        Assert.Contains("gave 10 decodable", tiny.Message);
        Assert.Contains($"at least {ResNet.Scoring.Quantization.QuantizationOptions.MinimumCalibrationImages}", tiny.Message);
        // A missing image file: the row and the path are named.
        var paths = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 30).Select(i => new { ImagePath = i == 25 ? Path.Combine(f.Folder, "gone.png") : f.Train.GetColumn<string>("ImagePath").ElementAt(i) }));
        var bad = Assert.Throws<InvalidDataException>(() => f.Scorer.SaveQuantizedOnnx(output, paths, "ImagePath"));
        Assert.Contains("row 25", bad.Message);
        Assert.Contains("gone.png", bad.Message);
        // A scorer of an INT8 model: refused as already quantized, before any image is read.
        string int8 = Path.Combine(f.Folder, "again.int8.onnx");
        ResNet.Scoring.Quantization.OnnxQuantizer.Quantize(ExportedModel(), [Samples.Train], int8);
        using var quantizedScorer = ml.Transforms.ApplyResNet(int8, imageColumnName: "ImagePath").Fit(f.Test);
        var again = Assert.Throws<ResNet.Scoring.OnnxModelFormatException>(() => quantizedScorer.SaveQuantizedOnnx(output, paths));
        Assert.Contains("already quantized", again.Message);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void ApplyResNet_MissingModel_NamesTheFile()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => new MLContext().Transforms.ApplyResNet(Path.Combine(f.Folder, "missing.onnx")));
        Assert.Contains("missing.onnx", ex.Message);
    }

    [Fact]
    public void ApplyResNet_NotAnOnnxFile_IsAClearError()
    {
        string path = Path.Combine(f.Folder, "garbage.onnx");
        File.WriteAllText(path, "definitely not a protobuf model");
        var ex = Assert.ThrowsAny<Exception>(() => new MLContext().Transforms.ApplyResNet(path));
        Assert.Contains("garbage.onnx", ex.Message);
        Assert.Contains("not a valid ONNX file", ex.Message);
    }
}
