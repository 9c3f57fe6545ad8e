using Microsoft.ML;
using Microsoft.ML.Data;
using ResNet.MLNet.Transforms;
using SkiaSharp;

namespace ResNet.MLNet.Tests;

/// <summary>Bad inputs to the ResNet estimators: each gives a clear message naming the input and the fix.</summary>
public sealed class BadInputTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("resnet-bad-").FullName;
    private readonly MLContext _ml = new(seed: 0);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private sealed class Row
    {
        public string ImagePath { get; set; } = "";
        public string Label { get; set; } = "";
        public float Number { get; set; }
    }

    private static ResNetClassifierEstimator.Options Tiny(string image = "Image") => new()
    {
        Architecture = "resnet8", ImageColumnName = image, Channels = 1, ImageSize = 16, Epochs = 1, BatchSize = 8, Seed = 1,
    };

    private IDataView Folder(int classes, int perClass)
    {
        for (int c = 0; c < classes; c++)
            for (int i = 0; i < perClass; i++)
                ImageFolderTests.WritePng(Path.Combine(_root, "data", $"c{c}", $"{i}.png"), 16, 16, new SKColor((byte)(c * 60), (byte)(i * 20), 0));
        return _ml.Data.LoadImagesFromDirectory(Path.Combine(_root, "data"));
    }

    [Fact]
    public void TextLabel_ShowsTheOneLineToAdd()
    {
        var data = Folder(2, 2);
        var pipeline = _ml.Transforms.LoadImages("Image", null, "ImagePath").Append(_ml.Transforms.ResNetClassifier(Tiny()));
        var ex = Assert.Throws<SchemaMismatchException>(() => pipeline.Fit(data));
        Assert.Contains("Label column 'Label'", ex.Message);
        Assert.Contains("String", ex.Message);
        Assert.Contains("mlContext.Transforms.Conversion.MapValueToKey(\"Label\")", ex.Message);
    }

    [Fact]
    public void MissingImageColumn_NamesTheColumnAndTheColumnsThere()
    {
        var data = Folder(2, 2);
        var pipeline = _ml.Transforms.Conversion.MapValueToKey("Label").Append(_ml.Transforms.ResNetClassifier(Tiny("Picture")));
        var ex = Assert.Throws<SchemaMismatchException>(() => pipeline.Fit(data));
        Assert.Contains("Image column 'Picture' was not found", ex.Message);
    }

    [Fact]
    public void WrongImageColumnType_NamesTheTypeFoundAndExpected()
    {
        var data = _ml.Data.LoadFromEnumerable(new[] { new Row { Label = "a", Number = 1 }, new Row { Label = "b", Number = 2 } });
        var estimator = _ml.Transforms.Conversion.MapValueToKey("Label").Append(_ml.Transforms.ResNetClassifier(Tiny("Number")));
        var ex = Assert.Throws<SchemaMismatchException>(() => estimator.Fit(data));
        Assert.Contains("'Number' has type Single", ex.Message);
        Assert.Contains("expected an image", ex.Message);
    }

    [Fact]
    public void OneClass_IsRefused()
    {
        var data = Folder(1, 3);
        var pipeline = _ml.Transforms.LoadImages("Image", null, "ImagePath").Append(_ml.Transforms.Conversion.MapValueToKey("Label"))
            .Append(_ml.Transforms.ResNetClassifier(Tiny()));
        var ex = Assert.Throws<InvalidDataException>(() => pipeline.Fit(data));
        Assert.Contains("at least 2", ex.Message);
    }

    [Fact]
    public void ZeroRows_IsRefused()
    {
        var data = _ml.Data.LoadFromEnumerable(new[] { new Row { ImagePath = "x.png", Label = "a" }, new Row { ImagePath = "y.png", Label = "b" } });
        var keys = _ml.Transforms.Conversion.MapValueToKey("Label").Fit(data);
        var empty = _ml.Data.FilterRowsByColumn(keys.Transform(data), "Number", lowerBound: 5, upperBound: 6);
        var pipeline = _ml.Transforms.LoadImages("Image", null, "ImagePath").Append(_ml.Transforms.ResNetClassifier(Tiny()));
        var ex = Assert.Throws<InvalidDataException>(() => pipeline.Fit(empty));
        Assert.Contains("no rows", ex.Message);
    }

    [Fact]
    public void UndecodableImage_FailsByDefault_NamingTheRow_OrIsSkippedWithAWarning()
    {
        var data = Folder(2, 4);
        File.WriteAllBytes(Path.Combine(_root, "data", "c1", "broken.png"), [1, 2, 3, 4, 5]);
        data = _ml.Data.LoadImagesFromDirectory(Path.Combine(_root, "data"));
        var ex = Assert.Throws<InvalidDataException>(() =>
            _ml.Transforms.LoadImages("Image", null, "ImagePath").Append(_ml.Transforms.Conversion.MapValueToKey("Label"))
                .Append(_ml.Transforms.ResNetClassifier(Tiny())).Fit(data));
        Assert.Contains("could not be decoded", ex.Message);
        Assert.Contains("SkipUndecodableImages", ex.Message);

        var warnings = new List<string>();
        var ml = new MLContext(seed: 0);
        ml.Log += (_, e) => { if (e.Message.Contains("Skipped")) lock (warnings) warnings.Add(e.Message); };
        var options = Tiny("ImagePath"); // skipping works on the path (or bytes) column, decoded here
        options.SkipUndecodableImages = true;
        var estimator = ml.Transforms.ResNetClassifier(options);
        ml.Transforms.Conversion.MapValueToKey("Label").Append(estimator).Fit(data);
        Assert.Contains(warnings, w => w.Contains("Skipped 1 image(s)") && w.Contains("broken.png"));
        Assert.Equal(2, estimator.LastTraining!.Card.ClassNames.Count);

        // An image column made by LoadImages is streamed from the path column it was loaded from, so skipping works there too.
        lock (warnings) warnings.Clear();
        var upstream = Tiny();
        upstream.SkipUndecodableImages = true;
        var fromImages = ml.Transforms.ResNetClassifier(upstream);
        ml.Transforms.LoadImages("Image", null, "ImagePath").Append(ml.Transforms.Conversion.MapValueToKey("Label")).Append(fromImages).Fit(data);
        Assert.Contains(warnings, w => w.Contains("Skipped 1 image(s)") && w.Contains("broken.png"));
        Assert.Equal(8, fromImages.TrainingImages!.Count);
    }

    [Fact]
    public void TruncatedImage_FoundWhileStreaming_FailsNamingTheFile_OrIsReplacedWithAWarning()
    {
        var data = Folder(2, 4);
        // A PNG cut in half passes the header check that runs before training; it fails only when a batch decodes it.
        string cut = Path.Combine(_root, "data", "c1", "cut.png");
        ImageFolderTests.WritePng(cut, 64, 64, new SKColor(10, 200, 30));
        byte[] whole = File.ReadAllBytes(cut);
        File.WriteAllBytes(cut, whole[..(whole.Length / 2)]);
        data = _ml.Data.LoadImagesFromDirectory(Path.Combine(_root, "data"));
        var keys = _ml.Transforms.Conversion.MapValueToKey("Label");
        var ex = Assert.Throws<InvalidDataException>(() => keys.Append(_ml.Transforms.ResNetClassifier(Tiny("ImagePath"))).Fit(data));
        Assert.Contains("cut.png", ex.Message);
        Assert.Contains("could not be decoded", ex.Message);
        Assert.Contains("SkipUndecodableImages", ex.Message);

        var warnings = new List<string>();
        var ml = new MLContext(seed: 0);
        ml.Log += (_, e) => { if (e.Message.Contains("Skipped")) lock (warnings) warnings.Add(e.Message); };
        var options = Tiny("ImagePath");
        options.SkipUndecodableImages = true;
        var estimator = ml.Transforms.ResNetClassifier(options);
        ml.Transforms.Conversion.MapValueToKey("Label").Append(estimator).Fit(data);
        Assert.Contains(warnings, w => w.Contains("Skipped 1 image(s) that could not be decoded while training") && w.Contains("cut.png"));
        Assert.Equal(9, estimator.TrainingImages!.Count); // the row stays; each time it is drawn, another image of its class takes its place
    }

    [Fact]
    public void UnknownArchitecture_FailsWhenTheEstimatorIsMade()
    {
        var options = Tiny();
        options.Architecture = "resnet21";
        var ex = Assert.ThrowsAny<ArgumentException>(() => _ml.Transforms.ResNetClassifier(options));
        Assert.Contains("resnet21", ex.Message);
    }

    [Fact]
    public void CorruptModelZip_FailsToLoadWithoutCrashing()
    {
        string zip = Path.Combine(_root, "corrupt.zip");
        File.WriteAllBytes(zip, [0x50, 0x4b, 3, 4, 0, 0, 0]);
        Assert.ThrowsAny<Exception>(() => new MLContext().RegisterResNet().Model.Load(zip, out _));
    }
}
