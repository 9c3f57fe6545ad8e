using ResNet.Trainer.Data;

namespace ResNet.Trainer.Tests.Data;

public class ResizeCropTransformTests
{
    [Theory]
    [InlineData(640, 480, 256, 341, 256)] // int(256 * 640 / 480) = int(341.33)
    [InlineData(480, 640, 232, 232, 309)] // int(232 * 640 / 480) = int(309.33)
    [InlineData(28, 28, 256, 256, 256)]
    [InlineData(517, 389, 232, 308, 232)] // int(308.35)
    public void ShorterSide_GoesToTheSize_LongerOneIsTruncatedAsTorchvisionDoes(int w, int h, int size, int ew, int eh) =>
        Assert.Equal((ew, eh), ResizeCrop.ShorterSideTo(w, h, size));

    [Fact]
    public void CenterCrop_RoundsHalfOffsetsToEven_AsPythonsRound()
    {
        // 225 wide: offset round(0.5) = 0; 227 high: round(1.5) = 2.
        var image = new RawImage(Enumerable.Range(0, 225 * 227).Select(i => (byte)(i % 225 == 0 ? i / 225 : 0)).ToArray(), 225, 227, 1);
        var crop = ResizeCrop.CenterCrop(image, 224, 224);
        Assert.Equal((224, 224), (crop.Width, crop.Height));
        Assert.Equal(2, crop.Pixels[0]);            // row 2's first pixel, column 0
        Assert.Equal(2 + 223, crop.Pixels[223 * 224]);
    }

    [Fact]
    public void Shrinking_WeighsAWiderTriangle_AsPillowsBilinearDoes()
    {
        // 4 -> 2 pixels: the filter spans 3 source pixels with weights 0.75, 0.75, 0.25 (normalised by 1.75):
        // (0*.75 + 100*.75 + 200*.25) / 1.75 = 71.4 and (100*.25 + 200*.75 + 255*.75) / 1.75 = 209.3.
        var row = new RawImage([0, 100, 200, 255], 4, 1, 1);
        Assert.Equal(new byte[] { 71, 209 }, PilBilinear.Resize(row, 2, 1).Pixels);
        var column = new RawImage([0, 100, 200, 255], 1, 4, 1);
        Assert.Equal(new byte[] { 71, 209 }, PilBilinear.Resize(column, 1, 2).Pixels);
    }

    [Fact]
    public void Normalize_ScalesThenSubtractsTheMeanAndDividesByTheStd_InChwOrder()
    {
        var t = ResizeCropTransform.ImageNet(1, 1);
        var pixel = new RawImage([255, 0, 128], 1, 1, 3);
        var chw = t.Apply(pixel);
        Assert.Equal([(1f - 0.485f) / 0.229f, (0f - 0.456f) / 0.224f, (128f / 255f - 0.406f) / 0.225f], chw);
    }

    [Fact]
    public void ACropLargerThanTheResize_IsRefusedWithBothSizes()
    {
        var ex = Assert.Throws<ArgumentException>(() => ResizeCropTransform.ImageNet(200, 224).ResizeAndCrop(new RawImage(new byte[300 * 300 * 3], 300, 300, 3)));
        Assert.Contains("resizes to 200 and crops 224", ex.Message);
        var gray = Assert.Throws<ArgumentException>(() => ResizeCropTransform.ImageNet(256).Apply(new RawImage(new byte[300 * 300], 300, 300, 1)));
        Assert.Contains("Decode the image as RGB", gray.Message);
    }
}

public class ResizeCropSourceTests
{
    [Fact]
    public void TheTrainersEvalPipeline_OnTheWrappedSource_GivesTheTransformsNumbers()
    {
        var random = new Random(2);
        var pixels = new byte[333 * 250 * 3];
        random.NextBytes(pixels);
        var images = new InMemoryImages(pixels, [1], 333, 250, 3, ["a", "b"]);
        var transform = ResizeCropTransform.ImageNet(232);
        var source = new ResizeCropSource(images, transform);
        var normalization = new Normalization(NormalizationKind.PerChannel, 3, 0, 0, transform.Mean, transform.Std);
        var pipeline = new ImagePipeline(3, 224, 224, normalization, Augmentation.None);

        var viaPipeline = new float[pipeline.SampleLength];
        pipeline.Eval(source.Load(0), viaPipeline);
        float[] direct = transform.Apply(images.Load(0));

        Assert.Equal((224, 224), (source.Load(0).Width, source.Load(0).Height));
        Assert.Equal(1, source.LabelOf(0));
        // The pipeline multiplies by 1/std where torch divides: a rounding apart, no more.
        Assert.Equal(0, direct.Zip(viaPipeline, (a, b) => Math.Abs(a - b)).Count(d => d > 1e-6f));
    }
}
