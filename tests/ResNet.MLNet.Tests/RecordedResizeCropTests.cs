using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet.Transforms;
using ResNet.Scoring;
using ResNet.Trainer.Models;
using ResNet.Trainer.Onnx;
using SkiaSharp;

namespace ResNet.MLNet.Tests;

/// <summary>
/// A model whose ONNX metadata records a pretrained network's resize and centre crop is scored by the ML.NET transformers
/// exactly as <see cref="OnnxScorer.ScoreFiles"/> scores the raw files (which the pretrained parity tests hold to torchvision's
/// <c>weights.transforms()</c>), from path and encoded-bytes columns, and after Save/Load.
/// </summary>
public sealed class RecordedResizeCropTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("resnet-resizecrop-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class Row
    {
        public string ImagePath { get; set; } = "";
    }

    private string[] WriteImages()
    {
        var random = new Random(3);
        // Shrunk (antialiasing matters) and enlarged, landscape and portrait, PNG and JPEG.
        return new (int W, int H, SKEncodedImageFormat Format)[] { (517, 389, SKEncodedImageFormat.Png), (301, 643, SKEncodedImageFormat.Png), (641, 479, SKEncodedImageFormat.Jpeg), (97, 130, SKEncodedImageFormat.Png) }
            .Select((s, i) =>
            {
                using var bitmap = new SKBitmap(s.W, s.H, SKColorType.Rgba8888, SKAlphaType.Opaque);
                for (int y = 0; y < s.H; y++)
                    for (int x = 0; x < s.W; x++)
                        bitmap.SetPixel(x, y, new SKColor((byte)(128 + 100 * Math.Sin(x * 0.05 + i) + random.Next(-20, 21)), (byte)(255 * y / s.H), (byte)random.Next(256)));
                string path = Path.Combine(_dir, $"image{i}-{s.W}x{s.H}.{(s.Format == SKEncodedImageFormat.Png ? "png" : "jpg")}");
                using var data = bitmap.Encode(s.Format, 90);
                File.WriteAllBytes(path, data.ToArray());
                return path;
            }).ToArray();
    }

    [Theory]
    [InlineData(256)]
    [InlineData(232)]
    public void MLNetTransformers_ScoreRawFilesOfAnySize_AsTheScorerDoes_FromPathsAndBytes_AndAfterSaveAndLoad(int resize)
    {
        string onnx = Path.Combine(_dir, "model.onnx");
        using (var model = new ResNetModel(ResNetSpec.Parse("resnet18") with { NumClasses = 5 }, seed: 4))
        {
            model.eval();
            OnnxExporter.Export(model, onnx, new OnnxExportOptions
            {
                Normalization = InputNormalization.ImageNet, Preprocessing = new ResizeCrop(resize, 224), ImageHeight = 224, ImageWidth = 224,
                ClassNames = ["a", "b", "c", "d", "e"],
            });
        }
        string[] files = WriteImages();
        using var scorer = new OnnxScorer(onnx);
        var expected = scorer.ScoreFiles(files);

        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(files.Select(f => new Row { ImagePath = f }));
        void AssertSame(IDataView scored, string route)
        {
            var rows = scored.GetColumn<float[]>("Score").ToArray();
            Assert.Equal(files.Length, rows.Length);
            double max = 0;
            for (int i = 0; i < rows.Length; i++)
                for (int c = 0; c < expected.ClassCount; c++)
                    max = Math.Max(max, Math.Abs(rows[i][c] - expected.ProbabilitiesOf(i)[c]));
            Assert.True(max <= 1e-6, $"{route}: max probability difference {max:E3} from OnnxScorer.ScoreFiles");
        }

        AssertSame(ml.Transforms.ApplyResNet(onnx, imageColumnName: "ImagePath").Fit(data).Transform(data), "path column");
        var bytes = ml.Transforms.LoadRawImageBytes("Bytes", null, "ImagePath").Append(ml.Transforms.ApplyResNet(onnx, imageColumnName: "Bytes")).Fit(data);
        AssertSame(bytes.Transform(data), "bytes column");
        // Decoded images have lost the original the resize needs: refused, naming the column and the two that work.
        var decoded = Assert.Throws<SchemaMismatchException>(() => ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.ApplyResNet(onnx)).Fit(data));
        Assert.Contains("'Image'", decoded.Message);
        Assert.Contains("LoadRawImageBytes", decoded.Message);

        string zip = Path.Combine(_dir, "model.zip");
        ml.Model.Save(bytes, data.Schema, zip);
        var loaded = new MLContext().RegisterResNet().Model.Load(zip, out _);
        AssertSame(loaded.Transform(data), "bytes column, saved and loaded");
    }

    [Fact]
    public void MetadataWhoseCropDiffersFromTheInput_IsRefusedNamingBothSizes()
    {
        var metadata = new Dictionary<string, string> { [OnnxMetadataKeys.Preprocessing] = OnnxMetadataKeys.PreprocessingJson(new ResizeCrop(256, 200)) };
        var ex = Assert.Throws<OnnxModelFormatException>(() => OnnxModelInfo.FromMetadata(metadata, 3, 224, 224, 5, "model.onnx"));
        Assert.Contains("resizes to 256 and crops 200", ex.Message);
        Assert.Contains("224x224", ex.Message);
        Assert.Equal(new ResizeCrop(232, 224), OnnxModelInfo.FromMetadata(
            new Dictionary<string, string> { [OnnxMetadataKeys.Preprocessing] = OnnxMetadataKeys.PreprocessingJson(new ResizeCrop(232, 224)) }, 3, 224, 224, 5, "m").Preprocessing);
    }
}
