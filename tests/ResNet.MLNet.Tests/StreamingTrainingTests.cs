using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using ResNet.MLNet.Transforms;
using ResNet.Trainer.Data;
using ResNet.Trainer.Training;
using SkiaSharp;
using Xunit.Abstractions;

namespace ResNet.MLNet.Tests;

/// <summary>
/// The estimator streams: Fit reads image references and labels, and the trainer's loader decodes each batch, whichever kind
/// of image column the view has (paths, encoded bytes, or images from LoadImages or made in memory).
/// </summary>
public sealed class StreamingTrainingTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("resnet-stream-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    public enum Column { Path, Bytes, LoadedImage, InMemoryImage }

    private sealed class MemoryRow
    {
        [ImageType(28, 28)]
        public MLImage Image { get; set; } = null!;
        public string Label { get; set; } = "";
    }

    // The same rows as each kind of image column: the path column of LoadImagesFromDirectory, its bytes, LoadImages on it,
    // or MLImages made from pixels (no path to stream from: the estimator keeps them encoded).
    private static (IDataView Data, string ImageColumn) View(MLContext ml, string folder, Column column)
    {
        var files = ml.Data.LoadImagesFromDirectory(folder);
        return column switch
        {
            Column.Path => (files, "ImagePath"),
            Column.Bytes => (ml.Transforms.LoadRawImageBytes("Bytes", null, "ImagePath").Fit(files).Transform(files), "Bytes"),
            Column.LoadedImage => (ml.Transforms.LoadImages("Image", null, "ImagePath").Fit(files).Transform(files), "Image"),
            _ => (ml.Data.LoadFromEnumerable(files.GetColumn<string>("ImagePath").Zip(files.GetColumn<string>("Label"))
                .Select(r => new MemoryRow { Image = FromPixels(ImageDecoder.Decode(r.First, 3)), Label = r.Second }).ToList()), "Image"),
        };
    }

    private static MLImage FromPixels(RawImage rgb)
    {
        var bgra = new byte[rgb.Width * rgb.Height * 4];
        for (int i = 0; i < rgb.Width * rgb.Height; i++)
        {
            bgra[4 * i] = rgb.Pixels[3 * i + 2];
            bgra[4 * i + 1] = rgb.Pixels[3 * i + 1];
            bgra[4 * i + 2] = rgb.Pixels[3 * i];
            bgra[4 * i + 3] = 255;
        }
        return MLImage.CreateFromPixels(rgb.Width, rgb.Height, MLPixelFormat.Bgra32, bgra);
    }

    // The LoadImages column (streamed from its path column) is trained the same way by TrainedPipelineFixture, with the same margin.
    [Theory]
    [InlineData(Column.Path)]
    [InlineData(Column.Bytes)]
    [InlineData(Column.InMemoryImage)]
    public void EveryImageColumnKind_Streams_AndClassifiesHeldOutImagesWellAboveChance(Column column)
    {
        var ml = new MLContext(seed: 1);
        var (train, imageColumn) = View(ml, Samples.Train, column);
        var (test, _) = View(ml, Samples.Test, column);
        var estimator = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
        {
            Architecture = "resnet20", ImageColumnName = imageColumn, Channels = 1, ImageSize = 28, Epochs = 8, BatchSize = 64, Seed = 1,
        });
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(estimator).Fit(train);
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(test));
        var images = estimator.TrainingImages!;
        log.WriteLine($"{column}: {images.Count} images, {images.Decodes} decodes in {estimator.LastTraining!.History.Count} epochs, held-out MicroAccuracy {metrics.MicroAccuracy:F3}");
        // 10 classes: chance is 0.1. The same margin as the pipeline test on the LoadImages column.
        Assert.True(metrics.MicroAccuracy > 0.6, $"MicroAccuracy {metrics.MicroAccuracy}");
        Assert.Equal(1000, images.Count);
        // Every epoch decodes its images again (nothing decoded is kept): 8 epochs of 15 full batches, plus the normalization sample.
        Assert.Equal(Math.Min(images.Count, ResNetClassifierEstimator.NormalizationSample) + 8 * (1000 / 64 * 64), images.Decodes);
    }

    [Fact]
    public void EveryImageColumnKind_GivesTheLoaderTheSamePixels()
    {
        var ml = new MLContext(seed: 1);
        string[] classes = Directory.GetDirectories(Samples.Test).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        var sources = Enum.GetValues<Column>().Select(column =>
        {
            var (data, imageColumn) = View(ml, Samples.Test, column);
            var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
            var kind = ImagePreprocessing.Classify(keyed.Schema, imageColumn);
            return TrainingDataReader.Read(keyed, kind, imageColumn, null, "Label", classes, 1, 28, skipUndecodable: false, _ => { });
        }).ToArray();
        Assert.All(sources, s => Assert.Equal(sources[0].Count, s.Count));
        Assert.All(sources, s => Assert.Equal(0, s.Decodes)); // reading the view decodes nothing
        for (int i = 0; i < sources[0].Count; i += 7)
        {
            var expected = sources[0].Load(i);
            foreach (var s in sources.Skip(1))
            {
                Assert.Equal(sources[0].LabelOf(i), s.LabelOf(i));
                Assert.Equal(expected.Pixels, s.Load(i).Pixels);
            }
        }
    }

    private string LargeImageFolder(int classes, int perClass, int width, int height)
    {
        string folder = Path.Combine(_root, "large");
        var rng = new Random(3);
        for (int c = 0; c < classes; c++)
            for (int i = 0; i < perClass; i++)
            {
                string path = Path.Combine(folder, $"class{c}", $"{i:D3}.jpg");
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                using var bitmap = new SKBitmap(width, height);
                using (var canvas = new SKCanvas(bitmap))
                {
                    canvas.Clear(new SKColor((byte)(c * 200), (byte)rng.Next(256), 60));
                    using var paint = new SKPaint { Color = new SKColor(255, 255, (byte)(c * 255)) };
                    canvas.DrawCircle(rng.Next(width), rng.Next(height), height / 4f, paint);
                }
                using var data = bitmap.Encode(SKEncodedImageFormat.Jpeg, 85);
                File.WriteAllBytes(path, data.ToArray());
            }
        return folder;
    }

    [Fact]
    public void Fit_DecodesNothingUpFront_AndEachImageOncePerEpoch()
    {
        // 160 large JPEGs: read into memory at their own size they would take 160 x 1280 x 960 x 3 bytes (590 MB).
        string folder = LargeImageFolder(classes: 2, perClass: 80, width: 1280, height: 960);
        var ml = new MLContext(seed: 1);
        var files = ml.Data.LoadImagesFromDirectory(folder);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(files).Transform(files);
        long decodesAtFirstBatch = -1;
        ResNetClassifierEstimator estimator = null!;
        var options = new ResNetClassifierEstimator.Options
        {
            Architecture = "resnet8", ImageColumnName = "ImagePath", ImageSize = 32, Epochs = 2, BatchSize = 8, Seed = 1,
            ValidationFraction = 0, Normalization = NormalizationKind.None, Workers = 1, Prefetch = 2, ProgressEvery = 1, ValidationSet = data,
            MetricsCallback = new Callback(p =>
            {
                if (p.Kind == ProgressKind.Iteration && decodesAtFirstBatch < 0) decodesAtFirstBatch = estimator.TrainingImages!.Decodes;
            }),
        };
        estimator = ml.Transforms.ResNetClassifier(options);
        estimator.Fit(data);
        var images = estimator.TrainingImages!;
        log.WriteLine($"decodes at the first batch: {decodesAtFirstBatch}; after 2 epochs: {images.Decodes} of {images.Count} images");
        // At the first batch only the loader's look-ahead has been decoded: the batch, the prefetched ones, and one per worker.
        Assert.InRange(decodesAtFirstBatch, 8, (2 + 1 + 1) * 8);
        Assert.Equal(2 * images.Count, images.Decodes);
        Assert.All(estimator.LastTraining!.History, h => Assert.NotNull(h.ValidationError)); // the validation set streams too
    }

    [Fact]
    public void ImageNetAugmentation_GetsTheOriginalImage_OtherAugmentationsTheTrainingSize()
    {
        string folder = LargeImageFolder(classes: 2, perClass: 2, width: 320, height: 240);
        var ml = new MLContext(seed: 1);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadImagesFromDirectory(folder)).Transform(ml.Data.LoadImagesFromDirectory(folder));
        string[] classes = ["class0", "class1"];
        var original = TrainingDataReader.Read(data, ImageColumnKind.Path, "ImagePath", null, "Label", classes, 3, null, false, _ => { }).Load(0);
        var cropped = TrainingDataReader.Read(data, ImageColumnKind.Path, "ImagePath", null, "Label", classes, 3, 64, false, _ => { }).Load(0);
        Assert.Equal((320, 240), (original.Width, original.Height));
        Assert.Equal((64, 64), (cropped.Width, cropped.Height));

        // Through Fit: the ImageNet recipe's scale augmentation draws its crops from the 320x240 original.
        var estimator = ml.Transforms.ResNetClassifier(new ResNetClassifierEstimator.Options
        {
            Architecture = "resnet8", ImageColumnName = "ImagePath", ImageSize = 32, Epochs = 1, BatchSize = 2, Seed = 1, ValidationFraction = 0,
            Augmentation = new ImageNetAugmentation(MinSide: 32, MaxSide: 48),
        });
        estimator.Fit(data);
        Assert.Null(estimator.TrainingImages!.Size);
    }

    private sealed class Callback(Action<TrainingProgress> action) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => action(value);
    }
}
