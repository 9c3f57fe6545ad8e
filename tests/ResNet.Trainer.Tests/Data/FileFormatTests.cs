using System.Buffers.Binary;
using System.IO.Compression;
using ResNet.Trainer.Data;

namespace ResNet.Trainer.Tests.Data;

public class FileFormatTests
{
    private static byte[] IdxImages(int count, int rows, int cols, Func<int, byte> value)
    {
        var data = new byte[16 + count * rows * cols];
        BinaryPrimitives.WriteInt32BigEndian(data, 0x803);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(12), cols);
        for (int i = 16; i < data.Length; i++) data[i] = value(i - 16);
        return data;
    }

    private static byte[] IdxLabels(params byte[] labels)
    {
        var data = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(data, 0x801);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(4), labels.Length);
        labels.CopyTo(data, 8);
        return data;
    }

    private static byte[] Gzip(byte[] raw)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest)) gz.Write(raw);
        return ms.ToArray();
    }

    [Fact]
    public void Idx_ReadsGzippedAndPlainFiles()
    {
        string dir = TestData.TempDir();
        File.WriteAllBytes(Path.Combine(dir, "img.gz"), Gzip(IdxImages(3, 2, 4, i => (byte)i)));
        File.WriteAllBytes(Path.Combine(dir, "lab"), IdxLabels(2, 0, 1));
        var images = Idx.Load(Path.Combine(dir, "img.gz"), Path.Combine(dir, "lab"));
        Assert.Equal(3, images.Count);
        Assert.Equal((4, 2, 1), (images.Width, images.Height, images.Channels));
        Assert.Equal([2, 0, 1], images.Labels);
        Assert.Equal([8, 9, 10, 11, 12, 13, 14, 15], images.PixelsOf(1).ToArray().Select(b => (int)b));
    }

    [Fact]
    public void Idx_RealFashionMnistTestSet_Has10000ImagesOf28x28()
    {
        var test = Idx.LoadSplit(TestData.FashionMnist, train: false);
        Assert.Equal(10000, test.Count);
        Assert.Equal((28, 28), (test.Width, test.Height));
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(1000, test.Labels.Count(l => l == c)));
    }

    [Fact]
    public void Idx_WrongMagic_NamesTheFileAndSuggestsTheSwap()
    {
        string dir = TestData.TempDir();
        string labels = Path.Combine(dir, "labels");
        File.WriteAllBytes(labels, IdxLabels(1, 2));
        var ex = Assert.Throws<CorruptDataException>(() => Idx.ReadImages(labels));
        Assert.Contains(labels, ex.Message);
        Assert.Contains("swap", ex.Message);
    }

    [Fact]
    public void Idx_Truncated_SaysHowManyBytesWereMissing()
    {
        string path = Path.Combine(TestData.TempDir(), "img");
        File.WriteAllBytes(path, IdxImages(10, 28, 28, i => 0)[..5000]);
        var ex = Assert.Throws<CorruptDataException>(() => Idx.ReadImages(path));
        Assert.Contains("truncated", ex.Message);
        Assert.Contains("7840", ex.Message);
        Assert.Equal(path, ex.Path);
    }

    private static byte[] CifarRecord(byte[] labels, Func<int, int, byte> channelPixel)
    {
        var r = new byte[labels.Length + 3072];
        labels.CopyTo(r, 0);
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 1024; p++) r[labels.Length + c * 1024 + p] = channelPixel(c, p);
        return r;
    }

    [Fact]
    public void Cifar10_ReadsLabelsAndInterleavesThePlanes()
    {
        string dir = TestData.TempDir();
        byte[] file = [.. CifarRecord([3], (c, p) => (byte)(c * 100 + p % 7)), .. CifarRecord([9], (c, p) => 255)];
        File.WriteAllBytes(Path.Combine(dir, "data_batch_1.bin"), file);
        var images = Cifar.Read([Path.Combine(dir, "data_batch_1.bin")]);
        Assert.Equal(2, images.Count);
        Assert.Equal([3, 9], images.Labels);
        Assert.Equal("cat", images.ClassNames[3]);
        var first = images.PixelsOf(0).ToArray();
        Assert.Equal([0, 100, 200, 1, 101, 201], first.Take(6).Select(b => (int)b)); // pixel 0 RGB, pixel 1 RGB
        Assert.All(images.PixelsOf(1).ToArray(), b => Assert.Equal(255, b));
    }

    [Fact]
    public void Cifar100_FineAndCoarseLabels()
    {
        string path = Path.Combine(TestData.TempDir(), "train.bin");
        File.WriteAllBytes(path, [.. CifarRecord([4, 73], (c, p) => 0), .. CifarRecord([19, 99], (c, p) => 0)]);
        Assert.Equal([73, 99], Cifar.Read([path], CifarVariant.Cifar100Fine).Labels);
        Assert.Equal([4, 19], Cifar.Read([path], CifarVariant.Cifar100Coarse).Labels);
        Assert.Equal(100, Cifar.Read([path], CifarVariant.Cifar100Fine).ClassNames.Count);
    }

    [Fact]
    public void Cifar_TruncatedOrWrongVariant_IsAClearError()
    {
        string path = Path.Combine(TestData.TempDir(), "test_batch.bin");
        File.WriteAllBytes(path, CifarRecord([1], (c, p) => 0)[..3000]);
        var ex = Assert.Throws<CorruptDataException>(() => Cifar.Read([path]));
        Assert.Contains(path, ex.Message);
        Assert.Contains("3073", ex.Message);

        File.WriteAllBytes(path, CifarRecord([1, 2], (c, p) => 0));
        var variant = Assert.Throws<CorruptDataException>(() => Cifar.Read([path], CifarVariant.Cifar10));
        Assert.Contains("other CIFAR variant", variant.Message);
    }
}
